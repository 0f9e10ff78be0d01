"""The NAS-Bench-201 cell search space: architectures, enumeration, sampling, mutation.

A cell has 4 nodes; node j (1..3) sums one operation applied to every earlier node.
The 6 edges are ordered as in NB201's architecture string
``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``, i.e. (0,1), (0,2), (1,2), (0,3), (1,3), (2,3),
and the operations are indexed in NB201's own order (``OPS``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from harness.errors import ArchitectureError

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
NUM_OPS = len(OPS)
NUM_EDGES = len(EDGES)
NUM_ARCHITECTURES = NUM_OPS**NUM_EDGES  # 15,625
NONE, SKIP, CONV1X1, CONV3X3, AVG_POOL = range(NUM_OPS)


@dataclass(frozen=True, order=True)
class Architecture:
    """One NB201 cell: the op index (into ``OPS``) on each edge, in ``EDGES`` order."""

    ops: tuple[int, ...]

    def __post_init__(self) -> None:
        ops = tuple(int(o) for o in self.ops)
        if len(ops) != NUM_EDGES or any(not 0 <= o < NUM_OPS for o in ops):
            raise ArchitectureError(
                f"an NB201 architecture has {NUM_EDGES} edges with op indices 0..{NUM_OPS - 1}, "
                f"got {self.ops!r}"
            )
        object.__setattr__(self, "ops", ops)

    @classmethod
    def from_string(cls, text: str) -> Architecture:
        """Parse NB201's string ``|nor_conv_3x3~0|+|skip_connect~0|none~1|+|...|``."""
        return parse_architecture(text)

    @classmethod
    def from_index(cls, index: int) -> Architecture:
        """The architecture whose ``index`` (this project's base-5 index, not NB201's official one) is ``index``."""
        if not 0 <= int(index) < NUM_ARCHITECTURES:
            raise ArchitectureError(
                f"architecture index must be in 0..{NUM_ARCHITECTURES - 1}, got {index}"
            )
        return _ALL[int(index)]

    @property
    def index(self) -> int:
        """This project's index of the cell, 0..15624: its ops (into ``OPS``) as base-5 digits in ``EDGES``
        order, first edge most significant.

        It is **not** NB201's official index (the cell's position in an official file's
        ``meta_archs``, ``api.query_index_by_arch``). NB201 enumerated the cells in this same
        base-5 order and then shuffled them (``random.seed(88); random.shuffle``), so the two agree
        on 1 of the 15,625 cells (6341); ``tests/harness/space/test_cells.py`` rebuilds the shuffle.
        Run folders of ``standalone`` are named by this index.
        """
        value = 0
        for o in self.ops:
            value = value * NUM_OPS + o
        return value

    @property
    def op_names(self) -> tuple[str, ...]:
        return tuple(OPS[o] for o in self.ops)

    def to_string(self) -> str:
        names = self.op_names
        node1 = f"|{names[0]}~0|"
        node2 = f"|{names[1]}~0|{names[2]}~1|"
        node3 = f"|{names[3]}~0|{names[4]}~1|{names[5]}~2|"
        return f"{node1}+{node2}+{node3}"

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        return f"Architecture('{self.to_string()}')"

    def with_op(self, edge: int, op: int) -> Architecture:
        ops = list(self.ops)
        ops[edge] = op
        return Architecture(tuple(ops))


def parse_architecture(text: str) -> Architecture:
    """Parse an NB201 architecture string; raise ArchitectureError naming what is wrong."""
    if not isinstance(text, str):
        raise ArchitectureError(f"architecture must be a string, got {type(text).__name__}")
    stripped = text.strip()
    example = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|avg_pool_3x3~1|nor_conv_1x1~2|"
    nodes = stripped.split("+")
    if len(nodes) != 3:
        raise ArchitectureError(
            f"malformed architecture {text!r}: expected 3 nodes joined by '+', like {example}"
        )
    ops: list[int] = []
    for node_number, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")) or len(node) < 2:
            raise ArchitectureError(
                f"malformed architecture {text!r}: node {node_number} must look like |op~0|...|"
            )
        entries = node[1:-1].split("|")
        if len(entries) != node_number:
            raise ArchitectureError(
                f"malformed architecture {text!r}: node {node_number} needs {node_number} "
                f"input(s), found {len(entries)}"
            )
        for expected_source, entry in enumerate(entries):
            name, sep, source = entry.partition("~")
            if not sep or source != str(expected_source):
                raise ArchitectureError(
                    f"malformed architecture {text!r}: entry {entry!r} of node {node_number} "
                    f"should be 'op~{expected_source}'"
                )
            if name not in OPS:
                raise ArchitectureError(
                    f"unknown op {name!r} in {text!r}; accepted ops: {', '.join(OPS)}"
                )
            ops.append(OPS.index(name))
    return Architecture(tuple(ops))


