"""Rank-averaged combinations of rankers, and the test of a combination against its best member."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.evaluation import stats
from harness.evaluation.combine import (
    combination_markdown,
    combination_study,
    pairwise_agreement,
    rank_average,
    versus_baseline,
)

N = 400


@pytest.fixture(scope="module")
def truth():
    return np.random.default_rng(3).normal(70.0, 10.0, N)


def noisy(truth, noise: float, seed: int) -> np.ndarray:
    return truth + np.random.default_rng(seed).normal(0.0, noise, truth.size)


def test_rank_average_by_hand():
    # ranks [3, 1, 2] and [1, 2, 3] (ties none); their mean
    assert rank_average([np.array([30.0, -1.0, 5.0]), np.array([0.1, 0.2, 0.3])]).tolist() == [2.0, 1.5, 2.5]
    # ties take the mean of their positions; one vector gives its own ranks
    assert rank_average([np.array([1.0, 1.0, 7.0])]).tolist() == [1.5, 1.5, 3.0]
    # a ranker's scale does not matter, only its order
    a, b = np.array([1.0, 5.0, 2.0, 4.0]), np.array([4.0, 3.0, 2.0, 1.0])
    assert rank_average([a, b]).tolist() == rank_average([a * 1000 - 7, np.exp(b)]).tolist()


@pytest.mark.parametrize("bad", [[], [np.array([1.0, 2.0]), np.array([1.0, 2.0, 3.0])],
                                 [np.array([1.0, np.nan])], [np.ones((2, 2))]])
def test_rank_average_refuses_what_it_cannot_rank(bad):
    with pytest.raises(ValueError):
        rank_average(bad)


def test_two_independent_noisy_rankers_combine_into_a_better_one(truth):
    rankers = {"a": noisy(truth, 10, 1), "b": noisy(truth, 10, 2)}
    study = combination_study(rankers, truth, [("a", "b")], bootstrap=300)
    combo = study["combinations"][0]
    assert combo["name"] == "a+b" and combo["members"] == ["a", "b"]
    assert combo["kendall_tau"] == pytest.approx(stats.kendall_tau(rank_average(list(rankers.values())), truth))
    best = max(rankers, key=lambda name: stats.kendall_tau(rankers[name], truth))
    assert combo["best_member"] == best
    assert combo["best_member_tau"] == pytest.approx(study["rankers"][best]["kendall_tau"])
    assert combo["gain"] == pytest.approx(combo["kendall_tau"] - combo["best_member_tau"])
    assert combo["gain"] > 0.03 and combo["gain_low"] > 0 and combo["p_holm"] < 0.05
    assert combo["low"] <= combo["kendall_tau"] <= combo["high"]


def test_adding_a_random_ranker_to_a_good_one_is_worse(truth):
    rankers = {"good": noisy(truth, 3, 4), "random": np.random.default_rng(5).normal(size=N), "ok": noisy(truth, 8, 6)}
    study = combination_study(rankers, truth, [("good", "random"), ("good", "ok")], bootstrap=300, seed=1)
    by_name = {combo["name"]: combo for combo in study["combinations"]}
    assert by_name["good+random"]["best_member"] == "good"
    assert by_name["good+random"]["gain"] < -0.1 and by_name["good+random"]["gain_high"] < 0
    # Holm: the adjusted p-values are at least the raw ones
    assert all(combo["p_holm"] >= combo["p"] for combo in study["combinations"])
    text = combination_markdown(study)
    assert "| good+random |" in text and "worse than its best member" in text


def test_study_is_seeded_and_bootstrap_zero_gives_nan(truth):
    rankers = {"a": noisy(truth, 10, 1), "b": noisy(truth, 12, 2)}
    first = combination_study(rankers, truth, [("a", "b")], bootstrap=100, seed=9)
    assert first == combination_study(rankers, truth, [("a", "b")], bootstrap=100, seed=9)
    none = combination_study(rankers, truth, [("a", "b")], bootstrap=0)
    combo = none["combinations"][0]
    assert math.isnan(combo["low"]) and math.isnan(combo["p"]) and math.isnan(combo["p_holm"])
    assert combo["kendall_tau"] == pytest.approx(first["combinations"][0]["kendall_tau"])
    assert "n/a" in combination_markdown(none)


@pytest.mark.parametrize("combination, message", [(("a", "zz"), "unknown ranker"), (("a", "a"), "2 or more distinct"),
                                                  (("a",), "2 or more distinct")])
def test_bad_combinations_are_refused_by_name(truth, combination, message):
    with pytest.raises(ValueError, match=message):
        combination_study({"a": noisy(truth, 1, 1), "b": noisy(truth, 1, 2)}, truth, [combination], bootstrap=0)


def test_pairwise_agreement_by_hand():
    truth = np.array([1.0, 2.0, 3.0, 4.0])
    # 6 pairs; this ranker swaps one (the last two): 5 of 6 agree
    assert pairwise_agreement([np.array([1.0, 2.0, 4.0, 3.0])], truth) == pytest.approx(5 / 6)
    # a tie in the score votes against; a tie in the truth is not counted
    assert pairwise_agreement([np.array([1.0, 1.0, 3.0, 4.0])], truth) == pytest.approx(5 / 6)
    assert pairwise_agreement([np.array([1.0, 2.0, 3.0, 4.0])], np.array([1.0, 1.0, 3.0, 4.0])) == 1.0
    # a vote of three: a pair is right when at least 2 of 3 order it as the truth does
    a, b, c = np.array([2.0, 1.0, 3.0, 4.0]), np.array([1.0, 2.0, 4.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0])
    assert pairwise_agreement([a, b, c], truth) == 1.0
    assert pairwise_agreement([a, b, np.array([2.0, 1.0, 4.0, 3.0])], truth) == pytest.approx(4 / 6)


def test_one_rankers_agreement_is_the_share_of_concordant_pairs(truth):
    score = noisy(truth, 10, 8)
    assert pairwise_agreement([score], truth, block=37) == pytest.approx((1 + stats.kendall_tau(score, truth)) / 2)


def test_versus_baseline_separates_a_better_ranker_and_not_a_twin(truth):
    baseline = noisy(truth, 10, 11)
    rankers = {"params": baseline, "better": noisy(truth, 4, 12), "twin": baseline + 1e-9 * np.arange(N)}
    rows = {row["name"]: row for row in versus_baseline(rankers, truth, "params", bootstrap=300)}
    assert set(rows) == {"better", "twin"}
    better = rows["better"]
    assert better["difference"] == pytest.approx(better["kendall_tau"] - better["baseline_tau"])
    assert better["low"] > 0 and better["p_holm"] < 0.05
    assert abs(rows["twin"]["difference"]) < 0.01 and rows["twin"]["p_holm"] > 0.05
    with pytest.raises(ValueError, match="baseline"):
        versus_baseline(rankers, truth, "flops", bootstrap=0)
