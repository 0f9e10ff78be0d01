"""The NB201 weight-sharing supernet: every edge of every cell holds all five ops.

The macro skeleton is ``harness.oneshot.network.CellNetwork`` (stem, three stages of ``N`` cells
with ``C``, ``2C``, ``4C`` channels, residual reduction blocks, classifier), so a path
through the supernet has exactly the layers of the stand-alone ``TinyNetwork`` of that
architecture. Cell ops use BatchNorm without affine parameters, as NB201's search models
do; ``track_running_stats`` is a flag (it changes NB201 results, AutoDL-Projects issue #70).

Two forwards:

- ``model(x, arch)`` (single path) runs only the op chosen on each edge, and only on the
  edges that lie on a path from the cell input to its output (``harness.space.encodings.effective_ops``):
  a dead branch cannot change the output, so skipping it changes neither the output nor a
  gradient. ``none`` contributes nothing; a node with no live input is zero, and a cell with
  no live path outputs zeros, as NB201's ``x * 0`` does.
- ``model(x, weights=W)`` (mixed) with ``W`` of shape (6, 5), rows summing to 1 (DARTS):
  node j is the sum over its in-edges of ``sum_o W[e, o] * op_o(node_i)``; ``none`` adds zero.

``recalibrate_batchnorm`` resets the cell BatchNorm statistics and recomputes them for one
architecture as an exact average over training batches (momentum ``None``), which is what
every architecture gets before it is scored.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from harness.oneshot.network import CellNetwork, make_op
from harness.space import (
    AVG_POOL,
    CONV1X1,
    CONV3X3,
    EDGES,
    NONE,
    NUM_EDGES,
    NUM_OPS,
    SKIP,
    Architecture,
    as_architecture,
)
from harness.space.encodings import effective_ops

#: For each target node 1..3, the (edge index, source node) pairs that feed it.
_IN_EDGES: tuple[tuple[tuple[int, int], ...], ...] = tuple(
    tuple((e, src) for e, (src, dst) in enumerate(EDGES) if dst == target) for target in (1, 2, 3)
)


#: Activation bytes of one stage-1 tensor an eval-mode forward aims for per chunk of images.
_CHUNK_BYTES = 4 << 20


@cache
def live_ops(arch: Architecture) -> tuple[int, ...]:
    """The ops of ``arch`` with every edge on no input-to-output path set to ``none``."""
    return tuple(int(o) for o in effective_ops(np.array([arch.ops]))[0])


class _AveragePool3x3(torch.autograd.Function):
    """NB201's ``avg_pool_3x3`` (stride 1, padding 1, padding not counted), as a depthwise conv.

    The 3x3 window sum is a depthwise convolution with a ones kernel; multiplying by the
    inverse of each position's window size (9 inside, 6 on an edge, 4 in a corner) gives
    ``nn.AvgPool2d(3, 1, 1, count_include_pad=False)`` up to float rounding. The window sum is
    its own adjoint, so the backward is the same convolution applied to ``grad * inverse``.
    oneDNN's depthwise kernel runs the pair two to three times as fast as PyTorch's pooling.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ones, inverse = _pool_constants(x.shape[1], x.shape[2], x.shape[3], x.dtype, x.device,
                                        x.is_contiguous(memory_format=torch.channels_last))
        ctx.constants = ones, inverse
        return F.conv2d(x, ones, padding=1, groups=x.shape[1]).mul_(inverse)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        ones, inverse = ctx.constants
        return F.conv2d(grad * inverse, ones, padding=1, groups=grad.shape[1])