_ALL: tuple[Architecture, ...] = tuple(
    Architecture(ops) for ops in itertools.product(range(NUM_OPS), repeat=NUM_EDGES)
)


def all_architectures() -> tuple[Architecture, ...]:
    """All 15,625 architectures, ordered by ``Architecture.index``."""
    return _ALL


def ops_matrix() -> np.ndarray:
    """A (15625, 6) int8 array: row i holds the op indices of architecture i."""
    return _ops_matrix().copy()


@lru_cache(maxsize=1)
def _ops_matrix() -> np.ndarray:
    return np.array([a.ops for a in _ALL], dtype=np.int8)


def sample_architecture(rng: np.random.Generator) -> Architecture:
    """One architecture drawn uniformly at random with ``rng``."""
    return _ALL[int(rng.integers(NUM_ARCHITECTURES))]


def mutate_architecture(arch: Architecture, rng: np.random.Generator) -> Architecture:
    """Change the op of one uniformly chosen edge to a different, uniformly chosen op."""
    edge = int(rng.integers(NUM_EDGES))
    shift = int(rng.integers(1, NUM_OPS))
    return arch.with_op(edge, (arch.ops[edge] + shift) % NUM_OPS)


def neighbours(arch: Architecture) -> list[Architecture]:
    """The 24 architectures that differ from ``arch`` on exactly one edge."""
    return [arch.with_op(e, o) for e in range(NUM_EDGES) for o in range(NUM_OPS) if o != arch.ops[e]]


def is_output_disconnected(arch: Architecture) -> bool:
    """True when no path of non-``none`` edges joins the input node to the output node.

    Such cells pass no signal; NB201 networks built from them score chance accuracy (10%).
    """
    reached = {0}
    for (src, dst), op in sorted(zip(EDGES, arch.ops, strict=True), key=lambda item: item[0][1]):
        if op != NONE and src in reached:
            reached.add(dst)
    return 3 not in reached


def canonical_form(arch: Architecture) -> str:
    """A string shared by exactly the cells NB201 counts as isomorphic (6,466 classes).

    Follows NB201's convention: each node is the sorted sum of its input terms; a
    ``skip_connect`` passes its source's expression through unchanged, a parametric op
    or pooling wraps it, and a ``none`` edge, or any edge leaving a node that is itself a
    single zero, contributes the zero marker ``#``. Zero markers stay in the sum, which
    is why NB201 counts 6,466 classes and not fewer.
    """
    return _canonical_forms()[arch.index]


@lru_cache(maxsize=1)
def _canonical_forms() -> tuple[str, ...]:
    return tuple(_canonical_form_uncached(a) for a in _ALL)


def _canonical_form_uncached(arch: Architecture) -> str:
    node_expressions = ["x"]
    for dst in (1, 2, 3):
        terms = []
        for (src, edge_dst), op in zip(EDGES, arch.ops, strict=True):
            if edge_dst != dst:
                continue
            source = node_expressions[src]
            if op == NONE or source == "#":
                terms.append("#")
            elif op == SKIP:
                terms.append(source)
            else:
                terms.append(f"({source})@{OPS[op]}")
        node_expressions.append("+".join(sorted(terms)))
    return node_expressions[3]


def unique_architectures() -> tuple[Architecture, ...]:
    """One representative (the lowest index) of each of the 6,466 isomorphism classes."""
    seen: dict[str, Architecture] = {}
    for arch in _ALL:
        seen.setdefault(canonical_form(arch), arch)
    return tuple(seen.values())


def as_architecture(value: Architecture | str | Sequence[int]) -> Architecture:
    """Accept an Architecture, an NB201 string or a sequence of 6 op indices."""
    if isinstance(value, Architecture):
        return value
    if isinstance(value, str):
        return parse_architecture(value)
    return Architecture(tuple(value))


def iter_architectures() -> Iterator[Architecture]:
    return iter(_ALL)
