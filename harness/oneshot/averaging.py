"""An exponential moving average of a supernet's weights, for scoring.

A weight-sharing supernet's ranking of architectures moves from one check to the next: the
last few hundred single-path steps pull the shared weights towards the paths they sampled.
Scoring with an average of the weights over the recent steps takes that recency out.

``WeightAverage`` keeps a float32 copy of every parameter and, after each optimiser step,
moves it towards the current weights: ``average <- average + (1 - d_t) * (weights - average)``
with ``d_t = min(decay, (1 + t) / (10 + t))`` at update ``t`` (the usual warm-up, so the
average does not stay anchored at the initial weights). Buffers (BatchNorm running
statistics) are not averaged: scoring recalibrates them per architecture. ``swapped_in``
puts the averaged parameters into the model for the duration of a block and restores the
trained ones afterwards, whatever happens inside.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn


class WeightAverage:
    """Exponential moving average of ``model``'s parameters with ``decay`` in (0, 1)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay must be in (0, 1), got {decay!r}")
        self.decay = float(decay)
        self.updates = 0
        self.names = [name for name, _ in model.named_parameters()]
        self.average = [p.detach().float().clone() for p in model.parameters()]

    def current_decay(self) -> float:
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current parameters (call after each optimiser step)."""
        weight = 1.0 - self.current_decay()
        current = [p.detach().float() for p in model.parameters()]
        torch._foreach_lerp_(self.average, current, weight)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates,
                "average": dict(zip(self.names, self.average, strict=True))}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if float(state["decay"]) != self.decay:
            raise ValueError(f"saved average has decay {state['decay']}, this one {self.decay}")
        saved = state["average"]
        if list(saved) != self.names:
            raise ValueError("saved average does not hold this model's parameters")
        for mine, theirs in zip(self.average, saved.values(), strict=True):
            mine.copy_(theirs)
        self.updates = int(state["updates"])

    def averaged_state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """``model``'s state dict with the averaged parameters in place of the trained ones."""
        return with_average(model.state_dict(), self.state_dict())

    @contextlib.contextmanager
    def swapped_in(self, model: nn.Module) -> Iterator[nn.Module]:
        """``model`` with the averaged parameters for the block; the trained ones come back after."""
        params = list(model.parameters())
        trained = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p, value in zip(params, self.average, strict=True):
                p.copy_(value)
        try:
            yield model
        finally:
            with torch.no_grad():
                for p, value in zip(params, trained, strict=True):
                    p.copy_(value)


def with_average(model_state: dict[str, torch.Tensor], average_state: dict[str, Any]) -> dict[str, torch.Tensor]:
    """A copy of ``model_state`` (a state dict) whose parameters are those of ``average_state``
    (``WeightAverage.state_dict()``, e.g. from a checkpoint); buffers stay the model's."""
    state = {key: value.detach().clone() for key, value in model_state.items()}
    for name, value in average_state["average"].items():
        state[name] = value.to(state[name].dtype).clone()
    return state
