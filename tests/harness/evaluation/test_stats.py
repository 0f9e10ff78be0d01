import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness.evaluation import stats


# -- bootstrap CI of a mean ----------------------------------------------------------------------
def test_bootstrap_mean_ci_is_reproducible_and_seed_dependent():
    values = np.random.default_rng(1).normal(90.0, 1.0, size=20)
    first = stats.bootstrap_mean_ci(values, n_boot=2000, seed=3)
    assert stats.bootstrap_mean_ci(values, n_boot=2000, seed=3) == first
    assert stats.bootstrap_mean_ci(values, n_boot=2000, seed=4) != first
    low, high = first
    assert low < values.mean() < high


def test_bootstrap_mean_ci_agrees_with_scipy_percentile_bootstrap():
    values = np.random.default_rng(2).normal(0.0, 1.0, size=40)
    ours = stats.bootstrap_mean_ci(values, n_boot=20_000, seed=0)
    theirs = scipy_stats.bootstrap(
        (values,), np.mean, n_resamples=20_000, method="percentile", random_state=0
    ).confidence_interval
    width = theirs.high - theirs.low
    assert ours[0] == pytest.approx(theirs.low, abs=0.05 * width)
    assert ours[1] == pytest.approx(theirs.high, abs=0.05 * width)


def test_bootstrap_mean_ci_degenerate_inputs():
    assert stats.bootstrap_mean_ci([93.5]) == (93.5, 93.5)
    assert all(math.isnan(v) for v in stats.bootstrap_mean_ci([]))
    assert stats.bootstrap_mean_ci([2.0, 2.0, 2.0], n_boot=100) == (2.0, 2.0)
    with pytest.raises(ValueError):
        stats.bootstrap_mean_ci([1.0, 2.0], confidence=1.5)


def test_bootstrap_mean_ci_narrows_with_confidence():
    values = np.arange(30.0)
    wide = stats.bootstrap_mean_ci(values, n_boot=3000, confidence=0.99)
    narrow = stats.bootstrap_mean_ci(values, n_boot=3000, confidence=0.5)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]


# -- comparing methods --------------------------------------------------------------------------
def test_cliffs_delta_hand_computed():
    # a vs b pairs: 1 loses 3 times; 2 ties twice, loses once; 3 wins twice, loses once -> -3/9
    assert stats.cliffs_delta([1, 2, 3], [2, 2, 4]) == pytest.approx(-1 / 3)
    assert stats.cliffs_delta([5, 6], [1, 2]) == 1.0
    assert stats.cliffs_delta([1, 2], [5, 6]) == -1.0
    assert math.isnan(stats.cliffs_delta([], [1.0]))


def test_cliffs_delta_matches_mann_whitney_u():
    rng = np.random.default_rng(5)
    a, b = rng.integers(0, 5, 12).astype(float), rng.integers(0, 5, 9).astype(float)
    u, _ = stats.mann_whitney(a, b)
    assert stats.cliffs_delta(a, b) == pytest.approx(2 * u / (a.size * b.size) - 1)


def test_mann_whitney_matches_scipy_two_sided():
    rng = np.random.default_rng(6)
    a, b = rng.normal(0, 1, 15), rng.normal(0.8, 1, 17)
    expected = scipy_stats.mannwhitneyu(a, b, alternative="two-sided")
    assert stats.mann_whitney(a, b) == pytest.approx((expected.statistic, expected.pvalue))


def test_mann_whitney_identical_samples_give_p_one():
    assert stats.mann_whitney([93.1] * 5, [93.1] * 4) == (10.0, 1.0)
    assert all(math.isnan(v) for v in stats.mann_whitney([], [1.0]))


