"""The parts of a network that proxies read: its layers' weights, and their loss gradients on a batch.

As in Abdelfattah et al. (ICLR 2021), the per-parameter proxies are summed over the weights
of the convolutional and linear layers only (no biases, no BatchNorm parameters).
"""

from __future__ import annotations

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
