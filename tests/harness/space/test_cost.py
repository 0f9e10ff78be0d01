"""Analytic costs against the torch network and against numbers NB201 published.

Published anchors (NB201 'params' in 1e6, 'flop' in 1e6 multiply-adds, read from the
official NAS-Bench-201-v1_1-096897 data as quoted in public code):
- extremes over all 15,625 cells per dataset, in EvoXBench's NB201 min/max table and an
  HPOBench bound script: CIFAR-10 params 0.073306..1.531546, flop 7.78305..220.11969;
  CIFAR-100 0.079156..1.537396, 7.7889..220.12554; ImageNet16-120 0.080456..1.538696,
  1.9534..55.03756;
- ``api.show(9930)`` (the best CIFAR-10 cell) as logged in public code: FLOP=184.73 M,
  Params=1.289 MB on CIFAR-10, 184.74 / 1.294 on CIFAR-100, 46.19 / 1.296 on ImageNet16-120.
"""

import time

import numpy as np
import pytest
import torch

from harness.errors import UnknownNameError
from harness.oneshot.network import TinyNetwork, count_flops, count_parameters
from harness.space import CONV3X3, NONE, Architecture, all_architectures, parse_architecture
from harness.space.cost import (
    NetworkShape,
    all_flops,
    all_params,
    flop_counts,
    flops,
    parameter_counts,
    params,
)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Forward passes here are tiny; extra threads only contend on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


BEST_NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


@pytest.mark.parametrize(
    "dataset, params_range, flops_range",
    [
        ("cifar10", (73_306, 1_531_546), (7_783_050, 220_119_690)),
        ("cifar100", (79_156, 1_537_396), (7_788_900, 220_125_540)),
        ("ImageNet16-120", (80_456, 1_538_696), (1_953_400, 55_037_560)),
    ],
)
def test_published_extremes_are_met_exactly(dataset, params_range, flops_range):
    shape = NetworkShape.for_dataset(dataset)
    counts, multiply_adds = parameter_counts(shape), flop_counts(shape)
    assert (counts.min(), counts.max()) == params_range
    assert (multiply_adds.min(), multiply_adds.max()) == flops_range
    all_conv = Architecture((CONV3X3,) * 6).index
    assert counts[all_conv] == params_range[1] and multiply_adds[all_conv] == flops_range[1]
    assert counts[Architecture((NONE,) * 6).index] == params_range[0]


@pytest.mark.parametrize(
    "dataset, published_params, published_flops",
    [("cifar10", 1.289, 184.73), ("cifar100", 1.294, 184.74), ("ImageNet16-120", 1.296, 46.19)],
)
def test_published_best_cell_matches_to_the_printed_digits(dataset, published_params, published_flops):
    assert round(params(BEST_NB201, dataset), 3) == published_params
    assert round(flops(BEST_NB201, dataset), 2) == published_flops


def sample_architectures(count, seed):
    rng = np.random.default_rng(seed)
    archs = [Architecture((CONV3X3,) * 6), Architecture((NONE,) * 6), parse_architecture(BEST_NB201)]
    return archs + [
        all_architectures()[i] for i in rng.choice(len(all_architectures()), count, replace=False)
    ]


@pytest.mark.parametrize("arch", sample_architectures(6, seed=0), ids=str)
def test_counts_equal_the_torch_network_at_nb201_size(arch):
    net = TinyNetwork(arch)
    assert count_parameters(net) == parameter_counts()[arch.index]
    assert count_flops(net, (1, 3, 32, 32)) == flop_counts()[arch.index]


@pytest.mark.parametrize("arch", sample_architectures(8, seed=1), ids=str)
def test_counts_equal_the_torch_network_for_other_shapes(arch):
    shape = NetworkShape(C=6, N=2, num_classes=7, input_size=12, in_channels=1, affine=False)
    net = TinyNetwork(arch, C=6, N=2, num_classes=7, in_channels=1, affine=False)
    assert count_parameters(net) == parameter_counts(shape)[arch.index]
    assert count_flops(net, (2, 1, 12, 12)) == flop_counts(shape)[arch.index]


def test_all_architectures_are_counted_well_under_a_second():
    start = time.perf_counter()
    counts = flop_counts(NetworkShape(C=12))
    assert time.perf_counter() - start < 1.0
    assert counts.shape == (15_625,) and counts.dtype == np.int64


def test_cost_depends_only_on_how_many_edges_use_each_op():
    a = parse_architecture("|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|nor_conv_1x1~0|skip_connect~1|none~2|")
    b = parse_architecture("|none~0|+|nor_conv_1x1~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|")
    assert params(a) == params(b) and flops(a) == flops(b)
    # pooling, skip and none cost nothing, as NB201 counts
    assert flops("|avg_pool_3x3~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|none~1|none~2|") == flops(
        Architecture((NONE,) * 6)
    )


def test_nb201_unit_arrays_and_arguments():
    assert all_params("cifar10")[Architecture((CONV3X3,) * 6).index] == pytest.approx(1.531546)
    assert all_flops("imagenet16-120").max() == pytest.approx(55.03756)
    assert parameter_counts().flags.writeable is False
    with pytest.raises(UnknownNameError):
        params(BEST_NB201, "svhn")
    with pytest.raises(ValueError, match="divisible by 4"):
        NetworkShape(input_size=30)
