"""The supernet's fast forwards compute exactly what the plain NB201 network computes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import harness.oneshot.supernet as supernet
from harness.oneshot.network import TinyNetwork
from harness.oneshot.supernet import (
    Supernet,
    average_pool_3x3,
    cell_batchnorms,
    live_ops,
    recalibrate_batchnorm,
)
from harness.space import EDGES, NONE, NUM_EDGES, NUM_OPS, OPS, SKIP, Architecture, parse_architecture
from harness.testing import weights

BEST = parse_architecture(
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
#: Every op on some edge; node 1 feeds node 3 only through a pool, node 2 through a 1x1 conv.
MIXED = Architecture((4, 3, 1, 1, 4, 2))
#: Edge (0, 1) is a conv whose node reaches the output through nothing: a dead branch.
DEAD_BRANCH = Architecture((3, 2, 0, 1, 0, 4))
#: No input-to-output path: the cell outputs zeros. (With a conv on (2, 3), NB201's network
#: would output BatchNorm(conv bias) there, a constant; the supernet treats the edge as dead.)
DISCONNECTED = Architecture((3, 0, 0, 0, 0, 0))
ARCHS = [BEST, MIXED, DEAD_BRANCH, DISCONNECTED]
TOL = dict(rtol=1e-9, atol=1e-10)


def make_supernet(track_running_stats: bool, seed: int = 0) -> Supernet:
    torch.manual_seed(seed)
    return Supernet(C=4, N=1, affine=False, track_running_stats=track_running_stats).double()


def images(n: int = 6, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def tiny_network_with_weights_of(model: Supernet, arch: Architecture) -> TinyNetwork:
    """The stand-alone network of ``arch`` holding the supernet's weights and statistics for it."""
    tiny = TinyNetwork(arch, C=model.C, N=model.N, affine=model.affine,
                       track_running_stats=model.track_running_stats).double()
    source = model.state_dict()
    state = {}
    for key in tiny.state_dict():
        parts = key.split(".")
        if parts[0] == "cells" and parts[2] == "layers":  # cells.i.layers.e.op... -> cells.i.edges.e.o.op...
            parts = ["cells", parts[1], "edges", parts[3], str(arch.ops[int(parts[3])]), *parts[4:]]
        state[key] = source[".".join(parts)]
    tiny.load_state_dict(state)
    return tiny


def live_parameter_pairs(model: Supernet, tiny: TinyNetwork, arch: Architecture):
    """(supernet parameter, stand-alone parameter) for every weight the live path uses."""
    ops = live_ops(arch)
    named = dict(model.named_parameters())
    for key, param in tiny.named_parameters():
        parts = key.split(".")
        if parts[0] == "cells" and parts[2] == "layers":
            edge = int(parts[3])
            if ops[edge] == NONE:
                continue
            parts = ["cells", parts[1], "edges", parts[3], str(ops[edge]), *parts[4:]]
        yield named[".".join(parts)], param


