import numpy as np
import pytest

from harness.errors import ArchitectureError
from harness.registry import DuplicateNameError
from harness.space import (
    NUM_ARCHITECTURES,
    Architecture,
    all_architectures,
    canonical_form,
    is_output_disconnected,
    ops_matrix,
    parse_architecture,
)
from harness.space.encodings import (
    ENCODINGS,
    PATH_DIM,
    STRUCTURE_FEATURES,
    Encoding,
    as_ops_matrix,
    canonical_ops,
    effective_ops,
    encode,
    is_disconnected,
    live_paths,
    one_hot,
    op_counts,
    path_encoding,
    path_indicator,
    structure,
)

BEST_NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
# Node 1 is cut off from the input, so only the path 0-2-3 (1x1 conv then 3x3 conv) is live.
ONE_PATH = "|none~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|none~0|skip_connect~1|nor_conv_3x3~2|"
EMPTY = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def feature(row: np.ndarray, name: str) -> float:
    return row[STRUCTURE_FEATURES.index(name)]


def test_one_hot_and_op_counts_by_hand():
    arch = parse_architecture(BEST_NB201)  # ops (3, 3, 3, 1, 3, 3)
    row = one_hot([arch])[0]
    assert row.shape == (30,) and row.sum() == 6
    assert np.flatnonzero(row).tolist() == [3, 8, 13, 16, 23, 28]  # 5 * edge + op
    assert op_counts([arch])[0].tolist() == [0, 1, 0, 5, 0]


def test_path_encoding_of_a_known_cell():
    row = path_encoding([parse_architecture(BEST_NB201)])[0]
    assert row.shape == (PATH_DIM,) == (84,)
    # 0-3 skip -> column 0; 0-1-3 and 0-2-3 both 3x3,3x3 -> 4 + 2*4 + 2 = 14 (twice);
    # 0-1-2-3 three 3x3 -> 20 + 2*16 + 2*4 + 2 = 62.
    assert {int(i): row[i] for i in np.flatnonzero(row)} == {0: 1.0, 14: 2.0, 62: 1.0}
    blocks = path_indicator([parse_architecture(BEST_NB201)])[0]
    assert blocks.shape == (100,) and np.flatnonzero(blocks).tolist() == [0, 4 + 10, 20 + 10, 36 + 42]


def test_none_cuts_paths_and_dead_edges():
    arch = parse_architecture(ONE_PATH)  # ops (0, 2, 4, 0, 1, 3)
    assert live_paths([arch])[0].tolist() == [False, False, True, False]
    assert {int(i): v for i, v in enumerate(path_encoding([arch])[0]) if v} == {4 + 1 * 4 + 2: 1.0}
    # Edges 1->2 (pool) and 1->3 (skip) leave an unreachable node: they are dead.
    assert effective_ops([arch])[0].tolist() == [0, 2, 0, 0, 0, 3]
    row = structure([arch])[0]
    expected = {
        "disconnected": 0, "live_paths": 1, "live_0-2-3": 1, "live_0-1-3": 0, "effective_edges": 2,
        "effective_conv1x1": 1, "effective_conv3x3": 1, "effective_pool": 0, "effective_skip": 0,
        "max_convs_on_path": 2, "min_convs_on_path": 2, "identity_path": 0,
        "max_receptive_growth": 2, "parametric_live_paths": 1,
    }
    assert {name: feature(row, name) for name in expected} == expected


def test_disconnected_cell_has_no_path_features():
    row = structure([parse_architecture(EMPTY)])[0]
    assert feature(row, "disconnected") == 1 and row.sum() == 1
    assert path_encoding([parse_architecture(EMPTY)]).sum() == 0


def test_disconnected_matches_the_space_definition():
    flags = is_disconnected(ops_matrix())
    assert flags.sum() == 341
    for arch in all_architectures()[::7]:
        assert flags[arch.index] == is_output_disconnected(arch)


def test_effective_ops_are_idempotent_and_keep_the_live_paths():
    ops = ops_matrix()
    eff = effective_ops(ops)
    assert np.array_equal(effective_ops(eff), eff)
    assert np.array_equal(live_paths(eff), live_paths(ops))


def test_canonical_ops_pick_one_member_per_isomorphism_class():
    rows = canonical_ops(ops_matrix())
    assert len(np.unique(rows, axis=0)) == 6466
    for arch, row in list(zip(all_architectures(), rows, strict=True))[::13]:
        assert canonical_form(Architecture(tuple(row))) == canonical_form(arch)
    # Node 1 is a copy of the input, so 1x1 conv on edge 0->3 or on edge 1->3 is one class.
    pair = [parse_architecture(s) for s in (
        "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_1x1~2|",
        "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|nor_conv_1x1~2|",
    )]
    assert np.array_equal(*canonical_ops(pair))


@pytest.mark.parametrize("name", list(ENCODINGS))
def test_every_encoding_vectorises(name):
    encoding = ENCODINGS[name]
    full = encode(name, ops_matrix())
    assert full.shape == (NUM_ARCHITECTURES, encoding.dim) and full.dtype == np.float64
    assert np.isfinite(full).all()
    some = all_architectures()[100:110]
    assert np.array_equal(encoding(list(some)), full[100:110])


def test_registry_and_input_checks():
    assert {"one_hot", "op_counts", "path", "structure", "effective_structure"} <= set(ENCODINGS)
    with pytest.raises(DuplicateNameError):
        ENCODINGS.add("one_hot", Encoding("one_hot", 1, one_hot, "another"))
    with pytest.raises(ArchitectureError):
        as_ops_matrix(np.zeros((3, 5), dtype=int))
    with pytest.raises(ArchitectureError):
        as_ops_matrix(np.full((2, 6), 5))
    assert as_ops_matrix([]).shape == (0, 6)
