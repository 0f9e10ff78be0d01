"""FairNAS (Chu et al., ICCV 2021) with strict fairness: every step trains m = 5 paths made
from one random permutation of the ops per edge, so each op of each edge is trained
exactly once per step; the 5 gradients are accumulated and the weights updated once."""

from __future__ import annotations

import torch

from harness import StepContext, register_searcher, sum_in_float64
from harness.space import NUM_EDGES, NUM_OPS, Architecture
from methods.spos import SPOS, path_loss


def fair_paths(rng) -> list[Architecture]:
    """NUM_OPS paths; path k takes op ``permutation_e[k]`` on edge e (one permutation per edge)."""
    permutations = [rng.permutation(NUM_OPS) for _ in range(NUM_EDGES)]
    return [Architecture(tuple(int(p[k]) for p in permutations)) for k in range(NUM_OPS)]


@register_searcher("fairnas")
class FairNAS(SPOS):
    """Strict-fairness sampling; search stage: SPOS evolution (as in FairNAS' search)."""

    def hyperparameters(self):
        return {**super().hyperparameters(), "sampler": "strict fairness, 5 paths per step, one update"}

    def train_step(self, ctx: StepContext, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        ctx.optimizer.zero_grad(set_to_none=True)
        losses = []
        for arch in fair_paths(self.rng):
            loss = path_loss(ctx, images, labels, arch)
            loss.backward()
            losses.append(loss.detach())
        ctx.clip_and_step()
        # Summed in float64 in path order, as Python floats would be: the same figure on the CPU,
        # and no host synchronisation on a GPU.
        return sum_in_float64(losses) / NUM_OPS
