"""Proxies that need no labelled data: synflow (an all-ones input) and the network's size, params and flops.

The batches only tell these proxies the shape of an input image.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from harness.oneshot.network import TinyNetwork, count_flops, count_parameters
from harness.proxies.registry import Batch, ProxyConfig, register_proxy
from harness.proxies.weights import gradients, layer_weights
from harness.space.cost import NetworkShape, flop_counts, parameter_counts

TANAKA = ("Tanaka, Kunin, Yamins and Ganguli, Pruning neural networks without any data by iteratively "
          "conserving synaptic flow, NeurIPS 2020")
NB201 = "Dong and Yang, NAS-Bench-201, ICLR 2020 (as baselines in Abdelfattah et al., ICLR 2021)"


def without_batchnorm(network: nn.Module) -> nn.Module:
    """A copy of ``network`` with every BatchNorm replaced by the identity."""
    clone = copy.deepcopy(network)
    for parent in list(clone.modules()):
        for name, child in parent.named_children():
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                setattr(parent, name, nn.Identity())
    return clone


@register_proxy("synflow", paper=TANAKA, meaning="synaptic flow: sum of |weight| * dR/d|weight|, R the output "
                "sum on an all-ones input", uses_data=False)
def synflow(network: nn.Module, batches: list[Batch], config: ProxyConfig) -> float:
    """Sum over all layer weights of theta * dR/dtheta with theta = |weight| and R = sum of the outputs on 1.

    Tanaka, Kunin, Yamins and Ganguli, "Pruning neural networks without any data by
    iteratively conserving synaptic flow", NeurIPS 2020, summed over the network as by
    Abdelfattah et al., ICLR 2021. Computed on a copy of the network in float64 with every
    parameter replaced by its absolute value, every BatchNorm replaced by the identity (the
    paper's score is defined for a network of linear layers and ReLUs; a BatchNorm at
    initialisation would otherwise divide by the statistics of a constant input) and the
    copy in evaluation mode, on one all-ones image of the batches' shape. Higher is better.
    """
    image_shape = tuple(batches[0][0].shape[1:])
    flow = without_batchnorm(network).double().eval()
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.abs_()
    weights = layer_weights(flow)
    ones = torch.ones((1, *image_shape), dtype=torch.float64, device=weights[0].device)
    grads = gradients(flow(ones).sum(), weights)
    return sum(float((w.detach() * g).sum()) for w, g in zip(weights, grads, strict=True))


def _nb201_shape(network: nn.Module, image_shape: tuple[int, ...]) -> NetworkShape | None:
    """The shape harness.space.cost counts for ``network``, when it is an NB201 network it can count."""
    if not isinstance(network, TinyNetwork) or len(image_shape) != 3 or image_shape[1] != image_shape[2]:
        return None
    if image_shape[1] % 4:
        return None
    return NetworkShape(C=network.C, N=network.N, num_classes=network.num_classes, input_size=image_shape[1],
                        in_channels=image_shape[0])


@register_proxy("params", paper=NB201, meaning="parameters of the network, in millions (bigger scores higher)",
                uses_data=False)
def params(network: nn.Module, batches: list[Batch], config: ProxyConfig) -> float:
    """Parameters in millions (every parameter, BatchNorm's included, as NB201 counts them). Higher is better.

    For an NB201 network the exact count of ``harness.space.cost``; else counted on the module.
    """
    shape = _nb201_shape(network, tuple(batches[0][0].shape[1:]))
    if shape is not None:
        return float(parameter_counts(shape)[network.arch.index]) / 1e6
    return count_parameters(network) / 1e6


@register_proxy("flops", paper=NB201, meaning="multiply-adds per image, in millions (bigger scores higher)",
                uses_data=False)
def flops(network: nn.Module, batches: list[Batch], config: ProxyConfig) -> float:
    """Multiply-adds per image in millions, as NB201 counts them (convolutions and linear layers). Higher is better.

    For an NB201 network the exact count of ``harness.space.cost``; else counted on one forward pass.
    """
    image_shape = tuple(batches[0][0].shape[1:])
    shape = _nb201_shape(network, image_shape)
    if shape is not None:
        return float(flop_counts(shape)[network.arch.index]) / 1e6
    return count_flops(copy.deepcopy(network).float().cpu(), (1, *image_shape)) / 1e6
