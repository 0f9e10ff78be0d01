"""GreedyNAS (You et al., CVPR 2020): train only the paths that look good now.

Each step samples ``m`` paths, scores each by its loss on one batch of the *valid* split
with the current weights (no gradient; BatchNorm normalises by that batch and its running
statistics are left untouched), and trains the ``k`` with the lowest loss on the training
batch, accumulating their gradients into one update (defaults m = 10, k = 5, as in the
paper). Trained paths enter a candidate pool of at most ``pool_size`` (1,000) paths kept by
lowest loss; a path is drawn from the pool instead of uniformly with a probability that
grows linearly from 0 at the start of training to ``pool_prob_max`` (0.8) at the end.
The search stage is SPOS evolution whose first generation is the best of the pool.
"""

from __future__ import annotations

import heapq
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness import Searcher, StepContext, register_searcher, sum_in_float64, uniform_path
from harness.space import Architecture
from methods.spos import SPOS, path_loss
from methods.spos_evolution import SposEvolution


@torch.no_grad()
def path_losses(model: nn.Module, paths: list[Architecture], images: torch.Tensor, labels: torch.Tensor,
                autocast) -> list[float]:
    """Loss of each path on one batch, in train mode, without touching BatchNorm running statistics."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0  # running = (1 - 0) * running + 0 * batch: unchanged
    try:
        losses = []
        for arch in paths:
            with autocast():
                losses.append(float(F.cross_entropy(model(images, arch), labels)))
        return losses
    finally:
        for m, momentum in zip(norms, saved, strict=True):
            m.momentum = momentum


@register_searcher("greedynas")
class GreedyNAS(SPOS):
    """Multi-path sampling with rejection of weak paths and a candidate pool."""

    def __init__(self, seed: int = 0, paths_sampled: int = 10, paths_trained: int = 5, pool_size: int = 1000,
                 pool_prob_max: float = 0.8, **evolution: Any) -> None:
        super().__init__(seed, **evolution)
        if not 1 <= paths_trained <= paths_sampled:
            raise ValueError(f"need 1 <= paths_trained <= paths_sampled, got {paths_trained} and {paths_sampled}")
        if pool_size < 1 or not 0.0 <= pool_prob_max <= 1.0:
            raise ValueError(f"need pool_size >= 1 and pool_prob_max in [0, 1], got {pool_size}, {pool_prob_max}")
        self.paths_sampled, self.paths_trained = paths_sampled, paths_trained
        self.pool_size, self.pool_prob_max = pool_size, float(pool_prob_max)
        #: Max-heap by loss (stored negated) of (−loss, ops): the worst pooled path is popped first.
        self.pool: list[tuple[float, tuple[int, ...]]] = []
        self._pooled: set[tuple[int, ...]] = set()

    def hyperparameters(self) -> dict[str, Any]:
        return {**super().hyperparameters(), "sampler": "best k of m by valid-batch loss, candidate pool",
                "paths_sampled": self.paths_sampled, "paths_trained": self.paths_trained,
                "pool_size": self.pool_size, "pool_prob_max": self.pool_prob_max}

    def pool_probability(self, progress: float) -> float:
        return self.pool_prob_max * min(max(progress, 0.0), 1.0)

    def sample_paths(self, progress: float) -> list[Architecture]:
        probability = self.pool_probability(progress)
        paths = []
        for _ in range(self.paths_sampled):
            if self.pool and self.rng.random() < probability:
                paths.append(Architecture(self.pool[int(self.rng.integers(len(self.pool)))][1]))
            else:
                paths.append(uniform_path(self.rng))
        return paths

    def _add_to_pool(self, arch: Architecture, loss: float) -> None:
        if arch.ops in self._pooled:
            self.pool = [(-loss, ops) if ops == arch.ops else (neg, ops) for neg, ops in self.pool]
            heapq.heapify(self.pool)
            return
        heapq.heappush(self.pool, (-loss, arch.ops))
        self._pooled.add(arch.ops)
        if len(self.pool) > self.pool_size:
            _, dropped = heapq.heappop(self.pool)
            self._pooled.discard(dropped)

    def train_step(self, ctx: StepContext, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        paths = self.sample_paths(ctx.progress)
        valid_images, valid_labels = ctx.valid_batch()
        losses = path_losses(ctx.model, paths, valid_images, valid_labels, ctx.autocast)
        order = sorted(range(len(paths)), key=lambda i: (losses[i], i))[: self.paths_trained]
        ctx.optimizer.zero_grad(set_to_none=True)
        trained = []
        for i in order:
            loss = path_loss(ctx, images, labels, paths[i])
            loss.backward()
            trained.append(loss.detach())
            self._add_to_pool(paths[i], losses[i])
        ctx.clip_and_step()
        self.last_trained = [paths[i] for i in order]
        return sum_in_float64(trained) / len(order)

    def best_of_pool(self, n: int) -> list[Architecture]:
        """The ``n`` pooled paths with the lowest recorded loss."""
        return [Architecture(ops) for _, ops in sorted(self.pool, key=lambda item: (-item[0], item[1]))[:n]]

    def search_stage(self) -> Searcher:
        initial = self.best_of_pool(self.evolution["population_size"])
        return SposEvolution(self.seed, initial=initial, **self.evolution)

    def _training_state(self) -> dict[str, Any]:
        return {"pool": [(loss, ops) for loss, ops in self.pool]}

    def _load_training_state(self, state: dict[str, Any]) -> None:
        self.pool = [(float(loss), tuple(int(o) for o in ops)) for loss, ops in state["pool"]]
        heapq.heapify(self.pool)
        self._pooled = {ops for _, ops in self.pool}
