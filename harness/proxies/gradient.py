"""Proxies made from loss gradients at initialisation: grad_norm, snip, grasp, fisher and zico.

All but zico are one-batch scores (as their papers define them); given several batches
they are computed on each batch and averaged. grad_norm, snip, fisher and zico read one
shared pass per batch (``harness.proxies.weights.batch_pass``); grasp needs its own (it
differentiates the gradient again). The loss is the mean cross-entropy of the
batch, the network is in training mode (BatchNorm normalises with the batch's statistics,
as the papers' networks do when scored), and the sums run over the weights (or, for
fisher, the outputs) of the convolutional and linear layers.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from harness.proxies.registry import Batch, ProxyConfig, register_proxy
from harness.proxies.weights import batch_pass, gradients, layer_weights, loss_gradients

ABDELFATTAH = "Abdelfattah, Mehrotra, Dudziak and Lane, Zero-Cost Proxies for Lightweight NAS, ICLR 2021"


def mean_over_batches(network: nn.Module, batches: list[Batch],
                      one_batch: Callable[[nn.Module, torch.Tensor, torch.Tensor], float]) -> float:
    """The mean of a one-batch score over ``batches``, the network in training mode."""
    network.train()
    return sum(one_batch(network, images, labels) for images, labels in batches) / len(batches)


@register_proxy("grad_norm", paper=ABDELFATTAH, meaning="sum over layers of the L2 norm of the loss gradient")
def grad_norm(network: nn.Module, batches: list[Batch], config: ProxyConfig) -> float:
    """Sum over layers l of ||dL/dW_l||_2 (Abdelfattah, Mehrotra, Dudziak and Lane, ICLR 2021).

    L is the batch's mean cross-entropy, W_l the weight of convolution or linear layer l and
    the norm the Frobenius norm of the whole tensor. Higher is better, as in the paper.
    """

    def one_batch(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
        return sum(float(g.norm()) for g in batch_pass(net, images, labels).weight_gradients)

    return mean_over_batches(network, batches, one_batch)


@register_proxy("snip", paper="Lee, Ajanthan and Torr, SNIP, ICLR 2019; as a network score: " + ABDELFATTAH,
                meaning="sum of |weight * loss gradient| (connection sensitivity)")
def snip(network: nn.Module, batches: list[Batch], config: ProxyConfig) -> float:
    """Sum over all layer weights of |theta * dL/dtheta| (SNIP's connection sensitivity, summed).

    Lee, Ajanthan and Torr, "SNIP: Single-shot Network Pruning based on Connection
    Sensitivity", ICLR 2019, as summed into a network score by Abdelfattah et al., ICLR 2021.
    Higher is better.
    """

    def one_batch(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
        grads = batch_pass(net, images, labels).weight_gradients
        return sum(float((w.detach() * g).abs().sum()) for w, g in zip(layer_weights(net), grads, strict=True))

    return mean_over_batches(network, batches, one_batch)


@register_proxy("grasp", paper="Wang, Zhang and Grosse, GraSP, ICLR 2020; as a network score: " + ABDELFATTAH,
                meaning="-sum of weight * (Hessian x gradient) (gradient flow)")
def grasp(network: nn.Module, batches: list[Batch], config: ProxyConfig) -> float:
    """-Sum over all layer weights of theta * (H g), H the loss Hessian and g the loss gradient.

    Wang, Zhang and Grosse, "Picking Winning Tickets Before Training by Preserving Gradient
    Flow" (GraSP), ICLR 2020: the per-weight score S = -theta * Hg; Abdelfattah et al., ICLR
    2021, sum it over the network and rank by the sum as it is, so higher is better here too.
    Hg is the gradient of g . stop_gradient(g) (an exact Hessian-vector product).
    """

    def one_batch(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
        weights, grads = loss_gradients(net, images, labels, create_graph=True)
        flow = sum((g * g.detach()).sum() for g in grads)
        if not isinstance(flow, torch.Tensor) or not flow.requires_grad:
            return 0.0  # the gradient does not depend on the weights: no curvature
        hessian_gradient = gradients(flow, weights)
        return -sum(float((w.detach() * hg).sum()) for w, hg in zip(weights, hessian_gradient, strict=True))

    return mean_over_batches(network, batches, one_batch)


@register_proxy("fisher", paper="Theis et al. 2018 and Turner et al., BlockSwap, ICLR 2020; as a network score: "
                + ABDELFATTAH, meaning="sum over layer output channels of the Fisher pruning saliency")
def fisher(network: nn.Module, batches: list[Batch], config: ProxyConfig) -> float:
    """Sum over the output channels c of every convolution and linear layer of 1/(2n) sum_i (sum_s a g)^2.

    The channel saliency of Fisher pruning (Theis, Korshunova, Tejani and Huszar, "Faster
    gaze prediction with dense networks and Fisher pruning", 2018), used for whole blocks by
    Turner, Crowley, O'Boyle, Storkey and Gray, "BlockSwap", ICLR 2020, and summed over the
    network by Abdelfattah et al., ICLR 2021: for sample i of the n in the batch, a is the
    layer's output in channel c, g = dL/da (L the batch's mean cross-entropy) and the inner
    sum runs over the spatial positions s (none for a linear layer). Higher is better.
    """

    def one_batch(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
        made = batch_pass(net, images, labels)
        total = 0.0
        for a, g in zip(made.layer_outputs, made.output_gradients, strict=True):
            per_sample = (a * g).flatten(2).sum(2) if a.ndim > 2 else a * g
            total += float(0.5 * per_sample.pow(2).mean(0).sum())
        return total

    return mean_over_batches(network, batches, one_batch)


@register_proxy("zico", paper="Li, Yang, Bhardwaj and Marculescu, ZiCo, ICLR 2023",
                meaning="sum over layers of log(sum of mean |gradient| / std of gradient across batches)",
                min_batches=2)
def zico(network: nn.Module, batches: list[Batch], config: ProxyConfig) -> float:
    """Sum over layers l of log(sum over the weights theta of W_l of mean_b|g_b| / std_b(g_b)).

    Li, Yang, Bhardwaj and Marculescu, "ZiCo: Zero-shot NAS via Inverse Coefficient of
    Variation on Gradients", ICLR 2023. g_b is dL_b/dtheta on batch b (L_b its mean
    cross-entropy); the mean and the standard deviation (population, ddof=0) run over the
    batches, so ZiCo needs at least two. A weight whose gradient does not vary across the
    batches (std 0: its ratio is undefined) is left out of its layer's sum, and a layer whose
    sum is 0 (e.g. every gradient zero) is left out of the total; a network none of whose
    gradients vary scores 0. Higher is better, as in the paper.
    """
    network.train()
    per_batch = []
    for images, labels in batches:
        per_batch.append([g.double() for g in batch_pass(network, images, labels).weight_gradients])
    total = 0.0
    for layer in zip(*per_batch, strict=True):
        stacked = torch.stack(layer)
        std = stacked.std(dim=0, unbiased=False)
        varies = std > 0
        ratio = float((stacked.abs().mean(dim=0)[varies] / std[varies]).sum())
        if ratio > 0:
            total += math.log(ratio)
    return total