def test_holm_bonferroni_hand_computed():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> monotone 0.06
    adjusted = stats.holm_bonferroni([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_bonferroni_caps_at_one_and_keeps_nan():
    adjusted = stats.holm_bonferroni([0.4, float("nan"), 0.3])
    assert adjusted[0] == pytest.approx(0.6)  # 0.3*2 = 0.6, then max(0.6, 0.4*1)
    assert math.isnan(adjusted[1])
    assert adjusted[2] == pytest.approx(0.6)
    assert stats.holm_bonferroni([0.9, 0.8]) == [1.0, 1.0]
    assert stats.holm_bonferroni([]) == []


def test_pairwise_tests_cover_every_pair_with_holm():
    samples = {"a": [1.0, 2.0, 3.0, 4.0], "b": [5.0, 6.0, 7.0, 8.0], "c": [2.0, 3.0, 4.0, 5.5]}
    comparisons = stats.pairwise_tests(samples)
    assert [(c.method_a, c.method_b) for c in comparisons] == [("a", "b"), ("a", "c"), ("b", "c")]
    raw = [c.p_value for c in comparisons]
    assert [c.p_holm for c in comparisons] == pytest.approx(stats.holm_bonferroni(raw))
    a_vs_b = comparisons[0]
    assert a_vs_b.mean_difference == pytest.approx(-4.0)
    assert a_vs_b.cliffs_delta == -1.0
    assert a_vs_b.p_value == pytest.approx(
        scipy_stats.mannwhitneyu(samples["a"], samples["b"], alternative="two-sided").pvalue
    )
    assert set(a_vs_b.as_dict()) >= {"method_a", "mean_difference", "cliffs_delta", "p_value", "p_holm"}


# -- queries to target ---------------------------------------------------------------------------
def test_queries_to_target_is_first_query_reaching_it():
    assert stats.queries_to_target([0.1, 0.5, 0.5, 0.9], 0.5) == 2
    assert stats.queries_to_target([0.9], 0.5) == 1
    assert stats.queries_to_target([0.1, 0.2], 0.5) is None


def test_summarise_queries_to_target_counts_misses_as_infinite():
    curves = [[0, 1, 1, 1, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    summary = stats.summarise_queries_to_target(curves, 1)
    assert summary.per_run == (2, 5, None)
    assert summary.median_queries == 5.0
    assert summary.fraction_reached == pytest.approx(2 / 3)
    mostly_missed = stats.summarise_queries_to_target([[1], [0], [0]], 1)
    assert mostly_missed.median_queries is None
    assert mostly_missed.fraction_reached == pytest.approx(1 / 3)
    assert stats.summarise_queries_to_target([], 1).n_runs == 0


# -- rank correlation ---------------------------------------------------------------------------
def test_kendall_tau_hand_computed():
    # one discordant pair of six: (5 - 1) / 6
    assert stats.kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)
    # ties in y: C = 2, D = 0, tau-b = 2 / sqrt(3 * 2)
    assert stats.kendall_tau([1, 2, 3], [1, 1, 2]) == pytest.approx(2 / math.sqrt(6))
    assert stats.kendall_tau([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert math.isnan(stats.kendall_tau([1, 1, 1], [1, 2, 3]))


def test_correlations_match_scipy_with_ties():
    rng = np.random.default_rng(7)
    x = rng.integers(0, 20, 300).astype(float)
    y = x + rng.integers(0, 10, 300)
    assert stats.kendall_tau(x, y) == pytest.approx(scipy_stats.kendalltau(x, y).statistic)
    assert stats.spearman(x, y) == pytest.approx(scipy_stats.spearmanr(x, y).statistic)
    assert stats.pearson(x, y) == pytest.approx(scipy_stats.pearsonr(x, y).statistic)


def test_correlations_reject_mismatched_lengths_and_constant_input():
    with pytest.raises(ValueError):
        stats.pearson([1, 2, 3], [1, 2])
    assert math.isnan(stats.pearson([1, 1, 1], [1, 2, 3]))
    assert math.isnan(stats.spearman([1.0], [2.0]))


def test_precision_at_top_hand_computed():
    predicted = [5, 4, 3, 2, 1]
    true = [5, 3, 4, 1, 2]
    # k = 2: predicted top {0, 1}, true top {0, 2}
    assert stats.precision_at_top(predicted, true, 0.4) == 0.5
    assert stats.precision_at_top(predicted, predicted, 0.4) == 1.0
    assert stats.precision_at_top(predicted, true, 1.0) == 1.0
    assert stats.top_k(15_625, 0.1) == 1562
    assert stats.top_k(5, 0.01) == 1
    with pytest.raises(ValueError):
        stats.top_k(10, 0.0)


def test_correlation_cis_bracket_the_estimate_and_are_reproducible():
    rng = np.random.default_rng(8)
    x = rng.normal(size=200)
    y = x + rng.normal(scale=0.7, size=200)
    for metric, ci in (
        (stats.kendall_tau, stats.kendall_tau_ci),
        (stats.spearman, stats.spearman_ci),
        (stats.pearson, stats.pearson_ci),
    ):
        low, high = ci(x, y, n_boot=300, seed=1)
        assert low < metric(x, y) < high
        assert ci(x, y, n_boot=300, seed=1) == (low, high)
    low, high = stats.precision_at_top_ci(x, y, 0.2, n_boot=300, seed=1)
    assert 0.0 <= low <= high <= 1.0


def test_ranking_metrics_reports_every_metric():
    x = np.arange(50.0)
    out = stats.ranking_metrics(x, x, n_boot=50)
    assert set(out) == {"kendall_tau", "spearman", "pearson", "precision_at_top"}
    assert all(out[name]["value"] == pytest.approx(1.0) for name in out)
    assert all(math.isnan(v["ci_low"]) for v in stats.ranking_metrics(x, x, n_boot=0).values())
