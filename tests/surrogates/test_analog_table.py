"""The embedded table's encoding: each claim of surrogates/analog_table.py's docstring, pinned."""

import pickle
from collections import defaultdict

import numpy as np
import pytest

from harness.errors import DataFileError
from harness.space import all_architectures, canonical_form, is_output_disconnected, parse_architecture
from harness.space.converters import from_naslib, to_naslib
from surrogates.analog_table import load_analog_benchmark, locate_table_file, read_table_file


@pytest.fixture(scope="module")
def table():
    return load_analog_benchmark()


def test_file_is_located_without_importing_the_package():
    import sys

    path = locate_table_file()
    assert path.name == "data.anb" and path.is_file()
    assert "analognasbench" not in sys.modules


def test_naslib_round_trip():
    for arch in all_architectures()[::37]:
        assert from_naslib(to_naslib(arch)) == arch
    # NASLib codes: 0 skip, 1 none, 2 conv3x3, 3 conv1x1, 4 avg pool; edges row-major.
    arch = parse_architecture("|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|")
    assert to_naslib(arch) == (2, 3, 0, 4, 1, 2)


def test_chance_accuracy_cells_are_exactly_the_disconnected_ones(table):
    at_chance = {a for a in all_architectures() if table.query(a).test_accuracy <= 10.0001}
    disconnected = {a for a in all_architectures() if is_output_disconnected(a)}
    assert len(at_chance) == 341
    assert at_chance == disconnected
    # A cell whose output node has only `none` inputs scores 10%.
    dead_output = parse_architecture("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|")
    assert table.query(dead_output).test_accuracy == pytest.approx(10.0)


def test_isomorphic_cells_agree_only_under_the_chosen_skip_code(table):
    def mean_spread(accuracy):
        classes = defaultdict(list)
        for arch in all_architectures():
            classes[canonical_form(arch)].append(accuracy[arch.index])
        return np.mean([max(v) - min(v) for v in classes.values() if len(v) > 1 and min(v) > 10.01])

    ours = mean_spread(table.test_accuracy)
    # Swap what we call skip_connect and avg_pool_3x3 and measure again.
    swap = {1: 4, 4: 1}
    swapped = np.empty_like(table.test_accuracy)
    for arch in all_architectures():
        other = type(arch)(tuple(swap.get(o, o) for o in arch.ops))
        swapped[other.index] = table.test_accuracy[arch.index]
    assert ours < 0.8 < 2.0 < mean_spread(swapped)


def test_uniform_cells_and_best_cells(table):
    def uniform(op):
        return table.query(parse_architecture(f"|{op}~0|+|{op}~0|{op}~1|+|{op}~0|{op}~1|{op}~2|")).test_accuracy

    assert uniform("nor_conv_3x3") > uniform("nor_conv_1x1") > uniform("skip_connect") > uniform("avg_pool_3x3")
    assert uniform("none") == pytest.approx(10.0)
    # NB201's best CIFAR-10 cell is among the table's top 5.
    best = parse_architecture(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    rank = int((table.test_accuracy > table.query(best).test_accuracy).sum())
    assert rank < 5
    assert table.test_optimum == pytest.approx(94.0664)


def test_extras_and_reward_labelling(table):
    result = table.query(parse_architecture("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"))
    assert {"ptq_accuracy", "qat_accuracy", "noisy_accuracy", "analog_accuracy", "analog_drift_60"} <= set(result.extras)
    assert "only accuracy" in table.reward_metric


def test_corrupt_and_hostile_files_are_refused(tmp_path):
    corrupt = tmp_path / "data.anb"
    corrupt.write_bytes(b"not a pickle")
    with pytest.raises(DataFileError, match="cannot read"):
        read_table_file(corrupt)
    hostile = tmp_path / "evil.anb"
    hostile.write_bytes(pickle.dumps({"x": __import__("os").getcwd}))
    with pytest.raises(DataFileError, match="refusing"):
        read_table_file(hostile)
    incomplete = tmp_path / "small.anb"
    incomplete.write_bytes(pickle.dumps({(0,) * 6: 1}))
    with pytest.raises(DataFileError, match="complete"):
        read_table_file(incomplete)


def test_missing_override_file(monkeypatch, tmp_path):
    monkeypatch.setenv("NAS_HARNESS_ANALOG_FILE", str(tmp_path / "nope.anb"))
    with pytest.raises(DataFileError, match="not a file"):
        locate_table_file()
