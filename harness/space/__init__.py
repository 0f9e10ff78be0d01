"""The NAS-Bench-201 search space.

``cells`` (re-exported here): the frozen, hashable ``Architecture``, parsing and printing of
NB201 strings, enumeration of all 15,625 cells, seeded sampling and mutation, isomorphism
classes. ``encodings``: feature encodings for learned models. ``converters``: other tools'
encodings (NASLib, NNI, Syne Tune). ``cost``: exact parameters and FLOPs of every cell's network.
"""

from harness.space.cells import (
    AVG_POOL,
    CONV1X1,
    CONV3X3,
    EDGES,
    NONE,
    NUM_ARCHITECTURES,
    NUM_EDGES,
    NUM_OPS,
    OPS,
    SKIP,
    Architecture,
    all_architectures,
    as_architecture,
    canonical_form,
    is_output_disconnected,
    iter_architectures,
    mutate_architecture,
    neighbours,
    ops_matrix,
    parse_architecture,
    sample_architecture,
    unique_architectures,
)

__all__ = [
    "AVG_POOL", "CONV1X1", "CONV3X3", "EDGES", "NONE", "NUM_ARCHITECTURES", "NUM_EDGES", "NUM_OPS", "OPS", "SKIP",
    "Architecture", "all_architectures", "as_architecture", "canonical_form", "is_output_disconnected",
    "iter_architectures", "mutate_architecture", "neighbours", "ops_matrix", "parse_architecture",
    "sample_architecture", "unique_architectures",
]
