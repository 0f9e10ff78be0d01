"""The contract of a one-shot (weight-sharing) method: a supernet training policy plus a search stage.

A ``SupernetMethod`` is a ``Searcher`` (so it lives in the one registry, keeps its state in
``state_dict`` and is told only validation figures): its ask / tell is the *search stage*,
run against a trained supernet used as a benchmark (``harness.oneshot.scoring.SupernetBenchmark``).
On top of that it defines how the supernet is trained:

- ``train_step(ctx, images, labels)`` does one optimisation step on one training batch
  (forward, backward, ``ctx.optimizer.step()``) and returns the mean training loss, as a
  float or, better, a detached 0-dim tensor on the model's device: the trainer adds tensors
  up on the device and reads them back only every few steps, so a GPU step never waits for
  the host (``harness.oneshot.loss_meter``);
- ``end_epoch(ctx, epoch)`` may return figures to log (DARTS: its derived architecture);
- ``search_stage()`` builds the searcher that explores the trained supernet.

Methods draw random numbers only from ``self.rng`` (a ``numpy.random.Generator``), so a
checkpoint of the model, the optimiser, the method and the data generator resumes a run
exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from harness.errors import UnknownNameError, UserError
from harness.search.searcher import (
    Searcher,
    describe_hyperparameters,
    get_searcher,
    method_names,
)
from harness.space import NUM_EDGES, NUM_OPS, Architecture


@dataclass
class StepContext:
    """What a training step may use: the supernet, its optimiser, and validation batches.

    ``valid_batch()`` returns the next (images, labels) batch of the valid split, cycling
    through it in a seeded order; architecture parameters (DARTS) and path scoring
    (GreedyNAS) use it, never the training split. ``autocast`` is a context factory for
    mixed precision (a no-op on CPU by default). ``progress`` lets schedules depend on how
    far the run is.
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    valid_batch: Any
    lr: float
    grad_clip: float | None
    autocast: Any
    #: Fraction of the run's steps done before this one (0 at the start, < 1 at the end).
    progress: float = 0.0

    def clip_and_step(self) -> None:
        """Clip the supernet gradient norm (when configured) and apply one optimiser step."""
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.optimizer.step()


def uniform_path(rng: np.random.Generator) -> Architecture:
    """One op per edge, uniformly (SPOS' path sampler)."""
    return Architecture(tuple(int(o) for o in rng.integers(0, NUM_OPS, NUM_EDGES)))


class SupernetMethod(Searcher):
    """Base class of one-shot methods; subclasses implement ``train_step`` and ``search_stage``."""

    tabular: ClassVar[bool] = False
    #: True when the method trains architecture parameters and so needs ``architecture_parameters``.
    has_architecture_parameters: ClassVar[bool] = False

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self._stage: Searcher | None = None

    # -- training policy ----------------------------------------------------------------
    def train_step(self, ctx: StepContext, images: torch.Tensor, labels: torch.Tensor) -> float | torch.Tensor:
        """One optimisation step; the batch's mean training loss (a float or a detached 0-dim tensor)."""
        raise NotImplementedError

    def end_epoch(self, ctx: StepContext, epoch: int) -> dict[str, Any]:
        """Figures to log after an epoch (default: none)."""
        return {}

    def setup(self, model: nn.Module) -> None:
        """Called once with the supernet before training or resuming (create parameters here)."""

    # -- search stage -------------------------------------------------------------------
    def search_stage(self) -> Searcher:
        raise NotImplementedError

    def _ask(self) -> Architecture:
        if self._stage is None:
            self._stage = self.search_stage()
        return self._stage.ask()

    def _tell(self, arch: Architecture, reward: float) -> None:
        assert self._stage is not None
        self._stage.tell(arch, reward)

    def _state_dict(self) -> dict[str, Any]:
        return {
            "training": self._training_state(),
            "stage": None if self._stage is None else self._stage.state_dict(),
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_training_state(state["training"])
        self._stage = None
        if state["stage"] is not None:
            self._stage = self.search_stage()
            self._stage.load_state_dict(state["stage"])

    def _training_state(self) -> dict[str, Any]:
        """Policy state beyond ``self.rng`` (GreedyNAS' pool, DARTS' architecture weights)."""
        return {}

    def _load_training_state(self, state: dict[str, Any]) -> None:
        """Restore what ``_training_state`` saved."""


def make_method(name: str, seed: int, hyperparameters: dict[str, Any]) -> SupernetMethod:
    """The one-shot method ``name`` built with ``seed`` and ``hyperparameters``; mistakes are UserErrors."""
    names = method_names(tabular=False)
    if name not in names:
        raise UnknownNameError(f"unknown one-shot method {name!r}; valid: {', '.join(names)}")
    cls = get_searcher(name)
    try:
        return cls(seed=seed, **hyperparameters)
    except TypeError as exc:  # an unknown key, most often: say which ones the class takes
        raise UserError(f"bad hyper-parameter for {name}: {exc}; {name} takes: "
                        f"{describe_hyperparameters(cls)}") from None
    except ValueError as exc:
        raise UserError(f"{name}: {exc}") from None
