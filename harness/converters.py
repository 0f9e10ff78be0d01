"""Converters between this package's encoding and the op orders other libraries use.

Ours (``harness.space``): edges in NB201 string order (0,1), (0,2), (1,2), (0,3), (1,3),
(2,3); ops in NB201 order none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3.
"""

from __future__ import annotations

from typing import Sequence

from harness.errors import ArchitectureError
from harness.space import EDGES, NONE, SKIP, CONV1X1, CONV3X3, AVG_POOL, Architecture

# NASLib ``op_indices`` (naslib/search_spaces/nasbench201/conversions.py): edges in
# row-major order of the upper triangle, ops Identity, Zero, ReLUConvBN3x3,
# ReLUConvBN1x1, AvgPool1x1. analog-nasbench's tuples are exactly this encoding.
NASLIB_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
NASLIB_OPS: tuple[int, ...] = (SKIP, NONE, CONV3X3, CONV1X1, AVG_POOL)  # NASLib code -> ours

_NASLIB_POSITION = tuple(NASLIB_EDGES.index(edge) for edge in EDGES)  # our edge -> NASLib slot


def to_naslib(arch: Architecture) -> tuple[int, ...]:
    """NASLib op_indices (and analog-nasbench tuple) of ``arch``."""
    codes = [0] * len(EDGES)
    for our_edge, op in enumerate(arch.ops):
        codes[_NASLIB_POSITION[our_edge]] = NASLIB_OPS.index(op)
    return tuple(codes)


def from_naslib(codes: Sequence[int]) -> Architecture:
    """Inverse of ``to_naslib``."""
    codes = tuple(int(c) for c in codes)
    if len(codes) != len(EDGES) or any(not 0 <= c < len(NASLIB_OPS) for c in codes):
        raise ArchitectureError(f"NASLib op_indices are 6 ints in 0..4, got {codes!r}")
    return Architecture(tuple(NASLIB_OPS[codes[_NASLIB_POSITION[e]]] for e in range(len(EDGES))))
