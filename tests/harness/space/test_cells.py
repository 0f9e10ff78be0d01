import pickle

import numpy as np
import pytest

from harness.errors import ArchitectureError
from harness.space import (
    NUM_ARCHITECTURES,
    OPS,
    Architecture,
    all_architectures,
    canonical_form,
    is_output_disconnected,
    mutate_architecture,
    neighbours,
    parse_architecture,
    sample_architecture,
    unique_architectures,
)

BEST_NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_string_round_trip_every_architecture():
    for arch in all_architectures()[::97]:
        assert parse_architecture(arch.to_string()) == arch
    arch = parse_architecture(BEST_NB201)
    assert arch.to_string() == BEST_NB201
    assert arch.op_names == ("nor_conv_3x3",) * 3 + ("skip_connect", "nor_conv_3x3", "nor_conv_3x3")


def test_enumeration_is_complete_and_indexed():
    archs = all_architectures()
    assert len(archs) == NUM_ARCHITECTURES == 15_625
    assert len(set(archs)) == NUM_ARCHITECTURES
    assert all(a.index == i for i, a in enumerate(archs[:50]))
    assert Architecture.from_index(12_345).index == 12_345


def nb201_official_order() -> list[str]:
    """NB201's ``meta_archs`` as its authors made them (AutoDL-Projects, ``generate_meta_info``):
    ``CellStructure.gen_all`` over NB201's op list, then ``random.seed(88); random.shuffle``."""
    import random

    space = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]  # get_search_spaces
    archs: list[list[str]] = [[]]
    for node in (1, 2, 3):  # gen_all: node by node; within a node, get_combination: first input slowest
        combinations = [[]]
        for source in range(node):
            combinations = [c + [f"{op}~{source}"] for c in combinations for op in space]
        archs = [a + ["|" + "|".join(c) + "|"] for a in archs for c in combinations]
    strings = ["+".join(a) for a in archs]
    random.seed(88)
    random.shuffle(strings)
    return strings


def test_index_is_not_nb201s_official_index():
    """What ``Architecture.index``'s docstring says: NB201's official index is the base-5 order shuffled,
    and the two agree on exactly one cell."""
    official = nb201_official_order()
    # The three checks NB201's own script makes of its shuffle (AutoDL-Projects, generate_meta_info).
    assert official[0] == "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
    assert official[9] == "|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
    assert official[123] == "|avg_pool_3x3~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"
    agree = [i for i, text in enumerate(official) if parse_architecture(text).index == i]
    assert agree == [6341]
    assert official.index(BEST_NB201) != parse_architecture(BEST_NB201).index


def test_architecture_is_frozen_hashable_and_picklable():
    arch = parse_architecture(BEST_NB201)
    with pytest.raises(AttributeError):
        arch.ops = (0,) * 6
    assert {arch: 1}[Architecture(arch.ops)] == 1
    assert pickle.loads(pickle.dumps(arch)) == arch


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "3 nodes"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|", "3 nodes"),
        ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv'"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "none~0"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "needs 2"),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "node 1"),
    ],
)
def test_malformed_strings_name_the_problem(text, fragment):
    with pytest.raises(ArchitectureError, match=None) as info:
        parse_architecture(text)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_out_of_space_encodings_rejected():
    with pytest.raises(ArchitectureError):
        Architecture((0, 1, 2, 3, 4, 5))
    with pytest.raises(ArchitectureError):
        Architecture((0, 1, 2))
    with pytest.raises(ArchitectureError):
        Architecture.from_index(NUM_ARCHITECTURES)


def test_sampling_is_uniform_and_seeded():
    draws = [sample_architecture(np.random.default_rng(3)) for _ in range(2)]
    assert draws[0] == draws[1]
    rng = np.random.default_rng(0)
    counts = np.zeros((6, 5))
    for _ in range(5000):
        for e, o in enumerate(sample_architecture(rng).ops):
            counts[e, o] += 1
    assert np.all(np.abs(counts / 5000 - 0.2) < 0.03)


def test_mutation_changes_exactly_one_edge():
    rng = np.random.default_rng(1)
    arch = parse_architecture(BEST_NB201)
    for _ in range(200):
        child = mutate_architecture(arch, rng)
        assert sum(a != b for a, b in zip(arch.ops, child.ops, strict=True)) == 1
    assert len(set(neighbours(arch))) == 24


def test_isomorphism_classes_match_nb201_count():
    assert len(unique_architectures()) == 6_466
    assert len({canonical_form(a) for a in all_architectures()}) == 6_466


def test_isomorphic_pairs():
    # With a skip on (0,1), node 1 equals the input, so a conv reading node 1 equals one reading node 0.
    a = parse_architecture("|skip_connect~0|+|none~0|nor_conv_3x3~1|+|none~0|nor_conv_1x1~1|skip_connect~2|")
    b = parse_architecture("|skip_connect~0|+|nor_conv_3x3~0|none~1|+|nor_conv_1x1~0|none~1|skip_connect~2|")
    assert canonical_form(a) == canonical_form(b)
    c = a.with_op(0, OPS.index("avg_pool_3x3"))
    assert canonical_form(a) != canonical_form(c)


def test_disconnected_cells():
    assert is_output_disconnected(Architecture((0,) * 6))
    assert not is_output_disconnected(parse_architecture(BEST_NB201))
    # Only the path 0 -> 1 -> 2 -> 3 is open.
    chain = parse_architecture("|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|")
    assert not is_output_disconnected(chain)
    assert is_output_disconnected(chain.with_op(5, OPS.index("none")))
    assert sum(is_output_disconnected(a) for a in all_architectures()) == 341
