"""Converters between this package's encoding and the op orders other libraries use.

Ours (``harness.space``): edges in NB201 string order (0,1), (0,2), (1,2), (0,3), (1,3),
(2,3); ops in NB201 order none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3.
Covered: NASLib (and analog-nasbench), NNI, Syne Tune; each section cites its sources.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.errors import ArchitectureError
from harness.space import AVG_POOL, CONV1X1, CONV3X3, EDGES, NONE, OPS, SKIP, Architecture

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


# NNI (microsoft/nni). The benchmark database (nni/nas/benchmarks/nasbench201/db_gen.py,
# parse_arch_str; constants.py) keys each edge "i_j" (source_target) and names the ops
# none, skip_connect, conv_1x1, conv_3x3, avg_pool_3x3 (constants.PRIMITIVES, the same
# order as ours). NNI's model space (nni/nas/hub/pytorch/nasbench201.py with
# modules/nasbench201.py, NasBench201Cell) uses the same op names and labels each edge's
# choice f"{label}__{i}_{j}", with label "cell" shared by every cell.
NNI_OPS: tuple[str, ...] = ("none", "skip_connect", "conv_1x1", "conv_3x3", "avg_pool_3x3")
NNI_EDGE_KEYS: tuple[str, ...] = tuple(f"{src}_{dst}" for src, dst in EDGES)


def to_nni(arch: Architecture, label: str | None = None) -> dict[str, str]:
    """NNI's arch dict {"0_1": "conv_3x3", ...}; with ``label`` the model-space keys "cell__0_1"."""
    prefix = f"{label}__" if label else ""
    return {f"{prefix}{key}": NNI_OPS[op] for key, op in zip(NNI_EDGE_KEYS, arch.ops, strict=True)}


def from_nni(choices: Mapping[str, str], label: str | None = None) -> Architecture:
    """Inverse of ``to_nni``; other keys in ``choices`` are ignored."""
    prefix = f"{label}__" if label else ""
    ops = []
    for key in NNI_EDGE_KEYS:
        name = choices.get(prefix + key)
        if name is None:
            raise ArchitectureError(f"NNI arch dict lacks edge {prefix + key!r}; got keys {sorted(choices)}")
        if name not in NNI_OPS:
            raise ArchitectureError(f"unknown NNI op {name!r} on edge {prefix + key}; accepted: {', '.join(NNI_OPS)}")
        ops.append(NNI_OPS.index(name))
    return Architecture(tuple(ops))


# Syne Tune (syne-tune/syne-tune, syne_tune/blackbox_repository/conversion_scripts/scripts/
# nasbench201_import.py): CONFIG_KEYS hp_x0..hp_x5 take the ops in NB201 string order
# (str_to_list), i.e. our edge order, with NB201's op names; the config space lists the
# choices in the order below, which is what a choice's position means there. Beware: that
# blackbox's "metric_valid_error" is read from the CIFAR-10 *test* split ("ori-test").
SYNE_TUNE_KEYS: tuple[str, ...] = ("hp_x0", "hp_x1", "hp_x2", "hp_x3", "hp_x4", "hp_x5")
SYNE_TUNE_CHOICES: tuple[str, ...] = ("avg_pool_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_1x1", "none")
_SYNE_TUNE_TO_OURS = tuple(OPS.index(name) for name in SYNE_TUNE_CHOICES)


def to_syne_tune(arch: Architecture) -> dict[str, str]:
    """Syne Tune's nasbench201 configuration {"hp_x0": op name, ...}."""
    return dict(zip(SYNE_TUNE_KEYS, arch.op_names, strict=True))


def from_syne_tune(config: Mapping[str, object]) -> Architecture:
    """Inverse of ``to_syne_tune``; other keys (a fidelity such as "hp_epoch") are ignored."""
    ops = []
    for key in SYNE_TUNE_KEYS:
        if key not in config:
            raise ArchitectureError(f"Syne Tune nasbench201 config lacks {key!r}; got keys {sorted(config)}")
        name = config[key]
        if name not in SYNE_TUNE_CHOICES:
            raise ArchitectureError(
                f"unknown op {name!r} for {key}; accepted: {', '.join(SYNE_TUNE_CHOICES)}"
            )
        ops.append(OPS.index(name))
    return Architecture(tuple(ops))


def to_syne_tune_codes(arch: Architecture) -> tuple[int, ...]:
    """Each edge's position in Syne Tune's choice list ``SYNE_TUNE_CHOICES``."""
    return tuple(_SYNE_TUNE_TO_OURS.index(op) for op in arch.ops)


def from_syne_tune_codes(codes: Sequence[int]) -> Architecture:
    """Inverse of ``to_syne_tune_codes``."""
    codes = tuple(int(c) for c in codes)
    if len(codes) != len(SYNE_TUNE_KEYS) or any(not 0 <= c < len(SYNE_TUNE_CHOICES) for c in codes):
        raise ArchitectureError(f"Syne Tune choice codes are 6 ints in 0..4, got {codes!r}")
    return Architecture(tuple(_SYNE_TUNE_TO_OURS[c] for c in codes))
