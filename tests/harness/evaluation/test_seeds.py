"""The seed study: per-seed tau, mean +- std, and tests of the order of methods across seeds and architectures."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.evaluation import stats
from harness.evaluation.seeds import seed_study, seed_study_markdown
from harness.experiments.supernets import seed_groups

N = 300


@pytest.fixture(scope="module")
def truth():
    return np.random.default_rng(7).normal(70.0, 10.0, N)


def noisy(truth, noise: float, seed: int) -> np.ndarray:
    """A ranker's scores: the truth plus Gaussian noise of this size (bigger: a worse ranker)."""
    return truth + np.random.default_rng(seed).normal(0.0, noise, truth.size)


def test_per_seed_taus_mean_and_std_are_the_plain_figures(truth):
    runs = {"a": [noisy(truth, 5, s) for s in range(3)], "b": [noisy(truth, 20, 10 + s) for s in range(4)]}
    study = seed_study(runs, truth, bootstrap=200)
    for method, scores in runs.items():
        taus = [stats.kendall_tau(score, truth) for score in scores]
        row = study["methods"][method]
        assert row["taus"] == pytest.approx(taus)
        assert row["mean"] == pytest.approx(np.mean(taus))
        assert row["std"] == pytest.approx(np.std(taus, ddof=1))
        assert row["low"] <= row["mean"] <= row["high"]
    assert study["order"] == ["a", "b"]


def test_a_clearly_better_ranker_is_called_better(truth):
    study = seed_study({"worse": [noisy(truth, 25, s) for s in range(3)],
                        "better": [noisy(truth, 5, 10 + s) for s in range(3)]}, truth, bootstrap=500)
    (pair,) = study["pairs"]
    assert pair["method_a"] == "worse" and pair["difference"] < 0
    assert pair["high"] < 0 and pair["p_bootstrap_holm"] <= 0.05
    assert "better ranks better than worse" in seed_study_markdown(study)
    assert "better > worse" in seed_study_markdown(study)


def test_two_rankers_of_one_quality_are_not_told_apart(truth):
    study = seed_study({"x": [noisy(truth, 15, s) for s in range(3)],
                        "y": [noisy(truth, 15, 10 + s) for s in range(3)]}, truth, bootstrap=500)
    (pair,) = study["pairs"]
    assert pair["low"] < 0 < pair["high"] and pair["p_bootstrap_holm"] > 0.05
    assert "no significant difference" in seed_study_markdown(study)


def test_a_method_whose_seeds_disagree_is_not_ranked_on_its_best_seed(truth):
    """One lucky seed must not make a method better: the seed resample puts its spread into the interval."""
    erratic = [noisy(truth, 2, 1), noisy(truth, 60, 2), noisy(truth, 60, 3)]
    steady = [noisy(truth, 12, 10 + s) for s in range(3)]
    study = seed_study({"erratic": erratic, "steady": steady}, truth, bootstrap=500)
    row = study["methods"]["erratic"]
    assert max(row["taus"]) > study["methods"]["steady"]["mean"]  # its best seed beats the steady method...
    assert row["high"] - row["low"] > 0.3  # ...but the interval of its mean spans its seeds' spread
    assert not (study["pairs"][0]["difference"] > 0 and study["pairs"][0]["p_bootstrap_holm"] <= 0.05)


def test_the_same_seed_gives_the_same_study_and_holm_covers_all_pairs(truth):
    runs = {name: [noisy(truth, noise, s) for s in range(3)] for name, noise in (("a", 5), ("b", 10), ("c", 30))}
    first, again = seed_study(runs, truth, bootstrap=300, seed=3), seed_study(runs, truth, bootstrap=300, seed=3)
    assert first == again
    assert seed_study(runs, truth, bootstrap=300, seed=4)["pairs"][0]["low"] != first["pairs"][0]["low"]
    raw = [pair["p_bootstrap"] for pair in first["pairs"]]
    assert [pair["p_bootstrap_holm"] for pair in first["pairs"]] == stats.holm_bonferroni(raw)
    assert [(p["method_a"], p["method_b"]) for p in first["pairs"]] == [("a", "b"), ("a", "c"), ("b", "c")]


def test_without_replicates_only_welch_is_given(truth):
    study = seed_study({"a": [noisy(truth, 5, s) for s in range(3)],
                        "b": [noisy(truth, 30, 10 + s) for s in range(3)]}, truth, bootstrap=0)
    (pair,) = study["pairs"]
    assert math.isnan(pair["low"]) and math.isnan(pair["p_bootstrap"]) and pair["p_welch"] < 0.05
    assert "n/a" in seed_study_markdown(study)


@pytest.mark.parametrize(("runs", "message"), [
    ({"a": [np.arange(5.0)]}, "at least 2 per method"),
    ({"a": [np.arange(5.0), np.arange(4.0)]}, "same length"),
])
def test_bad_input_is_refused(runs, message):
    with pytest.raises(ValueError, match=message):
        seed_study(runs, np.arange(5.0), bootstrap=10)


def payload(method: str, seed: int, epochs: int = 10, threads: int = 1, **config) -> dict:
    return {"method": method, "epoch": epochs,
            "config": {"epochs": epochs, "C": 16, "N": 1, "precision": "bf16", "seed": seed, "threads": threads,
                       **config}}


def test_seed_groups_are_one_method_and_protocol_with_distinct_seeds():
    runs = {
        "spos-0": payload("spos", 0), "spos-1": payload("spos", 1, threads=2),  # threads do not change the protocol
        "spos-again": payload("spos", 1),  # a seed the group holds: left out
        "spos-long-0": payload("spos", 0, epochs=20), "spos-long-1": payload("spos", 1, epochs=20),
        "fair-0": payload("fairnas", 0), "fair-1": payload("fairnas", 1), "fair-2": payload("fairnas", 2),
        "greedy-0": payload("greedynas", 0),  # one seed: no group
        "fair-lr-0": payload("fairnas", 3, lr=0.1),  # another protocol, one seed: no group
    }
    groups = seed_groups(list(runs), list(runs.values()))
    assert groups == {"spos": ["spos-0", "spos-1"], "spos-2": ["spos-long-0", "spos-long-1"],
                      "fairnas": ["fair-0", "fair-1", "fair-2"]}
