"""Training losses added up where they are computed, read back to the host only now and then.

Reading a loss on the host (``float(loss)``, ``loss.item()``) makes the CPU wait until the GPU
has finished every queued kernel: one such read per step keeps a GPU idle between steps. A
``LossMeter`` adds each step's loss (a float or a 0-dim tensor) into a float64 total on the
loss's own device and is read (``check``) every ``check_every`` steps and at the end of an
epoch. A loss that is not finite makes the total non-finite for good, so a check still
catches it, naming the steps since the previous check.

Added in float64 in step order, the total equals the sum of the same losses as Python floats
(each float32 loss is exact in float64 and both add in float64), so results on the CPU, where
``check_every`` is 1, are unchanged to the last bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

#: Steps between reads of the loss on a CUDA device (one read per step on the CPU costs nothing).
CUDA_CHECK_EVERY = 50


def check_every_for(device: torch.device) -> int:
    """How often a trainer on ``device`` reads its losses: every step on the CPU, every ``CUDA_CHECK_EVERY`` else."""
    return 1 if device.type == "cpu" else CUDA_CHECK_EVERY


def sum_in_float64(losses: Sequence[float | torch.Tensor]) -> float | torch.Tensor:
    """``losses`` added one after another in float64, as ``0.0 + float(a) + float(b) + ...`` but on their device."""
    total: float | torch.Tensor = 0.0
    for loss in losses:
        total = total + (loss.detach().to(torch.float64) if isinstance(loss, torch.Tensor) else float(loss))
    return total


@dataclass
class LossCheck:
    """What a ``LossMeter.check`` read: the last loss and whether every loss so far was finite."""

    last: float
    finite: bool
    #: The 1-based steps of the epoch since the previous check, ``(first, last)``.
    steps: tuple[int, int]

    def divergence(self, epoch: int) -> str:
        """``"became nan at epoch E, step S"`` (or ``"..., one of steps A-B"``) for a check that was not finite."""
        first, last = self.steps
        where = f"step {last}" if first == last else f"one of steps {first}-{last}"
        value = self.last if not math.isfinite(self.last) else "non-finite"
        return f"became {value} at epoch {epoch}, {where}"


class LossMeter:
    """The running sum and count of one epoch's training losses, kept on their device."""

    def __init__(self, total: float = 0.0, count: int = 0) -> None:
        self._total: float | torch.Tensor = float(total)
        self.count = int(count)
        self._last: float | torch.Tensor = math.nan
        self._checked = self.count

    def add(self, loss: float | torch.Tensor) -> None:
        """Add one step's loss (a float, or a 0-dim tensor left where it is)."""
        if isinstance(loss, torch.Tensor):
            loss = loss.detach()
            if loss.numel() != 1:
                raise ValueError(f"a step's loss must be one number, got a tensor of shape {tuple(loss.shape)}")
            loss = loss.reshape(())
            self._total = self._total + loss.to(torch.float64)
        else:
            self._total = self._total + float(loss)
        self._last = loss
        self.count += 1

    def due(self, every: int) -> bool:
        """Whether ``every`` steps have been added since the last check."""
        return self.count - self._checked >= every

    def check(self) -> LossCheck:
        """Read the total and the last loss on the host (a synchronisation on a GPU)."""
        steps = (self._checked + 1, self.count)
        self._checked = self.count
        return LossCheck(last=float(self._last), finite=math.isfinite(float(self._total)), steps=steps)

    @property
    def total(self) -> float:
        """The sum of the losses so far, as a Python float (reads it back from the device)."""
        return float(self._total)

    @property
    def mean(self) -> float:
        return self.total / max(self.count, 1)

    def state(self) -> list:
        """``[total, count]`` as plain numbers, for a checkpoint."""
        return [self.total, self.count]
