"""Fixed-length numeric encodings of NB201 cells, for learned performance predictors.

Every encoding takes many architectures at once: an ``(n, 6)`` integer op matrix (as
``harness.space.ops_matrix()`` returns) or a sequence of ``Architecture``, and returns an
``(n, dim)`` float array. ``ENCODINGS`` maps each name to its ``Encoding``; ``encode(name,
archs)`` is the short way to call one.

Vocabulary. A cell has 4 input->output paths (``PATHS``): 0-3, 0-1-3, 0-2-3, 0-1-2-3. A
path is *live* when none of its edges is ``none``; a cell with no live path is
*disconnected* (its output is zero; NB201 networks built from it score chance accuracy).
An edge is *effective* when it lies on a live path: the ops of the other edges cannot
reach the output, so two cells whose effective edges agree compute the same function.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from harness.errors import ArchitectureError
from harness.registry import Registry
from harness.space import (
    AVG_POOL,
    CONV1X1,
    CONV3X3,
    NONE,
    NUM_ARCHITECTURES,
    NUM_EDGES,
    NUM_OPS,
    SKIP,
    Architecture,
    all_architectures,
    canonical_form,
)

#: The input->output paths of the cell, as edge indices into ``harness.space.EDGES``.
PATHS: tuple[tuple[int, ...], ...] = ((3,), (0, 4), (1, 5), (0, 2, 5))
PATH_NAMES: tuple[str, ...] = ("0-3", "0-1-3", "0-2-3", "0-1-2-3")
NUM_PATHS = len(PATHS)

#: Non-``none`` ops, in ``OPS`` order; the alphabet of path sequences.
PATH_OPS: tuple[int, ...] = (SKIP, CONV1X1, CONV3X3, AVG_POOL)
_PATH_LENGTHS = (1, 2, 3)
_PATH_OFFSETS = {length: sum(len(PATH_OPS) ** k for k in range(1, length)) for length in _PATH_LENGTHS}
#: BANANAS path-encoding dimension: op sequences of length 1, 2 and 3 over 4 ops: 4 + 16 + 64.
PATH_DIM = sum(len(PATH_OPS) ** length for length in _PATH_LENGTHS)

_INDEX_WEIGHTS = NUM_OPS ** np.arange(NUM_EDGES - 1, -1, -1)  # first edge most significant
_PARAMETRIC = (CONV1X1, CONV3X3)


@dataclass(frozen=True)
class Encoding:
    """A named encoding: ``fn`` maps an (n, 6) op matrix to an (n, dim) float array."""

    name: str
    dim: int
    fn: Callable[[np.ndarray], np.ndarray]
    description: str

    def __call__(self, archs: np.ndarray | Sequence[Architecture]) -> np.ndarray:
        return self.fn(as_ops_matrix(archs))


ENCODINGS: Registry[Encoding] = Registry("encoding")


def as_ops_matrix(archs: np.ndarray | Sequence[Architecture]) -> np.ndarray:
    """An (n, 6) int64 op matrix from an op matrix or a sequence of architectures."""
    if isinstance(archs, np.ndarray):
        ops = archs
    else:
        archs = list(archs)
        if archs and not all(isinstance(a, Architecture) for a in archs):
            raise ArchitectureError("expected an (n, 6) op matrix or a sequence of Architecture")
        ops = np.array([a.ops for a in archs], dtype=np.int64).reshape(len(archs), NUM_EDGES)
    if ops.ndim != 2 or ops.shape[1] != NUM_EDGES:
        raise ArchitectureError(f"an op matrix has shape (n, {NUM_EDGES}), got {ops.shape}")
    ops = ops.astype(np.int64, copy=False)
    if ops.size and (ops.min() < 0 or ops.max() >= NUM_OPS):
        raise ArchitectureError(f"op indices must be in 0..{NUM_OPS - 1}")
    return ops


def arch_indices(ops: np.ndarray) -> np.ndarray:
    """``Architecture.index`` of each row of an op matrix."""
    return as_ops_matrix(ops) @ _INDEX_WEIGHTS


def encode(name: str, archs: np.ndarray | Sequence[Architecture]) -> np.ndarray:
    """Encode ``archs`` with the registered encoding ``name``."""
    return ENCODINGS.resolve(name)(archs)


# --- structural building blocks -------------------------------------------------------


def live_paths(ops: np.ndarray) -> np.ndarray:
    """(n, 4) bool: which of ``PATHS`` carry signal (no ``none`` edge on them)."""
    ops = as_ops_matrix(ops)
    return np.stack([(ops[:, list(path)] != NONE).all(axis=1) for path in PATHS], axis=1)


def effective_ops(ops: np.ndarray) -> np.ndarray:
    """The op matrix with every edge that lies on no live path set to ``none``.

    Cells with equal effective ops compute the same function (dead branches never reach
    the output), so a predictor given this sees them as one.
    """
    ops = as_ops_matrix(ops)
    live = live_paths(ops)
    on_live = np.zeros(ops.shape, dtype=bool)
    for p, path in enumerate(PATHS):
        on_live[:, list(path)] |= live[:, [p]]
    return np.where(on_live, ops, NONE)


def is_disconnected(ops: np.ndarray) -> np.ndarray:
    """(n,) bool: cells with no live path (vectorised ``harness.space.is_output_disconnected``)."""
    return ~live_paths(ops).any(axis=1)


@lru_cache(maxsize=1)
def _canonical_representatives() -> np.ndarray:
    """For each index, the lowest index with the same NB201 canonical form."""
    first: dict[str, int] = {}
    reps = np.empty(NUM_ARCHITECTURES, dtype=np.int64)
    for arch in all_architectures():
        reps[arch.index] = first.setdefault(canonical_form(arch), arch.index)
    return reps


def canonical_ops(ops: np.ndarray) -> np.ndarray:
    """Each row replaced by the op row of its isomorphism class's lowest-index member."""
    reps = _canonical_representatives()[arch_indices(ops)]
    digits = (reps[:, None] // _INDEX_WEIGHTS[None, :]) % NUM_OPS
    return digits.astype(np.int64)


# --- encodings ------------------------------------------------------------------------


def one_hot(ops: np.ndarray) -> np.ndarray:
    """(n, 30): one-hot op of each edge, edge-major (edge e, op o at column 5e + o)."""
    ops = as_ops_matrix(ops)
    out = np.zeros((len(ops), NUM_EDGES * NUM_OPS))
    out[np.arange(len(ops))[:, None], np.arange(NUM_EDGES) * NUM_OPS + ops] = 1.0
    return out


def op_counts(ops: np.ndarray) -> np.ndarray:
    """(n, 5): how many edges carry each op, in ``OPS`` order."""
    ops = as_ops_matrix(ops)
    return np.stack([(ops == o).sum(axis=1) for o in range(NUM_OPS)], axis=1).astype(float)


def path_encoding(ops: np.ndarray) -> np.ndarray:
    """(n, 84): BANANAS path encoding, counts of the op sequences of the live paths.

    Column of a sequence (o_1..o_L) over ``PATH_OPS`` (skip, 1x1, 3x3, pool -> 0..3):
    ``4 + ... + 4**(L-1)`` plus its base-4 number, first op most significant; so columns
    0-3 are the 1-edge path, 4-19 the 2-edge paths (0-1-3 and 0-2-3 share them, so a
    count can reach 2), 20-83 the 3-edge path. Paths through ``none`` are not counted.
    """
    ops = as_ops_matrix(ops)
    live = live_paths(ops)
    out = np.zeros((len(ops), PATH_DIM))
    rows = np.arange(len(ops))
    for p, path in enumerate(PATHS):
        column = np.full(len(ops), _PATH_OFFSETS[len(path)])
        for k, edge in enumerate(path):
            column += (np.maximum(ops[:, edge], 1) - 1) * len(PATH_OPS) ** (len(path) - 1 - k)
        np.add.at(out, (rows[live[:, p]], column[live[:, p]]), 1.0)
    return out


def path_indicator(ops: np.ndarray) -> np.ndarray:
    """(n, 100): like ``path_encoding`` but one block per path (4 + 16 + 16 + 64), 0/1."""
    ops = as_ops_matrix(ops)
    live = live_paths(ops)
    blocks = []
    for p, path in enumerate(PATHS):
        column = np.zeros(len(ops), dtype=np.int64)
        for k, edge in enumerate(path):
            column += (np.maximum(ops[:, edge], 1) - 1) * len(PATH_OPS) ** (len(path) - 1 - k)
        block = np.zeros((len(ops), len(PATH_OPS) ** len(path)))
        block[np.arange(len(ops)), column] = live[:, p]
        blocks.append(block)
    return np.concatenate(blocks, axis=1)


STRUCTURE_FEATURES: tuple[str, ...] = (
    "disconnected",
    "live_paths",
    *(f"live_{name}" for name in PATH_NAMES),
    "effective_edges",
    *(f"effective_{name}" for name in ("skip", "conv1x1", "conv3x3", "pool")),
    "max_convs_on_path",
    "min_convs_on_path",
    "max_conv3x3_on_path",
    "max_pools_on_path",
    "identity_path",
    "max_receptive_growth",
    "min_receptive_growth",
    "parametric_live_paths",
)


def structure(ops: np.ndarray) -> np.ndarray:
    """(n, 19): hand-made features of the live computation, named in ``STRUCTURE_FEATURES``.

    Connectivity (disconnected, live paths and which), the ops on effective edges, the
    most and fewest convolutions along a live path (depth), whether a live path is pure
    skip (a residual shortcut), pooling, and the receptive-field growth along live paths
    (+2 per 3x3 conv or pool). Path statistics of a disconnected cell are 0.
    """
    ops = as_ops_matrix(ops)
    n = len(ops)
    live = live_paths(ops)
    eff = effective_ops(ops)
    convs = np.zeros((n, NUM_PATHS))
    conv3 = np.zeros((n, NUM_PATHS))
    pools = np.zeros((n, NUM_PATHS))
    skips_only = np.zeros((n, NUM_PATHS), dtype=bool)
    growth = np.zeros((n, NUM_PATHS))
    for p, path in enumerate(PATHS):
        on = ops[:, list(path)]
        convs[:, p] = np.isin(on, _PARAMETRIC).sum(axis=1)
        conv3[:, p] = (on == CONV3X3).sum(axis=1)
        pools[:, p] = (on == AVG_POOL).sum(axis=1)
        skips_only[:, p] = (on == SKIP).all(axis=1)
        growth[:, p] = 2 * ((on == CONV3X3) | (on == AVG_POOL)).sum(axis=1)
    connected = live.any(axis=1)

    def over_live(values: np.ndarray, reduce: str) -> np.ndarray:
        fill = -np.inf if reduce == "max" else np.inf
        masked = np.where(live, values, fill)
        result = masked.max(axis=1) if reduce == "max" else masked.min(axis=1)
        return np.where(connected, result, 0.0)

    columns = [
        ~connected,
        live.sum(axis=1),
        *live.T,
        (eff != NONE).sum(axis=1),
        *((eff == o).sum(axis=1) for o in PATH_OPS),
        over_live(convs, "max"),
        over_live(convs, "min"),
        over_live(conv3, "max"),
        over_live(pools, "max"),
        (live & skips_only).any(axis=1),
        over_live(growth, "max"),
        over_live(growth, "min"),
        (live & (convs > 0)).sum(axis=1),
    ]
    return np.stack(columns, axis=1).astype(float)


def effective_one_hot(ops: np.ndarray) -> np.ndarray:
    """(n, 30): ``one_hot`` of ``effective_ops`` (dead edges read as ``none``)."""
    return one_hot(effective_ops(ops))


def canonical_one_hot(ops: np.ndarray) -> np.ndarray:
    """(n, 30): ``one_hot`` of the lowest-index cell isomorphic to each cell (NB201 classes)."""
    return one_hot(canonical_ops(ops))


def effective_structure(ops: np.ndarray) -> np.ndarray:
    """(n, 30 + 19 = 49): ``effective_one_hot`` then ``structure``; the learned models' default."""
    ops = as_ops_matrix(ops)
    return np.concatenate([effective_one_hot(ops), structure(ops)], axis=1)


def rich(ops: np.ndarray) -> np.ndarray:
    """(n, 30 + 84 + 19 = 133): ``effective_one_hot``, ``path_encoding`` and ``structure``."""
    ops = as_ops_matrix(ops)
    return np.concatenate([effective_one_hot(ops), path_encoding(ops), structure(ops)], axis=1)


for _encoding in (
    Encoding("one_hot", NUM_EDGES * NUM_OPS, one_hot, "one-hot op per edge"),
    Encoding("op_counts", NUM_OPS, op_counts, "number of edges per op"),
    Encoding("path", PATH_DIM, path_encoding, "BANANAS op-sequence counts over live paths"),
    Encoding("path_indicator", 100, path_indicator, "op sequence of each live path, one block per path"),
    Encoding("structure", len(STRUCTURE_FEATURES), structure, "hand-made live-computation features"),
    Encoding("effective_one_hot", NUM_EDGES * NUM_OPS, effective_one_hot, "one-hot of ops on live paths"),
    Encoding("canonical_one_hot", NUM_EDGES * NUM_OPS, canonical_one_hot, "one-hot of the isomorphism class"),
    Encoding(
        "effective_structure",
        NUM_EDGES * NUM_OPS + len(STRUCTURE_FEATURES),
        effective_structure,
        "effective one-hot + structure",
    ),
    Encoding("rich", NUM_EDGES * NUM_OPS + PATH_DIM + len(STRUCTURE_FEATURES), rich, "effective one-hot + path + structure"),
):
    ENCODINGS.add(_encoding.name, _encoding)
