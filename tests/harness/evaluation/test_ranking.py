"""Ranking metrics of a supernet against stand-alone accuracy: values, intervals and files."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness.errors import UserError
from harness.evaluation import ranking
from harness.evaluation.ranking import (
    CSV_COLUMNS,
    compare_table,
    degenerate_mask,
    format_metrics,
    ranking_metrics,
    read_ground_truth,
    write_ranking,
)
from harness.testing import strict_json


def _correlated(n: int, seed: int, ties: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A truth and a noisy score of it, rounded so both have ties when ``ties``."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(80.0, 5.0, n)
    score = truth + rng.normal(0.0, 4.0, n)
    return (np.round(score), np.round(truth)) if ties else (score, truth)


def _values(score: np.ndarray, truth: np.ndarray, **kwargs) -> dict[str, float]:
    return {name: m["value"] for name, m in ranking_metrics(score, truth, bootstrap=0, **kwargs).items()}


# -- point values ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correlations_match_scipy_on_data_with_ties(seed):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 6, 200).astype(float)
    score = truth + rng.integers(0, 4, 200)
    values = _values(score, truth)
    assert values["kendall_tau"] == pytest.approx(scipy_stats.kendalltau(score, truth, variant="b").statistic, abs=1e-12)
    assert values["spearman"] == pytest.approx(scipy_stats.spearmanr(score, truth).statistic, abs=1e-12)
    assert values["pearson"] == pytest.approx(scipy_stats.pearsonr(score, truth).statistic, abs=1e-12)


def test_perfect_and_reversed_orders():
    truth = np.arange(40.0)
    perfect = _values(2.0 * truth + 1.0, truth)
    assert all(perfect[name] == pytest.approx(1.0) for name in perfect)
    reversed_ = _values(-truth, truth)
    for name in ("kendall_tau", "spearman", "pearson", "kendall_tau_top10"):
        assert reversed_[name] == pytest.approx(-1.0)
    assert reversed_["precision_top10"] == 0.0


def test_kendall_tau_b_by_hand():
    # Pairs of (x, y) = (1,1), (2,3), (2,2), (3,2):
    #   (1,2) (1,3) (1,4) concordant; (2,4) discordant; (2,3) tied in x; (3,4) tied in y.
    #   C = 3, D = 1, n0 = 6 pairs, n1 = 1 x-tie, n2 = 1 y-tie:
    #   tau_b = (C - D) / sqrt((n0 - n1) (n0 - n2)) = 2 / 5.
    values = _values(np.array([1.0, 2.0, 2.0, 3.0]), np.array([1.0, 3.0, 2.0, 2.0]))
    assert values["kendall_tau"] == pytest.approx(0.4)


def test_precision_at_top_by_hand():
    truth = np.arange(20.0)  # true top 5% (1 arch): index 19; true top 10% (2 archs): 19, 18
    score = truth.copy()
    score[5] = 100.0  # the score's top 1 is index 5, its top 2 are 5 and 19
    values = _values(score, truth)
    assert values["precision_top5"] == 0.0
    assert values["precision_top10"] == 0.5


def test_precision_breaks_ties_by_lower_index():
    truth = np.arange(20.0)[::-1]  # true top 2: indices 0 and 1
    tied = _values(np.zeros(20), truth)  # every score tied: the score's top 2 are indices 0 and 1
    assert tied["precision_top10"] == 1.0
    late = _values(np.zeros(20), truth[::-1])  # now the true top 2 are 19 and 18
    assert late["precision_top10"] == 0.0


def test_kendall_tau_within_true_top_ten_percent():
    truth = np.arange(30.0)  # true top 10%: indices 27, 28, 29
    score = truth.copy()
    score[[27, 29]] = score[[29, 27]]  # right everywhere except the top three, which are reversed
    metrics = ranking_metrics(score, truth, bootstrap=0)
    assert metrics["kendall_tau_top10"]["value"] == pytest.approx(-1.0)
    assert metrics["kendall_tau_top10"]["n"] == 3
    assert metrics["kendall_tau"]["value"] > 0.9


def test_degenerate_architectures_are_left_out():
    rng = np.random.default_rng(3)
    truth = np.r_[np.full(20, 10.0), np.linspace(50.0, 90.0, 80)]
    score = np.r_[rng.uniform(0.0, 100.0, 20), np.linspace(20.0, 60.0, 80)]  # degenerate scores are noise
    mask = degenerate_mask(truth)
    metrics = ranking_metrics(score, truth, degenerate=mask, bootstrap=0)
    assert metrics["kendall_tau_nondegenerate"]["value"] == pytest.approx(1.0)
    assert metrics["kendall_tau_nondegenerate"]["n"] == 80
    assert metrics["kendall_tau"]["value"] < 0.9
    assert "kendall_tau_nondegenerate" not in ranking_metrics(score, truth, bootstrap=0)


def test_degenerate_mask_includes_the_margin():
    truth = np.array([9.0, 10.0, 11.0, 11.01, 93.0])
    assert degenerate_mask(truth).tolist() == [True, True, True, False, False]
    assert degenerate_mask(truth, chance=1.0, margin=0.5).tolist() == [False] * 5


@pytest.mark.parametrize(
    ("score", "truth", "match"),
    [
        (np.ones((3, 2)), np.ones((3, 2)), "1-D"),
        (np.arange(4.0), np.arange(5.0), "same length"),
        (np.arange(2.0), np.arange(2.0), "at least 3"),
        (np.array([1.0, np.nan, 2.0]), np.arange(3.0), "non-finite"),
        (np.arange(3.0), np.array([1.0, np.inf, 2.0]), "non-finite"),
    ],
)
def test_bad_inputs_are_refused(score, truth, match):
    with pytest.raises(ValueError, match=match):
        ranking_metrics(score, truth)


def test_bad_options_are_refused():
    score, truth = _correlated(10, 0)
    with pytest.raises(ValueError, match="degenerate"):
        ranking_metrics(score, truth, degenerate=np.zeros(9, dtype=bool))
    with pytest.raises(ValueError, match="degenerate"):
        ranking_metrics(score, truth, degenerate=np.zeros(10))
    with pytest.raises(ValueError, match="confidence"):
        ranking_metrics(score, truth, confidence=1.0)
    with pytest.raises(ValueError, match="bootstrap"):
        ranking_metrics(score, truth, bootstrap=-1)


# -- bootstrap intervals --------------------------------------------------------------------
def test_interval_is_the_percentile_interval_of_the_metric_on_each_resample(monkeypatch):
    n, resamples, seed = 120, 40, 7
    score, truth = _correlated(n, 4)
    mask = degenerate_mask(truth, chance=76.0, margin=0.0)
    metrics = ranking_metrics(score, truth, degenerate=mask, bootstrap=resamples, seed=seed)
    # The contract: resample i is rows i of default_rng(seed).integers(0, n, (resamples, n)),
    # taken in index order, and its statistic is the point metric on it.
    draws = np.sort(np.random.default_rng(seed).integers(0, n, size=(resamples, n)), axis=1)
    replicates = [_values(score[idx], truth[idx], degenerate=mask[idx]) for idx in draws]
    for name, metric in metrics.items():
        low, high = np.nanpercentile([r[name] for r in replicates], [2.5, 97.5])
        assert (metric["low"], metric["high"]) == pytest.approx((low, high), abs=1e-12), name
    # Drawing the resamples in chunks changes nothing.
    monkeypatch.setattr(ranking, "_CHUNK_ELEMENTS", 7 * n)
    assert ranking_metrics(score, truth, degenerate=mask, bootstrap=resamples, seed=seed) == metrics


def test_interval_contains_the_value_and_narrows_with_more_architectures():
    widths = []
    for n in (200, 2000):
        score, truth = _correlated(n, 5)
        metrics = ranking_metrics(score, truth, bootstrap=200, seed=1)
        for name, metric in metrics.items():
            assert metric["low"] <= metric["value"] <= metric["high"], name
        widths.append(metrics["kendall_tau"]["high"] - metrics["kendall_tau"]["low"])
    assert widths[1] < widths[0] / 2


def test_same_seed_same_interval_other_seed_other_interval():
    score, truth = _correlated(300, 6)
    first = ranking_metrics(score, truth, bootstrap=100, seed=3)
    assert ranking_metrics(score, truth, bootstrap=100, seed=3) == first
    other = ranking_metrics(score, truth, bootstrap=100, seed=4)
    assert other["kendall_tau"]["low"] != first["kendall_tau"]["low"]


def test_no_bootstrap_gives_nan_bounds():
    score, truth = _correlated(30, 0)
    for metric in ranking_metrics(score, truth, bootstrap=0).values():
        assert math.isnan(metric["low"]) and math.isnan(metric["high"])
        assert math.isfinite(metric["value"])


# -- tables ---------------------------------------------------------------------------------
def test_format_metrics_and_compare_table():
    score, truth = _correlated(50, 0)
    metrics = ranking_metrics(score, truth, degenerate=degenerate_mask(truth, chance=75.0), bootstrap=20)
    table = format_metrics(metrics)
    lines = table.splitlines()
    assert lines[0] == "| metric | value | 95% CI | n |"
    assert len(lines) == 2 + len(metrics)
    tau = metrics["kendall_tau"]
    assert f"| kendall_tau | {tau['value']:.3f} | [{tau['low']:.3f}, {tau['high']:.3f}] | 50 |" in lines

    plain = ranking_metrics(score, truth, bootstrap=0)
    compared = compare_table({"spos": metrics, "darts": plain}).splitlines()
    assert compared[0].startswith("| method | kendall_tau | spearman |")
    assert compared[0].endswith("| kendall_tau_nondegenerate |")
    assert compared[2].startswith(f"| spos | {tau['value']:.3f} [{tau['low']:.3f}, {tau['high']:.3f}] |")
    assert compared[3].startswith(f"| darts | {plain['kendall_tau']['value']:.3f} [n/a, n/a] |")
    assert compared[3].endswith("| n/a |")


# -- files ----------------------------------------------------------------------------------
def test_write_ranking_writes_csv_json_and_png(tmp_path):
    score, truth = _correlated(25, 1, ties=False)
    archs = [f"arch-{i}" for i in range(25)]
    metrics = ranking_metrics(score, truth, bootstrap=10)
    metrics["kendall_tau_top10"]["low"] = math.nan  # an undefined figure is written as null
    meta = {"method": "spos", "seed": 0, "supernet_loss": np.array([0.5, np.inf, np.nan])}
    paths = write_ranking(tmp_path / "out", archs, score, truth, metrics, meta)
    assert [p.name for p in paths] == ["ranking.csv", "ranking.json", "ranking.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["ranking.csv", "ranking.json", "ranking.png"]

    with open(paths[0], newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(CSV_COLUMNS) == ["arch", "supernet_score", "ground_truth"]
    assert [r[0] for r in rows[1:]] == archs
    assert np.array_equal([float(r[1]) for r in rows[1:]], score)
    assert np.array_equal([float(r[2]) for r in rows[1:]], truth)

    document = strict_json(paths[1].read_text())
    assert document["meta"] == {"method": "spos", "seed": 0, "supernet_loss": [0.5, None, None]}
    assert document["metrics"]["kendall_tau"] == pytest.approx(metrics["kendall_tau"])
    assert document["metrics"]["kendall_tau_top10"]["low"] is None
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert read_ground_truth(paths[0]) == pytest.approx(dict(zip(archs, truth, strict=True)))


def test_write_ranking_refuses_mismatched_lengths(tmp_path):
    with pytest.raises(ValueError, match="one length"):
        write_ranking(tmp_path, ["a", "b"], np.arange(3.0), np.arange(3.0), {}, {})


def test_read_ground_truth_from_csv_and_json(tmp_path):
    table = tmp_path / "results.csv"
    table.write_text("arch,valid_accuracy,test_accuracy,dataset\n|a|,90.0,91.25,cifar10\n|b|,80.0,79.5,cifar10\n")
    assert read_ground_truth(table) == {"|a|": 91.25, "|b|": 79.5}
    listing = tmp_path / "results.json"
    listing.write_text(json.dumps([{"arch": "|a|", "test_accuracy": 91.25}, {"arch": "|b|", "ground_truth": 79.5}]))
    assert read_ground_truth(listing) == {"|a|": 91.25, "|b|": 79.5}


@pytest.mark.parametrize(
    ("name", "text", "match"),
    [
        ("missing.csv", None, "does not exist"),
        ("header.csv", "arch,accuracy\n|a|,91\n", "has columns"),
        ("value.csv", "arch,test_accuracy\n|a|,ninety\n", "line 2"),
        ("blank.csv", "arch,test_accuracy\n|a|,\n", "line 2"),
        ("twice.csv", "arch,test_accuracy\n|a|,91\n|a|,92\n", "listed twice"),
        ("empty.csv", "arch,test_accuracy\n", "no entries"),
        ("broken.json", '[{"arch": "|a|",', "not valid JSON"),
        ("object.json", '{"arch": "|a|", "test_accuracy": 91}', "JSON list"),
        ("nokey.json", '[{"arch": "|a|", "accuracy": 91}]', "entry 1"),
        ("nan.json", '[{"arch": "|a|", "test_accuracy": NaN}]', "finite"),
    ],
)
def test_read_ground_truth_errors_are_one_line_user_errors(tmp_path, name, text, match):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(UserError, match=match) as caught:
        read_ground_truth(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