@pytest.mark.parametrize("track_running_stats", [True, False])
@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: "".join(map(str, a.ops)))
@pytest.mark.parametrize("channels_last", [False, True])
def test_single_path_equals_the_stand_alone_network(track_running_stats, arch, channels_last):
    model = make_supernet(track_running_stats)
    tiny = tiny_network_with_weights_of(model, arch)
    x = images()
    if channels_last:
        model, tiny = model.to(memory_format=torch.channels_last), tiny.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    out, expected = model(x, arch), tiny(x)
    torch.testing.assert_close(out, expected, **TOL)
    out.square().sum().backward()
    expected.square().sum().backward()
    for ours, theirs in live_parameter_pairs(model, tiny, arch):
        torch.testing.assert_close(ours.grad, theirs.grad, **TOL)
    # the statistics the path updated are the stand-alone network's
    if track_running_stats:
        updated = tiny_network_with_weights_of(model, arch).state_dict()
        for key, value in tiny.state_dict().items():
            parts = key.split(".")
            if parts[0] != "cells" or parts[2] != "layers" or live_ops(arch)[int(parts[3])] != NONE:
                torch.testing.assert_close(updated[key], value, **TOL)


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: "".join(map(str, a.ops)))
def test_eval_forward_equals_the_stand_alone_network(arch, monkeypatch):
    """Eval mode folds BatchNorm into the convolutions and runs big batches in chunks."""
    model = make_supernet(True)
    model(images(seed=5), arch)  # running statistics away from their initial values
    model.eval()
    tiny = tiny_network_with_weights_of(model, arch).eval()
    x = images(n=10)
    monkeypatch.setattr(supernet, "_CHUNK_BYTES", 3 * 4 * 8 * 8 * 8)  # chunks of 3 images
    assert model._batch_chunk(x) == 3
    with torch.inference_mode():
        torch.testing.assert_close(model(x, arch), tiny(x), **TOL)
    out = model(x, arch)  # the folded weights carry gradients too
    expected = tiny(x)
    torch.testing.assert_close(out, expected, **TOL)
    out.sum().backward()
    expected.sum().backward()
    for ours, theirs in live_parameter_pairs(model, tiny, arch):
        torch.testing.assert_close(ours.grad, theirs.grad, **TOL)


def test_batch_statistics_are_never_split_into_chunks(monkeypatch):
    monkeypatch.setattr(supernet, "_CHUNK_BYTES", 1)
    x = images()
    assert make_supernet(False).eval()._batch_chunk(x) == len(x)  # eval, but batch statistics
    assert make_supernet(True)._batch_chunk(x) == len(x)  # train mode
    assert make_supernet(True).eval()._batch_chunk(x) == 1


@pytest.mark.parametrize("track_running_stats", [True, False])
@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: "".join(map(str, a.ops)))
def test_mixed_forward_with_one_hot_weights_equals_the_single_path(track_running_stats, arch):
    single = make_supernet(track_running_stats)
    mixed = make_supernet(track_running_stats)
    x = images()
    weights = torch.zeros(NUM_EDGES, NUM_OPS, dtype=torch.float64)
    weights[torch.arange(NUM_EDGES), torch.tensor(arch.ops)] = 1.0
    out, expected = mixed(x, weights=weights), single(x, arch)
    torch.testing.assert_close(out, expected, **TOL)
    out.square().sum().backward()
    expected.square().sum().backward()
    for (name, ours), theirs in zip(mixed.named_parameters(), single.parameters(), strict=True):
        if theirs.grad is not None:  # the single path's parameters; the others get zero gradients
            torch.testing.assert_close(ours.grad, theirs.grad, **TOL, msg=name)
        else:
            assert ours.grad is None or not ours.grad.any(), name


def test_mixed_forward_sums_weighted_ops():
    model = make_supernet(False)
    x = images()
    weights = torch.softmax(torch.randn(NUM_EDGES, NUM_OPS, dtype=torch.float64), dim=1)
    cell, pool = model.cells[0], nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    h = model.stem(x)
    nodes = [h]
    for target in (1, 2, 3):
        total = 0
        for e, (src, dst) in enumerate(EDGES):
            if dst == target:
                for o in range(1, NUM_OPS):
                    op = pool if OPS[o] == "avg_pool_3x3" else cell.edges[e][o]
                    total = total + weights[e, o] * op(nodes[src])
        nodes.append(total)
    torch.testing.assert_close(cell(h, weights=weights), nodes[3], **TOL)


