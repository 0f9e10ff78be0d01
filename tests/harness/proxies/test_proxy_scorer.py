"""Proxies on the real NB201 network (C=4, N=1) at initialisation on digits: seeded, finite, oriented."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from harness.errors import UnknownNameError, UserError
from harness.oneshot.network import count_flops, count_parameters
from harness.proxies import (
    PROXIES,
    ProxiesScorer,
    ProxyConfig,
    ProxyScorer,
    check_proxies,
    network_at_initialisation,
    proxy_batches,
    weights,
)
from harness.proxies.registry import register_proxy
from harness.space import parse_architecture

TINY = ProxyConfig(C=4, N=1, batch_size=8, batches=2)
BEST = parse_architecture(
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|")
ALL_NONE = parse_architecture("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")


@pytest.fixture(scope="module")
def scores(digits) -> dict[str, dict[str, float]]:
    """Every proxy's score of the best and of the all-none architecture, twice each (fresh scorers)."""
    out: dict[str, dict[str, float]] = {}
    for name in PROXIES:
        first, second = ProxyScorer(name, digits, TINY), ProxyScorer(name, digits, TINY)
        out[name] = {"best": first.score(BEST)[0], "best_again": second.score(BEST)[0],
                     "none": first.score(ALL_NONE)[0]}
    return out


@pytest.mark.parametrize("name", list(PROXIES))
def test_every_proxy_scores_the_network_reproducibly(scores, name: str) -> None:
    assert math.isfinite(scores[name]["best"])
    assert scores[name]["best"] == scores[name]["best_again"]


@pytest.mark.parametrize("name", list(PROXIES))
def test_the_all_none_architecture_scores_finite_and_below_a_good_one(scores, name: str) -> None:
    """No path from input to output: a finite score (documented per proxy), lower than the best cell's."""
    assert math.isfinite(scores[name]["none"])
    assert scores[name]["none"] < scores[name]["best"]


def test_documented_scores_of_the_all_none_architecture(scores) -> None:
    for name in ("grad_norm", "snip", "grasp", "synflow", "naswot", "zico"):
        assert scores[name]["none"] == 0.0, name
    n = TINY.batch_size
    assert scores["jacov"]["none"] == pytest.approx(-n * (math.log(1e-5) + 1e5))


@pytest.mark.parametrize("name", ["grad_norm", "snip", "fisher", "jacov", "naswot", "zico", "synflow"])
def test_other_seeds_give_other_scores(digits, name: str) -> None:
    base = ProxyScorer(name, digits, TINY).score(BEST)[0]
    assert ProxyScorer(name, digits, dataclasses.replace(TINY, init_seed=1)).score(BEST)[0] != base
    if PROXIES[name].uses_data:
        assert ProxyScorer(name, digits, dataclasses.replace(TINY, batch_seed=1)).score(BEST)[0] != base


def test_batches_and_initialisation_are_seeded(digits) -> None:
    first, second = proxy_batches(digits, TINY), proxy_batches(digits, TINY)
    assert len(first) == TINY.batches and first[0][0].shape == (TINY.batch_size, 1, 8, 8)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, second, strict=True))
    assert not torch.equal(first[0][0], proxy_batches(digits, dataclasses.replace(TINY, batch_seed=1))[0][0])
    one, two = network_at_initialisation(BEST, digits, TINY), network_at_initialisation(BEST, digits, TINY)
    assert all(torch.equal(a, b) for a, b in zip(one.state_dict().values(), two.state_dict().values(), strict=True))


def test_params_and_flops_are_the_exact_counts_of_the_network(digits) -> None:
    network = network_at_initialisation(BEST, digits, TINY)
    batches = proxy_batches(digits, TINY)
    assert PROXIES["params"](network, batches, TINY) == pytest.approx(count_parameters(network) / 1e6, abs=0)
    assert PROXIES["flops"](network, batches, TINY) == pytest.approx(count_flops(network, (1, 1, 8, 8)) / 1e6, abs=0)


def test_scorer_reports_the_seconds_an_architecture_cost(digits) -> None:
    value, seconds = ProxyScorer("synflow", digits, TINY).score(BEST)
    assert value > 0 and 0 < seconds < 60


def test_unknown_names_and_too_few_batches_are_refused() -> None:
    with pytest.raises(UnknownNameError, match="unknown proxy 'synflo'; accepted: grad_norm, snip"):
        check_proxies(["synflow", "synflo"], TINY)
    with pytest.raises(UserError, match="zico needs at least 2 batches"):
        check_proxies(["zico"], dataclasses.replace(TINY, batches=1))
    assert [p.name for p in check_proxies(["naswot", "synflow", "naswot"], TINY)] == ["naswot", "synflow"]


def test_a_name_registered_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register_proxy("synflow", paper="-", meaning="-")(lambda network, batches, config: 0.0)


def test_settings_are_checked() -> None:
    for bad in ({"batches": 0}, {"init_seed": -1}, {"dtype": "float16"}, {"split": "dev"}, {"device": "tpu"}):
        with pytest.raises(UserError):
            ProxyConfig(**bad)


def test_too_few_images_for_the_batches_is_refused(digits) -> None:
    with pytest.raises(UserError, match="proxy batches of"):
        proxy_batches(digits, dataclasses.replace(TINY, batch_size=1000, batches=2))


def test_proxies_scored_together_give_each_one_s_value_alone(digits) -> None:
    together = ProxiesScorer(list(PROXIES), digits, TINY).score(BEST)
    assert list(together) == list(PROXIES)
    for name in PROXIES:
        value, seconds = together[name]
        assert value == ProxyScorer(name, digits, TINY).score(BEST)[0], name
        assert seconds > 0
    only = ProxiesScorer(["snip", "zico"], digits, TINY).score(BEST, ["zico"])
    assert list(only) == ["zico"] and only["zico"][0] == together["zico"][0]


def test_the_gradient_proxies_share_one_pass_per_batch(digits, monkeypatch) -> None:
    calls = {"passes": 0}
    original = weights.batch_loss

    def counted(network, images, labels):
        calls["passes"] += 1
        return original(network, images, labels)

    monkeypatch.setattr(weights, "batch_loss", counted)
    ProxiesScorer(["grad_norm", "snip", "fisher", "zico", "naswot"], digits, TINY).score(BEST)
    assert calls["passes"] == TINY.batches
    ProxiesScorer(["grad_norm"], digits, TINY).score(ALL_NONE)  # a new network makes its own
    assert calls["passes"] == 2 * TINY.batches
