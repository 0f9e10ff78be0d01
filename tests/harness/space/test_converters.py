import pytest

from harness.errors import ArchitectureError
from harness.space import OPS, all_architectures, parse_architecture
from harness.space.converters import (
    NNI_OPS,
    SYNE_TUNE_CHOICES,
    from_naslib,
    from_nni,
    from_syne_tune,
    from_syne_tune_codes,
    to_naslib,
    to_nni,
    to_syne_tune,
    to_syne_tune_codes,
)

# Hand-checked example: edges (0,1) (0,2) (1,2) (0,3) (1,3) (2,3) carry these ops.
EXAMPLE = parse_architecture(
    "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
)


@pytest.mark.parametrize(
    "to, back",
    [
        (to_naslib, from_naslib),
        (to_nni, from_nni),
        (lambda a: to_nni(a, label="cell"), lambda d: from_nni(d, label="cell")),
        (to_syne_tune, from_syne_tune),
        (to_syne_tune_codes, from_syne_tune_codes),
    ],
)
def test_round_trip_every_architecture(to, back):
    for arch in all_architectures():
        assert back(to(arch)) == arch


def test_nni_example_by_hand():
    assert to_nni(EXAMPLE) == {
        "0_1": "conv_3x3",
        "0_2": "conv_1x1",
        "1_2": "avg_pool_3x3",
        "0_3": "skip_connect",
        "1_3": "none",
        "2_3": "conv_3x3",
    }
    assert to_nni(EXAMPLE, label="cell")["cell__1_2"] == "avg_pool_3x3"
    # NNI's PRIMITIVES list is ours with the 'nor_' prefix dropped
    assert [name.replace("nor_", "") for name in OPS] == list(NNI_OPS)


def test_syne_tune_example_by_hand():
    assert to_syne_tune(EXAMPLE) == {
        "hp_x0": "nor_conv_3x3",
        "hp_x1": "nor_conv_1x1",
        "hp_x2": "avg_pool_3x3",
        "hp_x3": "skip_connect",
        "hp_x4": "none",
        "hp_x5": "nor_conv_3x3",
    }
    # positions in ["avg_pool_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_1x1", "none"]
    assert to_syne_tune_codes(EXAMPLE) == (1, 3, 0, 2, 4, 1)
    assert sorted(SYNE_TUNE_CHOICES) == sorted(OPS)
    config = dict(to_syne_tune(EXAMPLE), hp_epoch=12)  # a fidelity in the config is ignored
    assert from_syne_tune(config) == EXAMPLE


def test_naslib_example_still_holds():
    assert to_naslib(EXAMPLE) == (2, 3, 0, 4, 1, 2)


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: from_nni({"0_1": "conv_3x3"}), "lacks edge '0_2'"),
        (lambda: from_nni({**to_nni(EXAMPLE), "0_1": "nor_conv_3x3"}), "unknown NNI op 'nor_conv_3x3'"),
        (lambda: from_nni(to_nni(EXAMPLE), label="cell"), "cell__0_1"),
        (lambda: from_syne_tune({"hp_x0": "none"}), "lacks 'hp_x1'"),
        (lambda: from_syne_tune({**to_syne_tune(EXAMPLE), "hp_x5": "conv_3x3"}), "unknown op 'conv_3x3'"),
        (lambda: from_syne_tune_codes((0, 1, 2, 3, 4)), "6 ints"),
        (lambda: from_syne_tune_codes((0, 1, 2, 3, 4, 5)), "6 ints"),
    ],
)
def test_malformed_inputs_name_the_problem(call, fragment):
    with pytest.raises(ArchitectureError) as info:
        call()
    assert fragment in str(info.value)
