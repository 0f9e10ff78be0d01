"""Exact parameter and FLOP counts of every NB201 network, computed from its definition.

The network is ``harness.oneshot.network.TinyNetwork``: a fixed skeleton (stem, two residual
reduction blocks, final BatchNorm and classifier) plus 3N cells, each edge of which holds
its op. Only the convolutions carry a cost that depends on the architecture, so the
count for an architecture is the skeleton's count plus, for each op, how many edges use
it times that op's cost summed over all 3N cells. That is one small matrix product for
all 15,625 architectures.

Conventions are NB201's (``xautodl/utils/flop_benchmark.py`` in D-X-Y/AutoDL-Projects):
``params`` counts every parameter, BatchNorm weights and biases included, and NB201 reports
it divided by 1e6; ``flop`` counts multiply-adds of ``Conv2d`` and ``Linear`` layers only
(``k*k*C_in*C_out`` per output position, plus one per output for a bias) and nothing for
BatchNorm, ReLU, pooling or the sums that join edges, reported divided by 1e6. A
convolution whose input is always zero (its source node is cut off by ``none`` edges)
still counts, as it does in NB201's network. The published extremes are met exactly: on
CIFAR-10 0.073306 to 1.531546 M parameters and 7.78305 to 220.11969 MFLOPs (see
tests/harness/test_cost.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from harness.errors import UnknownNameError
from harness.space import CONV1X1, CONV3X3, NUM_OPS, Architecture, as_architecture, ops_matrix

#: (input size, classes) of the datasets NB201 trains on.
DATASETS: dict[str, tuple[int, int]] = {
    "cifar10": (32, 10),
    "cifar100": (32, 100),
    "ImageNet16-120": (16, 120),
}


@dataclass(frozen=True)
class NetworkShape:
    """The hyper-parameters of the network that the counts depend on (NB201: C=16, N=5)."""

    C: int = 16
    N: int = 5
    num_classes: int = 10
    input_size: int = 32
    in_channels: int = 3
    affine: bool = True

    def __post_init__(self) -> None:
        if self.input_size % 4:
            raise ValueError(
                f"input_size must be divisible by 4 (two stride-2 stages), got {self.input_size}"
            )

    @classmethod
    def for_dataset(cls, dataset: str) -> NetworkShape:
        """NB201's network for ``dataset`` ('cifar10', 'cifar100' or 'ImageNet16-120')."""
        key = _dataset_key(dataset)
        size, classes = DATASETS[key]
        return cls(num_classes=classes, input_size=size)


def _dataset_key(dataset: str) -> str:
    for key in DATASETS:
        if key.lower() == str(dataset).lower():
            return key
    raise UnknownNameError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")


def _conv(c_in: int, c_out: int, k: int, out_size: int, bias: bool) -> tuple[int, int]:
    """(parameters, multiply-adds) of one k x k convolution producing out_size x out_size maps."""
    positions = out_size * out_size
    return k * k * c_in * c_out + (c_out if bias else 0), (
        k * k * c_in * c_out + (c_out if bias else 0)
    ) * positions


def cell_op_costs(shape: NetworkShape = NetworkShape()) -> tuple[np.ndarray, np.ndarray]:
    """Per op (indexed as ``OPS``): its parameters and FLOPs on one edge, summed over all 3N cells."""
    params = np.zeros(NUM_OPS, dtype=np.int64)
    flops = np.zeros(NUM_OPS, dtype=np.int64)
    for stage in range(3):
        c = shape.C * 2**stage
        size = shape.input_size // 2**stage
        bn = 2 * c if shape.affine else 0
        for op, k in ((CONV1X1, 1), (CONV3X3, 3)):
            p, f = _conv(c, c, k, size, bias=not shape.affine)
            params[op] += shape.N * (p + bn)
            flops[op] += shape.N * f
    return params, flops


def skeleton_costs(shape: NetworkShape = NetworkShape()) -> tuple[int, int]:
    """Parameters and FLOPs of everything but the cell ops: stem, reductions, final BN, classifier."""
    C, size = shape.C, shape.input_size
    p, f = _conv(shape.in_channels, C, 3, size, bias=False)
    params, flops = p + 2 * C, f
    for stage in (1, 2):
        c_in, c_out, out = C * 2 ** (stage - 1), C * 2**stage, size // 2**stage
        for block in (_conv(c_in, c_out, 3, out, False), _conv(c_out, c_out, 3, out, False)):
            params, flops = params + block[0] + 2 * c_out, flops + block[1]
        shortcut = _conv(c_in, c_out, 1, out, False)
        params, flops = params + shortcut[0], flops + shortcut[1]
    last = 4 * C
    params += 2 * last + last * shape.num_classes + shape.num_classes
    flops += last * shape.num_classes + shape.num_classes
    return params, flops


@lru_cache(maxsize=16)
def _tables(shape: NetworkShape) -> tuple[np.ndarray, np.ndarray]:
    op_params, op_flops = cell_op_costs(shape)
    skeleton_params, skeleton_flops = skeleton_costs(shape)
    ops = ops_matrix()
    counts = np.stack([(ops == o).sum(axis=1) for o in range(NUM_OPS)], axis=1).astype(np.int64)
    params = counts @ op_params + skeleton_params
    flops = counts @ op_flops + skeleton_flops
    params.setflags(write=False)
    flops.setflags(write=False)
    return params, flops


def parameter_counts(shape: NetworkShape = NetworkShape()) -> np.ndarray:
    """Exact parameter count of all 15,625 networks, indexed by ``Architecture.index`` (int64)."""
    return _tables(shape)[0]


def flop_counts(shape: NetworkShape = NetworkShape()) -> np.ndarray:
    """Exact multiply-add count per sample of all 15,625 networks, by ``Architecture.index`` (int64)."""
    return _tables(shape)[1]


def params(arch: Architecture | str, dataset: str = "cifar10") -> float:
    """Parameters in millions, as NB201 reports them ('params')."""
    return float(parameter_counts(NetworkShape.for_dataset(dataset))[as_architecture(arch).index]) / 1e6


def flops(arch: Architecture | str, dataset: str = "cifar10") -> float:
    """FLOPs (multiply-adds) in millions per sample, as NB201 reports them ('flop')."""
    return float(flop_counts(NetworkShape.for_dataset(dataset))[as_architecture(arch).index]) / 1e6


def all_params(dataset: str = "cifar10") -> np.ndarray:
    """``params`` of every architecture (millions), indexed by ``Architecture.index``."""
    return parameter_counts(NetworkShape.for_dataset(dataset)) / 1e6


def all_flops(dataset: str = "cifar10") -> np.ndarray:
    """``flops`` of every architecture (MFLOPs), indexed by ``Architecture.index``."""
    return flop_counts(NetworkShape.for_dataset(dataset)) / 1e6
