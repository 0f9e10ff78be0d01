"""The parts of a network that proxies read: its layers' weights, and their loss gradients on a batch.

As in Abdelfattah et al. (ICLR 2021), the per-parameter proxies are summed over the weights
of the convolutional and linear layers only (no biases, no BatchNorm parameters).

``batch_pass`` runs one forward and one backward pass of a network on a batch and keeps what
grad_norm, snip, fisher, zico and naswot read from it (weight gradients, layer outputs and
their gradients, the ReLU codes' Hamming kernel), so that scoring these five proxies on one
network costs one pass per batch, not five; each proxy's value is the same as when it is
scored alone (the same arithmetic on the same pass).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional

#: The layers whose weights (and outputs, for fisher) the proxies sum over.
LAYER_TYPES = (nn.Conv2d, nn.Linear)


def weighted_layers(network: nn.Module) -> list[nn.Module]:
    """Every convolution and linear layer of ``network``, in module order."""
    return [module for module in network.modules() if isinstance(module, LAYER_TYPES)]


def layer_weights(network: nn.Module) -> list[torch.Tensor]:
    """The weight tensor of every convolution and linear layer, in module order."""
    return [module.weight for module in weighted_layers(network)]


def gradients(output: torch.Tensor, inputs: list[torch.Tensor], create_graph: bool = False) -> list[torch.Tensor]:
    """d output / d each of ``inputs``; zeros for an input the output does not depend on."""
    found = torch.autograd.grad(output, inputs, allow_unused=True, create_graph=create_graph)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, found, strict=True)]


def batch_loss(network: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The mean cross-entropy of ``network`` on one batch (the loss every gradient proxy differentiates)."""
    return functional.cross_entropy(network(images), labels)


def loss_gradients(network: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                   create_graph: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The layer weights and d(mean cross-entropy)/d(weight) on one batch."""
    weights = layer_weights(network)
    return weights, gradients(batch_loss(network, images, labels), weights, create_graph)


@dataclass
class BatchPass:
    """What one forward and backward pass of a network (training mode) on one batch leaves for the proxies."""

    #: d(mean cross-entropy)/d(weight) of every convolution and linear layer, in module order.
    weight_gradients: list[torch.Tensor]
    #: Those layers' outputs (detached) and d(loss)/d(output), in the order the forward pass made them.
    layer_outputs: list[torch.Tensor]
    output_gradients: list[torch.Tensor]
    #: K_ij = number of ReLU units on which inputs i and j agree (both positive or both not), float64 (n, n).
    relu_agreement: torch.Tensor


#: Each network's passes while it lives: (images, labels, pass) per batch it was given.
_PASSES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _relu_agreement(kernel: torch.Tensor):
    n = kernel.shape[0]

    def add_codes(_module, _inputs, output: torch.Tensor) -> None:
        # c_i . c_j + (1 - c_i) . (1 - c_j) = 2 c_i . c_j + D - |c_i| - |c_j|: one product, in float32 exactly,
        # since every partial sum is an integer of at most D < 2**24
        codes = (output.detach() > 0).reshape(n, -1)
        if codes.shape[1] >= 2 ** 24:
            raise ValueError(f"a ReLU of {codes.shape[1]} units is too wide to count in float32")
        codes = codes.float()
        ones = codes.sum(dim=1, dtype=torch.float64)
        kernel.add_(2.0 * (codes @ codes.T).double() + codes.shape[1] - ones[:, None] - ones[None, :])

    return add_codes


def batch_pass(network: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> BatchPass:
    """The pass of ``network`` on this batch, made once per network and batch (later calls return it)."""
    kept = _PASSES.setdefault(network, [])
    for kept_images, kept_labels, made in kept:
        if kept_images is images and kept_labels is labels:
            return made
    layers = weighted_layers(network)
    outputs: list[torch.Tensor] = []
    kernel = torch.zeros(len(images), len(images), dtype=torch.float64, device=images.device)
    handles = [layer.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for layer in layers]
    handles += [module.register_forward_hook(_relu_agreement(kernel)) for module in network.modules()
                if isinstance(module, nn.ReLU)]
    try:
        loss = batch_loss(network, images, labels)
    finally:
        for handle in handles:
            handle.remove()
    weights = [layer.weight for layer in layers]
    found = gradients(loss, weights + outputs)
    made = BatchPass([g.detach() for g in found[:len(weights)]], [out.detach() for out in outputs],
                     [g.detach() for g in found[len(weights):]], kernel)
    kept.append((images, labels, made))
    return made
