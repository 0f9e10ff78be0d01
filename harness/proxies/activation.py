"""Proxies made from how a network at initialisation treats different inputs: jacov and naswot.

Both are one-batch scores; given several batches they are computed on each batch and
averaged. The network is in training mode (BatchNorm normalises with the batch's statistics).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from harness.proxies.gradient import mean_over_batches
from harness.proxies.registry import Batch, ProxyConfig, register_proxy
from harness.proxies.weights import batch_pass

MELLOR_V1 = ("Mellor, Turner, Storkey and Crowley, Neural Architecture Search without Training, "
             "arXiv:2006.04647v1, 2020")
MELLOR = "Mellor, Turner, Storkey and Crowley, Neural Architecture Search without Training, ICML 2021"
#: The small constant of the Jacobian-covariance score (Mellor et al. 2020, v1).
JACOV_K = 1e-5


def jacobian_covariance_score(jacobian: np.ndarray, k: float = JACOV_K) -> float:
    """-sum_i [log(l_i + k) + 1/(l_i + k)] over the eigenvalues l_i of the rows' correlation matrix.

    Row j of ``jacobian`` (n, D) is input j's Jacobian, flattened. The correlation of two rows
    is that of ``np.corrcoef``; a row that does not vary (a network whose output does not
    depend on that input) has correlation 0 with every row, itself included, so a network
    whose output ignores its input scores -n (log k + 1/k), the lowest score there is.
    Eigenvalues below 0 (rounding) count as 0.
    """
    rows = np.asarray(jacobian, dtype=np.float64)
    centred = rows - rows.mean(axis=1, keepdims=True)
    scale = np.sqrt((centred ** 2).mean(axis=1, keepdims=True))
    standard = np.divide(centred, scale, out=np.zeros_like(centred), where=scale > 0)
    correlation = standard @ standard.T / rows.shape[1]
    eigenvalues = np.clip(np.linalg.eigvalsh(correlation), 0.0, None)
    return float(-np.sum(np.log(eigenvalues + k) + 1.0 / (eigenvalues + k)))


@register_proxy("jacov", paper=MELLOR_V1, meaning="-sum of log(eig + k) + 1/(eig + k) of the input Jacobians' "
                "correlation (uncorrelated Jacobians score higher)")
def jacov(network: nn.Module, batches: list[Batch], config: ProxyConfig) -> float:
    """Mellor, Turner, Storkey and Crowley, "Neural Architecture Search without Training", arXiv v1, 2020.

    The Jacobian of input j is J_j = d(sum over the batch's samples and classes of the
    logits)/d x_j (one backward pass, as the paper computes it; in training mode BatchNorm
    couples the samples a little). The score is ``jacobian_covariance_score`` of the J_j,
    k = 1e-5: higher (the inputs' Jacobians less correlated) is better, as in the paper.
    """

    def one_batch(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
        inputs = images.detach().clone().requires_grad_(True)
        (jacobian,) = torch.autograd.grad(net(inputs).sum(), inputs)
        return jacobian_covariance_score(jacobian.reshape(len(inputs), -1).double().cpu().numpy())

    return mean_over_batches(network, batches, one_batch)


def hamming_kernel_score(kernel: np.ndarray) -> float:
    """log|K| of a Hamming-similarity kernel; 0 when K is singular.

    K_ij = N_A - d_H(c_i, c_j) = c_i . c_j + (1 - c_i) . (1 - c_j) is a positive semi-definite
    matrix of integers, so a non-singular K has det K >= 1 and log|K| >= 0: scoring a
    singular K (two inputs with the same code, e.g. a network whose ReLUs ignore the input)
    as 0 ranks it with the lowest scores, where the paper's -inf would break every rank
    statistic.
    """
    sign, logdet = np.linalg.slogdet(np.asarray(kernel, dtype=np.float64))
    return float(logdet) if sign > 0 and logdet > 0 else 0.0


@register_proxy("naswot", paper=MELLOR, meaning="log|K_H| of the Hamming kernel of the ReLU codes "
                "(more distinct activation patterns score higher)")
def naswot(network: nn.Module, batches: list[Batch], config: ProxyConfig) -> float:
    """Mellor, Turner, Storkey and Crowley, "Neural Architecture Search without Training", ICML 2021.

    Every ``nn.ReLU`` of the network gives each input a binary code (1 where the unit is
    positive); c_i is the concatenation over all ReLUs and the batch's kernel is
    K_ij = N_A - d_H(c_i, c_j), N_A the number of ReLU units. The score is log|K|
    (``hamming_kernel_score``, slogdet in float64): higher is better, as in the paper. The
    codes come from the forward half of the pass the gradient proxies share (``batch_pass``).
    """

    def one_batch(net: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
        return hamming_kernel_score(batch_pass(net, images, labels).relu_agreement.cpu().numpy())

    return mean_over_batches(network, batches, one_batch)