def test_dead_branches_are_skipped_without_changing_output_or_gradients():
    """A dead edge's op is not run: its parameters get no gradient, and the rest is unchanged."""
    model = make_supernet(True)
    assert live_ops(DEAD_BRANCH) == (0, 2, 0, 1, 0, 4)  # the conv on (0, 1) feeds nothing
    tiny = tiny_network_with_weights_of(model, DEAD_BRANCH)  # runs every edge, as NB201 does
    x = images()
    out, expected = model(x, DEAD_BRANCH), tiny(x)
    torch.testing.assert_close(out, expected, **TOL)
    out.sum().backward()
    expected.sum().backward()
    dead = model.cells[0].edges[0][3].op[1].weight
    assert dead.grad is None and not any(p is dead for p in model.path_parameters(DEAD_BRANCH))
    assert not tiny.cells[0].layers[0].op[1].weight.grad.any()
    for ours, theirs in live_parameter_pairs(model, tiny, DEAD_BRANCH):
        torch.testing.assert_close(ours.grad, theirs.grad, **TOL)
    # the dead conv's BatchNorm saw no data
    assert model.cells[0].edges[0][3].op[2].num_batches_tracked == 0


def test_in_place_sums_leave_nodes_and_inputs_alone():
    model = make_supernet(False)
    h = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    copy = h.clone()
    # all skips: node1 = h, node2 = h + node1, node3 = h + node1 + node2 = 4h
    torch.testing.assert_close(model.cells[0](h, (SKIP,) * NUM_EDGES), 4 * h, **TOL)
    # pools shared between edges of one source, summed onto a conv output
    model.cells[0](h, live_ops(MIXED))
    torch.testing.assert_close(h, copy, rtol=0, atol=0)


@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (1, 2, 1, 4), (1, 1, 2, 2), (2, 16, 8, 8)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_average_pool_equals_torch_pooling(shape, channels_last):
    x = torch.randn(shape, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_()
    reference = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    grad = torch.randn(shape, dtype=torch.float64)
    out = average_pool_3x3(x)
    torch.testing.assert_close(out, reference(x), **TOL)
    (mine,) = torch.autograd.grad(out, x, grad)
    (theirs,) = torch.autograd.grad(reference(x), x, grad)
    torch.testing.assert_close(mine, theirs, **TOL)
    assert torch.autograd.gradcheck(average_pool_3x3, (x,))


def test_recalibrate_batchnorm_resets_and_recomputes_statistics_deterministically():
    model = make_supernet(True)
    batches = [images(seed=s) for s in (2, 3)]
    before = weights(model)
    momenta = [m.momentum for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    model.eval()
    assert recalibrate_batchnorm(model, BEST, batches) == 12
    after = weights(model)
    assert not model.training
    assert momenta == [m.momentum for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    conv = "cells.0.edges.0.3.op.2.running_mean"  # on BEST's path
    assert not torch.equal(before[conv], after[conv])
    assert after["cells.0.edges.0.3.op.2.num_batches_tracked"] == 2
    assert after["cells.0.edges.0.2.op.2.num_batches_tracked"] == 0  # off the path: reset
    # exact average over the batches (momentum None), whatever came before
    model(images(seed=9), MIXED)
    recalibrate_batchnorm(model, BEST, batches)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, after[key], rtol=0, atol=0)
    # the stem's statistics: the plain average of the two batches' statistics
    stem = torch.stack([model.stem[0](b).mean(dim=(0, 2, 3)) for b in batches]).mean(0)
    torch.testing.assert_close(model.stem[1].running_mean, stem, **TOL)


def test_recalibrate_without_tracked_statistics_touches_only_the_skeleton():
    model = make_supernet(False)
    assert all(m.running_mean is None for m in cell_batchnorms(model))
    assert recalibrate_batchnorm(model, BEST, [images()]) == 6
    assert model.stem[1].num_batches_tracked == 1


def test_state_dict_keys_are_the_module_names():
    keys = set(make_supernet(True).state_dict())
    assert {"cells.0.edges.0.3.op.1.weight", "cells.0.edges.0.3.op.1.bias",
            "cells.0.edges.5.2.op.2.running_var", "cells.1.conv_a.op.1.weight"} <= keys


def test_bfloat16_autocast_trains_in_channels_last():
    torch.manual_seed(0)
    model = Supernet(C=4, N=1, affine=False, track_running_stats=False).to(memory_format=torch.channels_last)
    x = torch.randn(4, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x, MIXED)
    out.float().square().sum().backward()
    grads = [p.grad for p in model.path_parameters(MIXED)]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
