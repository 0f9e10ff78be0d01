import pytest
import torch
from torch import nn

from harness.oneshot.network import Cell, TinyNetwork, count_flops, count_parameters, make_op
from harness.space import EDGES, NONE, OPS, SKIP, Architecture, parse_architecture

BEST_NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def cell_with(edge_ops: dict[tuple[int, int], str], channels: int = 4) -> Cell:
    ops = [OPS.index(edge_ops.get(edge, "none")) for edge in EDGES]
    return Cell(Architecture(tuple(ops)), channels).eval()


def test_forward_gives_logits_for_each_dataset_shape():
    torch.manual_seed(0)
    net = TinyNetwork(BEST_NB201, C=4, N=1)
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    net = TinyNetwork(BEST_NB201, C=4, N=1, num_classes=120)
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 120)
    net = TinyNetwork(BEST_NB201, C=4, N=1, in_channels=1)
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_layout_and_names_follow_autodl_tiny_network():
    net = TinyNetwork(BEST_NB201, C=16, N=5)
    assert len(net.cells) == 3 * 5 + 2
    keys = set(net.state_dict())
    # edge 3 (0->3) is skip_connect: no parameters; edge 0 is a 3x3 conv: ReLU(0)-Conv(1)-BN(2)
    assert "cells.0.layers.0.op.1.weight" in keys and "cells.0.layers.0.op.2.running_mean" in keys
    assert not any(k.startswith("cells.0.layers.3.") for k in keys)
    for reduction in (5, 11):
        assert {f"cells.{reduction}.conv_a.op.1.weight", f"cells.{reduction}.downsample.1.weight"} <= keys
    assert {
        "stem.0.weight",
        "stem.1.weight",
        "lastact.0.weight",
        "classifier.weight",
        "classifier.bias",
    } <= keys
    assert net.cells[5].conv_a.op[1].stride == (2, 2) and net.cells[11].conv_b.op[1].out_channels == 64


def test_cell_sums_edges_in_nb201_order():
    x = torch.randn(2, 4, 6, 6)
    # all skip: n1 = x, n2 = x + n1 = 2x, n3 = x + n1 + n2 = 4x
    assert torch.allclose(cell_with(dict.fromkeys(EDGES, "skip_connect"))(x), 4 * x)
    # a path 0 -> 2 -> 3 of skips, everything else none
    assert torch.allclose(cell_with({(0, 2): "skip_connect", (2, 3): "skip_connect"})(x), x)
    # the path 0 -> 1 with 1 -> 3 cut: output is zero
    assert torch.count_nonzero(cell_with({(0, 1): "skip_connect"})(x)) == 0


def test_average_pool_ignores_padding():
    x = torch.ones(1, 4, 5, 5)
    assert torch.allclose(cell_with({(0, 3): "avg_pool_3x3"})(x), x)


def test_all_none_network_outputs_the_classifier_bias():
    net = TinyNetwork(Architecture((NONE,) * 6), C=4, N=1).eval()
    with torch.no_grad():
        out = net(torch.randn(3, 3, 32, 32))
    assert torch.allclose(out, net.classifier.bias.expand(3, -1))


def test_affine_flags_reach_the_cell_ops_only():
    net = TinyNetwork(BEST_NB201, C=4, N=1, affine=False, track_running_stats=False)
    conv_op = net.cells[0].layers[0].op
    assert conv_op[1].bias is not None  # NB201: a conv has a bias when its BN is not affine
    assert not conv_op[2].affine and not conv_op[2].track_running_stats
    assert net.stem[1].affine and net.cells[1].conv_a.op[2].affine and net.lastact[0].affine
    assert TinyNetwork(BEST_NB201, C=4, N=1).cells[0].layers[0].op[1].bias is None


def test_make_op_accepts_names_and_indices():
    assert isinstance(make_op("skip_connect", 4), nn.Identity)
    assert isinstance(make_op(SKIP, 4), nn.Identity)
    pool = make_op("avg_pool_3x3", 4)
    assert isinstance(pool, nn.AvgPool2d) and pool.count_include_pad is False
    with pytest.raises(ValueError):
        make_op(7, 4)
    with pytest.raises(ValueError, match="unknown op 'conv_3x3'"):
        make_op("conv_3x3", 4)


def test_counters_on_a_hand_computed_network():
    # C=2, N=1, 8x8 input, 3 classes, one 1x1 conv on edge (0,1), everything else none.
    net = TinyNetwork(
        parse_architecture("|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|none~2|"), C=2, N=1, num_classes=3
    )
    stem = 3 * 2 * 9 + 2 * 2
    cells = (2 * 2 + 2 * 2) + (4 * 4 + 2 * 4) + (8 * 8 + 2 * 8)
    reductions = (9 * 2 * 4 + 2 * 4 + 9 * 4 * 4 + 2 * 4 + 2 * 4) + (
        9 * 4 * 8 + 2 * 8 + 9 * 8 * 8 + 2 * 8 + 4 * 8
    )
    head = 2 * 8 + 8 * 3 + 3
    assert count_parameters(net) == stem + cells + reductions + head
    flops = 9 * 3 * 2 * 64 + (2 * 2 * 64 + 4 * 4 * 16 + 8 * 8 * 4)
    flops += (9 * 2 * 4 + 9 * 4 * 4 + 2 * 4) * 16 + (9 * 4 * 8 + 9 * 8 * 8 + 4 * 8) * 4 + 8 * 3 + 3
    assert count_flops(net, (2, 3, 8, 8)) == flops
