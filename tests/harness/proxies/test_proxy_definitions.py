"""Each proxy on a tiny network with fixed weights, against its value computed independently in numpy.

The network is Linear(3, 4) -> ReLU -> Linear(4, 2), no biases, in float64, on batches of
four samples; every expected value below is written out from the proxy's definition
(hand-derived backpropagation of the mean cross-entropy, finite differences for GraSP's
Hessian-gradient product, ``np.corrcoef`` for jacov, an explicit Hamming distance for naswot).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harness.proxies import PROXIES, ProxyConfig, get_proxy

W1 = np.array([[0.5, -0.3, 0.8], [-0.6, 0.9, 0.2], [0.4, 0.7, -0.5], [0.3, -0.8, 0.6]])
W2 = np.array([[0.7, -0.4, 0.5, 0.9], [-0.2, 0.6, -0.8, 0.3]])
X1 = np.array([[1.0, 0.5, -0.4], [-0.7, 1.2, 0.3], [0.2, -0.9, 1.1], [0.9, 0.8, 0.4]])
Y1 = np.array([0, 1, 1, 0])
X2 = np.array([[-0.5, 0.4, 1.3], [1.1, -0.6, 0.2], [0.3, 1.0, -0.8], [-1.2, -0.3, 0.5]])
Y2 = np.array([1, 0, 0, 1])
CONFIG = ProxyConfig(dtype="float64")


def network(batchnorm: bool = False) -> nn.Module:
    layers = [nn.Linear(3, 4, bias=False)] + ([nn.BatchNorm1d(4)] if batchnorm else []) + [
        nn.ReLU(), nn.Linear(4, 2, bias=False)]
    net = nn.Sequential(*layers).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(W1))
        net[-1].weight.copy_(torch.from_numpy(W2))
    return net


def batch(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(x.copy()), torch.from_numpy(y.copy())


def score(name: str, *batches: tuple[np.ndarray, np.ndarray], net: nn.Module | None = None) -> float:
    return get_proxy(name)(net or network(), [batch(x, y) for x, y in batches], CONFIG)


# -- the same network, by hand ------------------------------------------------------------------
def forward(w1: np.ndarray, w2: np.ndarray, x: np.ndarray):
    z = x @ w1.T
    h = np.maximum(z, 0.0)
    return z, h, h @ w2.T


def by_hand(w1: np.ndarray, w2: np.ndarray, x: np.ndarray, y: np.ndarray):
    """Gradients of the mean cross-entropy: d/dW1, d/dW2, d/dz (first layer's output), d/do (logits)."""
    z, h, o = forward(w1, w2, x)
    p = np.exp(o - o.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    d_o = (p - np.eye(2)[y]) / len(x)
    d_z = (d_o @ w2) * (z > 0)
    return d_z.T @ x, d_o.T @ h, d_z, d_o


def test_the_hand_network_stays_away_from_relu_kinks() -> None:
    assert np.abs(forward(W1, W2, X1)[0]).min() > 0.02  # GraSP's finite differences below cross no kink


def test_grad_norm() -> None:
    g1, g2, _, _ = by_hand(W1, W2, X1, Y1)
    assert score("grad_norm", (X1, Y1)) == pytest.approx(np.linalg.norm(g1) + np.linalg.norm(g2), rel=1e-12)


def test_one_batch_proxies_average_over_batches() -> None:
    expected = [np.linalg.norm(g1) + np.linalg.norm(g2)
                for g1, g2, _, _ in (by_hand(W1, W2, X1, Y1), by_hand(W1, W2, X2, Y2))]
    assert score("grad_norm", (X1, Y1), (X2, Y2)) == pytest.approx(np.mean(expected), rel=1e-12)


def test_snip() -> None:
    g1, g2, _, _ = by_hand(W1, W2, X1, Y1)
    assert score("snip", (X1, Y1)) == pytest.approx(np.abs(W1 * g1).sum() + np.abs(W2 * g2).sum(), rel=1e-12)


def test_grasp() -> None:
    g1, g2, _, _ = by_hand(W1, W2, X1, Y1)
    eps = 1e-6
    plus = by_hand(W1 + eps * g1, W2 + eps * g2, X1, Y1)
    minus = by_hand(W1 - eps * g1, W2 - eps * g2, X1, Y1)
    hg1, hg2 = (plus[0] - minus[0]) / (2 * eps), (plus[1] - minus[1]) / (2 * eps)
    expected = -(W1 * hg1).sum() - (W2 * hg2).sum()
    assert expected != 0.0
    assert score("grasp", (X1, Y1)) == pytest.approx(expected, rel=1e-6)


def test_fisher() -> None:
    z, _, o = forward(W1, W2, X1)
    _, _, d_z, d_o = by_hand(W1, W2, X1, Y1)
    expected = 0.5 * ((z * d_z) ** 2).mean(axis=0).sum() + 0.5 * ((o * d_o) ** 2).mean(axis=0).sum()
    assert score("fisher", (X1, Y1)) == pytest.approx(expected, rel=1e-12)


def test_zico() -> None:
    (a1, a2, _, _), (b1, b2, _, _) = by_hand(W1, W2, X1, Y1), by_hand(W1, W2, X2, Y2)
    expected = 0.0
    for first, second in ((a1, b1), (a2, b2)):
        mean_abs = (np.abs(first) + np.abs(second)) / 2
        std = np.abs(first - second) / 2  # population std of two values
        keep = std > 0
        expected += np.log((mean_abs[keep] / std[keep]).sum())
    assert score("zico", (X1, Y1), (X2, Y2)) == pytest.approx(expected, rel=1e-10)


def test_zico_needs_two_batches() -> None:
    from harness.errors import UserError

    with pytest.raises(UserError, match="zico needs at least 2 batches"):
        score("zico", (X1, Y1))


def test_synflow_is_twice_the_path_sum_of_a_two_layer_network() -> None:
    """With |W| and an all-ones input, R = 1'|W2||W1|1 and each layer's theta * dR/dtheta sums to R."""
    expected = 2 * (np.abs(W2) @ np.abs(W1) @ np.ones(3)).sum()
    assert score("synflow", (X1, Y1)) == pytest.approx(expected, rel=1e-12)


def test_synflow_makes_batchnorm_the_identity_and_leaves_the_network_alone() -> None:
    net = network(batchnorm=True)
    before = [p.detach().clone() for p in net.parameters()]
    assert score("synflow", (X1, Y1), net=net) == pytest.approx(score("synflow", (X1, Y1)), rel=1e-12)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


def test_jacov() -> None:
    z, _, _ = forward(W1, W2, X1)
    jacobians = np.stack([W1.T @ ((row > 0) * (W2.T @ np.ones(2))) for row in z])
    eigenvalues = np.linalg.eigvalsh(np.corrcoef(jacobians))
    expected = -np.sum(np.log(eigenvalues + 1e-5) + 1.0 / (eigenvalues + 1e-5))
    assert score("jacov", (X1, Y1)) == pytest.approx(expected, rel=1e-8)


def test_naswot() -> None:
    codes = forward(W1, W2, X1)[0] > 0
    units = codes.shape[1]
    kernel = np.array([[units - np.sum(a != b) for b in codes] for a in codes], dtype=float)
    sign, expected = np.linalg.slogdet(kernel)
    assert sign > 0 and expected > 0
    assert score("naswot", (X1, Y1)) == pytest.approx(expected, rel=1e-12)


def test_naswot_scores_a_singular_kernel_zero() -> None:
    same = np.repeat(X1[:1], 4, axis=0)  # four copies of one input: one code, K singular
    assert score("naswot", (same, Y1)) == 0.0


def test_params_and_flops_of_a_module() -> None:
    assert score("params", (X1, Y1)) == pytest.approx((12 + 8) / 1e6)
    assert score("flops", (X1, Y1)) == pytest.approx((3 * 4 + 4 * 2) / 1e6)


def test_every_proxy_has_a_paper_and_a_meaning() -> None:
    assert set(PROXIES) == {"grad_norm", "snip", "grasp", "fisher", "zico", "jacov", "naswot", "synflow", "params",
                            "flops"}
    for proxy in PROXIES.values():
        assert proxy.paper and proxy.meaning and proxy.function.__doc__
        assert any(word in proxy.function.__doc__ for word in ("better", "higher")), proxy.name
