"""SPOS (Guo et al., ECCV 2020): train the supernet one uniformly sampled path per step,
then search it with SPOS' evolution (``methods.spos_evolution``)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from harness import Searcher, StepContext, SupernetMethod, register_searcher, uniform_path
from methods.spos_evolution import SposEvolution


def path_loss(ctx: StepContext, images: torch.Tensor, labels: torch.Tensor, arch) -> torch.Tensor:
    """Cross-entropy of one path on one batch (under the run's autocast)."""
    with ctx.autocast():
        return F.cross_entropy(ctx.model(images, arch), labels)


@register_searcher("spos")
class SPOS(SupernetMethod):
    """Uniform single-path sampling; search stage: SPOS evolution on supernet scores."""

    def __init__(self, seed: int = 0, population_size: int = 50, generations: int = 20, top_k: int = 10,
                 mutation_prob: float = 0.1) -> None:
        super().__init__(seed)
        self.evolution = {"population_size": population_size, "generations": generations, "top_k": top_k,
                          "mutation_prob": mutation_prob}
        SposEvolution(seed, **self.evolution)  # validate now, not at search time

    def hyperparameters(self) -> dict[str, Any]:
        return {"sampler": "uniform single path", **{f"search_{k}": v for k, v in self.evolution.items()}}

    def train_step(self, ctx: StepContext, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        arch = uniform_path(self.rng)
        ctx.optimizer.zero_grad(set_to_none=True)
        loss = path_loss(ctx, images, labels, arch)
        loss.backward()
        ctx.clip_and_step()
        return loss.detach()  # stays on the device: no host synchronisation per step

    def search_stage(self) -> Searcher:
        return SposEvolution(self.seed, **self.evolution)