@cache
def _pool_constants(channels: int, height: int, width: int, dtype: torch.dtype, device: torch.device,
                    channels_last: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The ones kernel (channels, 1, 3, 3) and the inverse window sizes of a 3x3 pool on (H, W).

    The inverse is a (1, 1, H, W) map for float32/float64; PyTorch's broadcasting multiply is
    slow for bfloat16 and half, so for those it is a full (1, channels, H, W) map in the
    input's memory format.
    """
    with torch.inference_mode(False):  # constants made in a scoring loop must still serve training
        rows = torch.full((height,), 3.0, dtype=torch.float64)
        cols = torch.full((width,), 3.0, dtype=torch.float64)
        rows[[0, -1]] -= 1.0
        cols[[0, -1]] -= 1.0
        if height == 1:
            rows[0] = 1.0
        if width == 1:
            cols[0] = 1.0
        inverse = (1.0 / torch.outer(rows, cols)).to(dtype=dtype, device=device).view(1, 1, height, width)
        if dtype not in (torch.float32, torch.float64):
            layout = torch.channels_last if channels_last else torch.contiguous_format
            inverse = inverse.expand(1, channels, height, width).contiguous(memory_format=layout)
        return torch.ones(channels, 1, 3, 3, dtype=dtype, device=device), inverse


def average_pool_3x3(x: torch.Tensor) -> torch.Tensor:
    """``nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)(x)``, computed faster."""
    return _AveragePool3x3.apply(x)


class SupernetCell(nn.Module):
    """One searchable cell: ``edges[e][o]`` is op ``o`` of edge ``EDGES[e]``.

    The forwards do not call the edge modules one by one: a node's ReLU is computed once and
    shared by every convolution that reads it, a node's 3x3 average pool likewise, and the
    ReLUConvBN modules' conv and BatchNorm are called directly. Parameter names, and so state
    dict keys, are those of the modules (``edges.{e}.{o}.op.1.weight``).
    """

    def __init__(self, channels: int, affine: bool = False, track_running_stats: bool = True) -> None:
        super().__init__()
        self.channels = channels
        self.edges = nn.ModuleList(
            nn.ModuleList(make_op(op, channels, affine, track_running_stats) for op in range(NUM_OPS))
            for _ in range(NUM_EDGES)
        )

    def forward(self, x: torch.Tensor, ops: tuple[int, ...] | None = None,
                weights: torch.Tensor | None = None) -> torch.Tensor:
        if weights is not None:
            return self.forward_mixed(x, weights)
        return self.forward_path(x, ops)

    def _conv_bn(self, edge: int, op: int, relu: torch.Tensor) -> torch.Tensor:
        """BatchNorm(Conv(relu)) of ReLUConvBN op ``op`` on ``edge``, given the ReLU already applied."""
        layers = self.edges[edge][op].op
        conv, norm = layers[1], layers[2]
        if norm.training or norm.running_mean is None or _hooked(conv) or _hooked(norm):
            return norm(conv(relu))
        weight, bias = _fold_batchnorm(conv, norm)
        return F.conv2d(relu, weight, bias, conv.stride, conv.padding)

    def forward_path(self, x: torch.Tensor, ops: tuple[int, ...]) -> torch.Tensor:
        """Single path: ``ops`` must already be live (see ``live_ops``)."""
        nodes: list[torch.Tensor | None] = [x, None, None, None]
        relus: dict[int, torch.Tensor] = {}
        pools: dict[int, torch.Tensor] = {}
        for target, terms in enumerate(_path_plan(ops), start=1):
            total = None
            owned = False  # whether ``total`` is a fresh tensor that may be added to in place
            for e, src, op in terms:
                h = nodes[src]
                if op == SKIP:
                    out = h
                elif op == AVG_POOL:
                    if src not in pools:
                        pools[src] = average_pool_3x3(h)
                    out = pools[src]
                else:
                    if src not in relus:
                        relus[src] = F.relu(h)
                    out = self._conv_bn(e, op, relus[src])
                if total is None:
                    total, owned = out, op not in (SKIP, AVG_POOL)
                elif owned and total.dtype == out.dtype:
                    total = total.add_(out)
                else:
                    total, owned = total + out, True
            nodes[target] = total
        return nodes[3] if nodes[3] is not None else x.mul(0.0)

    def forward_mixed(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """DARTS' continuous relaxation with ``weights[e, o]`` on op ``o`` of edge ``e``."""
        nodes = [x]
        relus: dict[int, torch.Tensor] = {}
        pools: dict[int, torch.Tensor] = {}
        for in_edges in _IN_EDGES:
            total = 0
            for e, src in in_edges:
                h = nodes[src]
                if src not in relus:
                    relus[src], pools[src] = F.relu(h), average_pool_3x3(h)
                for o in (SKIP, CONV1X1, CONV3X3, AVG_POOL):
                    out = h if o == SKIP else pools[src] if o == AVG_POOL else self._conv_bn(e, o, relus[src])
                    total = total + weights[e, o] * out
            nodes.append(total)
        return nodes[3]

    def path_modules(self, ops: tuple[int, ...]) -> list[nn.Module]:
        """The op modules a single-path forward of ``ops`` (live) runs."""
        return [self.edges[e][o] for e, o in enumerate(ops) if o != NONE]


def _hooked(module: nn.Module) -> bool:
    """Whether calling ``module`` would run a hook (then it must really be called)."""
    return bool(module._forward_hooks or module._forward_pre_hooks
                or nn.modules.module._global_forward_hooks or nn.modules.module._global_forward_pre_hooks)


