"""The NAS-Bench-201 network for one cell, in PyTorch (AutoDL-Projects' ``TinyNetwork``).

Layout, as in ``lib/models/cell_infers/tiny_network.py`` of D-X-Y/AutoDL-Projects:
a 3x3 stem convolution to ``C`` channels with BatchNorm; three stages of ``N`` cells with
``C``, ``2C`` and ``4C`` channels; between stages a residual reduction block
(``ResNetBasicblock`` with stride 2); then BatchNorm-ReLU, global average pooling and a
linear classifier. The cell ops are those of ``cell_operations.py``: ``none`` multiplies
by zero, ``skip_connect`` is the identity, ``nor_conv_1x1`` / ``nor_conv_3x3`` are
ReLU-Conv-BN (the convolution has a bias only when the BatchNorm is not affine) and
``avg_pool_3x3`` is a stride-1 average pool that does not count the padding.

Every edge of the cell holds its op module, ``none`` edges and edges fed by a node that is
always zero included, exactly as NB201's ``InferCell`` does, so parameter and FLOP counts
match what NB201 reports. Module names follow AutoDL-Projects (``stem``, ``cells.i.layers.e``,
``conv_a``/``conv_b``/``downsample``, ``lastact``, ``classifier``), so a state dict from
that code base has the same keys. Unlike AutoDL-Projects, ``forward`` returns the logits
only.

``affine`` and ``track_running_stats`` apply to the cell ops only; the stem, the reduction
blocks and the final BatchNorm always use PyTorch's defaults, as in NB201's search models.
``CellNetwork`` takes any cell factory, so a supernet can reuse the skeleton.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from harness.space import AVG_POOL, CONV1X1, CONV3X3, EDGES, NONE, OPS, SKIP, Architecture, as_architecture


class ReLUConvBN(nn.Module):
    """ReLU, convolution, BatchNorm (NB201's ``ReLUConvBN``; parameters live in ``self.op``)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int,
        stride: int = 1,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=kernel_size // 2, bias=not affine),
            nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track_running_stats),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Zero(nn.Module):
    """The ``none`` op: a zero tensor of the input's shape (``x * 0``, as NB201 computes it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(op: int | str, channels: int, affine: bool = True, track_running_stats: bool = True) -> nn.Module:
    """The module for one cell edge: ``op`` is an index into ``harness.space.OPS`` or its name."""
    if isinstance(op, str) and op not in OPS:
        raise ValueError(f"unknown op {op!r}; accepted: {', '.join(OPS)}")
    index = OPS.index(op) if isinstance(op, str) else int(op)
    if index == NONE:
        return Zero()
    if index == SKIP:
        return nn.Identity()
    if index == CONV1X1:
        return ReLUConvBN(channels, channels, 1, 1, affine, track_running_stats)
    if index == CONV3X3:
        return ReLUConvBN(channels, channels, 3, 1, affine, track_running_stats)
    if index == AVG_POOL:
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"op index must be in 0..{len(OPS) - 1}, got {op!r}")


class Cell(nn.Module):
    """One NB201 cell: node j is the sum, over edges (i, j), of that edge's op applied to node i.

    ``layers[e]`` is the op of edge ``harness.space.EDGES[e]``; the output is node 3.
    """

    def __init__(
        self,
        arch: Architecture,
        channels: int,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__()
        self.arch = arch
        self.layers = nn.ModuleList(make_op(op, channels, affine, track_running_stats) for op in arch.ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in (1, 2, 3):
            nodes.append(
                sum(self.layers[e](nodes[source]) for e, (source, dest) in enumerate(EDGES) if dest == target)
            )
        return nodes[3]

    def extra_repr(self) -> str:
        return self.arch.to_string()


class ResidualReduction(nn.Module):
    """Between stages: ReLU-conv3x3 (stride 2)-BN, ReLU-conv3x3-BN, plus avgpool-2 + conv1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, stride=1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


def stage_channels(C: int, N: int) -> list[tuple[int, bool]]:
    """The body of the network as (channels, is_reduction) per block: N cells, reduction, N, reduction, N."""
    return [(C, False)] * N + [(2 * C, True)] + [(2 * C, False)] * N + [(4 * C, True)] + [(4 * C, False)] * N


class CellNetwork(nn.Module):
    """The NB201 skeleton around cells made by ``make_cell(channels)``; returns logits."""

    def __init__(
        self,
        make_cell: Callable[[int], nn.Module],
        C: int = 16,
        N: int = 5,
        num_classes: int = 10,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        self.C, self.N, self.num_classes = C, N, num_classes
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, C, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(C),
        )
        blocks: list[nn.Module] = []
        previous = C
        for channels, reduction in stage_channels(C, N):
            blocks.append(ResidualReduction(previous, channels) if reduction else make_cell(channels))
            previous = channels
        self.cells = nn.ModuleList(blocks)
        self.lastact = nn.Sequential(nn.BatchNorm2d(previous), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(previous, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feature = self.stem(x)
        for cell in self.cells:
            feature = cell(feature)
        out = self.global_pooling(self.lastact(feature))
        return self.classifier(out.flatten(1))


class TinyNetwork(CellNetwork):
    """The stand-alone NB201 network of one architecture (defaults: C=16, N=5, CIFAR-10)."""

    def __init__(
        self,
        arch: Architecture | str,
        C: int = 16,
        N: int = 5,
        num_classes: int = 10,
        in_channels: int = 3,
        affine: bool = True,
        track_running_stats: bool = True,
    ) -> None:
        arch = as_architecture(arch)
        super().__init__(
            lambda channels: Cell(arch, channels, affine, track_running_stats),
            C=C,
            N=N,
            num_classes=num_classes,
            in_channels=in_channels,
        )
        self.arch = arch


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (what NB201's ``count_parameters`` sums before dividing by 1e6)."""
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> int:
    """Multiply-adds per sample of one forward pass, counted as AutoDL-Projects counts them.

    Follows ``xautodl/utils/flop_benchmark.py``: only ``Conv2d`` and ``Linear`` modules
    count, a convolution as ``k_h*k_w*C_in*C_out/groups`` per output position plus
    ``C_out`` per position for a bias, a linear layer as ``in*out`` plus ``out`` for a bias.
    BatchNorm, ReLU, pooling, the zero op and the additions that join edges count nothing
    (that file hooks pooling layers but leaves them out of the sum).
    """
    total = 0

    def conv_hook(module: nn.Conv2d, inputs, output) -> None:
        nonlocal total
        k_h, k_w = module.kernel_size
        positions = output.shape[0] * output.shape[2] * output.shape[3]
        total += k_h * k_w * module.in_channels * module.out_channels // module.groups * positions
        if module.bias is not None:
            total += module.out_channels * positions

    def linear_hook(module: nn.Linear, inputs, output) -> None:
        nonlocal total
        rows = output.numel() // module.out_features
        total += module.in_features * module.out_features * rows
        if module.bias is not None:
            total += module.out_features * rows

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(input_shape))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total // input_shape[0]
