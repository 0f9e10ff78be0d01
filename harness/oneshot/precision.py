"""Arithmetic precision of training and scoring steps: float32, or bfloat16 autocast.

``"auto"`` (the default) means bfloat16 autocast on CUDA and float32 on the CPU; ``"bf16"``
asks for bfloat16 autocast on the CPU too, which pays only where the CPU computes bfloat16
natively (AVX512-BF16 or AMX: on this project's 2-core machine it trains about 1.4x faster,
``bench/bench_supernet_speed.py``); ``"fp32"`` never autocasts. Under autocast the weights,
the optimiser state and the BatchNorm running statistics stay float32; convolutions and
matrix products run in bfloat16, so losses differ from a float32 run in the third digit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from harness.errors import UserError

if TYPE_CHECKING:  # torch is imported only when a precision is applied, so the CLI parser stays light
    import torch

PRECISIONS = {"auto": "bfloat16 autocast on CUDA, float32 on the CPU",
              "fp32": "float32 everywhere",
              "bf16": "bfloat16 autocast (needs a CPU with AVX512-BF16 or AMX, or a GPU)"}


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (oneDNN's own check: AVX512-BF16 or AMX)."""
    import torch

    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(check()) if check is not None else False


def check_precision(precision: str, device: torch.device | None = None) -> None:
    """A UserError for an unknown precision, or for bf16 on a CPU that would only emulate it."""
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r}; accepted: {', '.join(PRECISIONS)}")
    if precision == "bf16" and device is not None and device.type == "cpu" and not cpu_has_native_bf16():
        raise UserError("precision bf16 on the CPU needs AVX512-BF16 or AMX, which this CPU lacks "
                        "(it would be slower than fp32); use --precision fp32 or auto")


def autocast_factory(precision: str, device: torch.device) -> Callable[[], AbstractContextManager]:
    """A zero-argument factory of the autocast context for ``precision`` on ``device``."""
    check_precision(precision, device)
    if not uses_bf16(precision, device):
        return contextlib.nullcontext
    import torch

    return lambda: torch.autocast(device.type, dtype=torch.bfloat16)


def uses_bf16(precision: str, device: torch.device) -> bool:
    """Whether ``precision`` autocasts to bfloat16 on ``device``."""
    return precision == "bf16" or (precision == "auto" and device.type == "cuda")