def _fold_batchnorm(conv: nn.Conv2d, norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of one convolution equal to ``norm(conv(x))`` with ``norm`` using its running statistics."""
    scale = torch.rsqrt(norm.running_var + norm.eps)
    if norm.affine:
        scale = scale * norm.weight
    bias = -norm.running_mean if conv.bias is None else conv.bias - norm.running_mean
    bias = bias * scale
    if norm.affine:
        bias = bias + norm.bias
    return conv.weight * scale.view(-1, 1, 1, 1), bias


@cache
def _path_plan(ops: tuple[int, ...]) -> tuple[tuple[tuple[int, int, int], ...], ...]:
    """For nodes 1..3, the live (edge, source, op) terms to sum, a convolution first when there is one.

    Starting a node's sum with a fresh convolution output lets the other terms be added to it
    in place; a skip or pool output must not be overwritten (it is a node, or shared).
    """
    plan = []
    reached = {0}
    for target, in_edges in enumerate(_IN_EDGES, start=1):
        terms = [(e, src, ops[e]) for e, src in in_edges if ops[e] != NONE and src in reached]
        terms.sort(key=lambda term: term[2] not in (CONV1X1, CONV3X3))
        if terms:
            reached.add(target)
        plan.append(tuple(terms))
    return tuple(plan)


class Supernet(CellNetwork):
    """NB201 supernet (defaults C=16, N=5, CIFAR-10) with single-path and mixed forwards."""

    def __init__(
        self,
        C: int = 16,
        N: int = 5,
        num_classes: int = 10,
        in_channels: int = 3,
        affine: bool = False,
        track_running_stats: bool = True,
    ) -> None:
        super().__init__(
            lambda channels: SupernetCell(channels, affine, track_running_stats),
            C=C, N=N, num_classes=num_classes, in_channels=in_channels,
        )
        self.affine = affine
        self.track_running_stats = track_running_stats

    @property
    def config(self) -> dict:
        """What a checkpoint must agree on to be loaded into this supernet."""
        return {
            "C": self.C, "N": self.N, "num_classes": self.num_classes,
            "in_channels": self.stem[0].in_channels, "affine": self.affine,
            "track_running_stats": self.track_running_stats,
        }

    def supernet_cells(self) -> list[SupernetCell]:
        return [m for m in self.cells if isinstance(m, SupernetCell)]

    def forward(self, x: torch.Tensor, arch: Architecture | str | tuple[int, ...] | None = None,
                weights: torch.Tensor | None = None) -> torch.Tensor:
        if (arch is None) == (weights is None):
            raise ValueError("give exactly one of arch (single path) or weights (mixed forward)")
        ops = None if arch is None else live_ops(as_architecture(arch))
        if weights is not None and tuple(weights.shape) != (NUM_EDGES, NUM_OPS):
            raise ValueError(f"weights must have shape ({NUM_EDGES}, {NUM_OPS}), got {tuple(weights.shape)}")
        chunk = self._batch_chunk(x)
        if chunk < len(x):
            return torch.cat([self._forward(part, ops, weights) for part in x.split(chunk)])
        return self._forward(x, ops, weights)

    def _forward(self, x: torch.Tensor, ops: tuple[int, ...] | None, weights: torch.Tensor | None) -> torch.Tensor:
        feature = self.stem(x)
        for cell in self.cells:
            feature = cell(feature, ops, weights) if isinstance(cell, SupernetCell) else cell(feature)
        out = self.global_pooling(self.lastact(feature))
        return self.classifier(out.flatten(1))

    def _batch_chunk(self, x: torch.Tensor) -> int:
        """How many images to run at a time: all, unless every BatchNorm uses running statistics.

        In eval mode with tracked statistics each image's logits depend on that image only,
        so a large batch can run in chunks whose activations stay in cache (about 1.6x faster
        for batches of 250 CIFAR images on one core). With batch statistics it cannot.
        """
        if self.training or not self.track_running_stats or x.dim() != 4:
            return len(x)
        return max(1, _CHUNK_BYTES // (self.C * x.shape[2] * x.shape[3] * x.element_size()))

    def path_parameters(self, arch: Architecture | str) -> list[nn.Parameter]:
        """The parameters a single-path forward of ``arch`` uses (shared skeleton included)."""
        ops = live_ops(as_architecture(arch))
        chosen = {id(p) for cell in self.supernet_cells() for m in cell.path_modules(ops) for p in m.parameters()}
        cell_params = {id(p) for cell in self.supernet_cells() for p in cell.parameters()}
        return [p for p in self.parameters() if id(p) in chosen or id(p) not in cell_params]


def cell_batchnorms(model: Supernet) -> list[nn.BatchNorm2d]:
    """The BatchNorm layers inside the searchable cells (the ones whose statistics depend on the path)."""
    return [m for cell in model.supernet_cells() for m in cell.modules() if isinstance(m, nn.BatchNorm2d)]


@torch.no_grad()
def recalibrate_batchnorm(model: Supernet, arch: Architecture | str | None, batches: Iterable[torch.Tensor],
                          weights: torch.Tensor | None = None) -> int:
    """Recompute every BatchNorm's running statistics for one path from ``batches`` of images.

    All BatchNorms that track statistics are reset and updated with ``momentum=None`` (an
    exact running average over the batches), in train mode without gradients; the model
    is returned to its previous mode and momenta. Returns the number of images used.
    A supernet built with ``track_running_stats=False`` has nothing to recalibrate (it always
    normalises by the batch); then only the skeleton's statistics are recomputed.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d) and m.track_running_stats]
    saved = [(m, m.momentum) for m in norms]
    was_training = model.training
    seen = 0
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None
        model.train()
        for images in batches:
            model(images, arch, weights)
            seen += len(images)
    finally:
        for m, momentum in saved:
            m.momentum = momentum
        model.train(was_training)
    return seen
