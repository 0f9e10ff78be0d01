"""Is one ranker better than another once the training seed is counted?

A supernet's Kendall tau depends on the seed it was trained with as well as on the
architectures it is measured on, and a single seed per method cannot tell the two apart
(the field disputes exactly this). ``seed_study`` takes, per method, the scores of several
independently seeded supernets on the same architectures and reports the tau of each seed,
the mean and standard deviation over seeds, and for every pair of methods two tests of the
difference in mean tau:

- a two-level (hierarchical) bootstrap: each replicate resamples the architectures with
  replacement (one resample shared by every supernet, since all score the same
  architectures) and, independently for each method, its seeds with replacement. The
  interval is the percentile interval of the replicated difference; the two-sided p-value is
  twice the smaller share of replicates on either side of zero. It counts both sources of
  variation, so it is the test to read.
- Welch's t-test on the per-seed taus (the architectures held fixed): seeds only.

Each family of p-values is Holm-corrected over all pairs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats as _scipy_stats

from harness.evaluation import stats
from harness.evaluation.ranking import _resample_counts, _tau_of_counts, _validate
from harness.evaluation.stats import _percentile_interval

#: Replicates of the two-level bootstrap by default (p-values resolve to 1 / 2000).
DEFAULT_BOOTSTRAP = 2000
#: Holm-adjusted p-values at or below this call an order of two methods significant.
ALPHA = 0.05
#: Upper bound on resamples x architectures held in memory at once.
_CHUNK_ELEMENTS = 1_000_000


def _checked(scores: Mapping[str, Sequence[np.ndarray]], truth: np.ndarray) -> dict[str, list[np.ndarray]]:
    if len(scores) < 1:
        raise ValueError("a seed study needs at least one method")
    checked: dict[str, list[np.ndarray]] = {}
    for method, runs in scores.items():
        runs = list(runs)
        if len(runs) < 2:
            raise ValueError(f"{method} has {len(runs)} seed(s); a seed study needs at least 2 per method")
        checked[method] = [_validate(run, truth, None)[0] for run in runs]
    return checked


def _bootstrap_taus(runs: dict[str, list[np.ndarray]], truth: np.ndarray, resamples: int,
                    rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per method, the (resamples, seeds) taus of every seed on each shared resample of the architectures."""
    n = truth.size
    rows = max(1, _CHUNK_ELEMENTS // n)
    parts: dict[str, list[np.ndarray]] = {method: [] for method in runs}
    for start in range(0, resamples, rows):
        counts = _resample_counts(rng, min(rows, resamples - start), n)
        for method, method_runs in runs.items():
            parts[method].append(np.stack([_tau_of_counts(score, truth, counts) for score in method_runs], axis=1))
    return {method: np.concatenate(blocks) for method, blocks in parts.items()}


def _seed_means(taus: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mean tau over a resample of the seeds (with replacement) in each replicate row."""
    replicates, seeds = taus.shape
    picks = rng.integers(0, seeds, size=(replicates, seeds))
    return np.take_along_axis(taus, picks, axis=1).mean(axis=1)


def _two_sided_p(differences: np.ndarray) -> float:
    differences = differences[np.isfinite(differences)]
    if differences.size == 0:
        return math.nan
    share = min(float(np.mean(differences <= 0.0)), float(np.mean(differences >= 0.0)))
    return min(1.0, 2.0 * share)


def _welch_p(a: Sequence[float], b: Sequence[float]) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if np.ptp(a) == 0 and np.ptp(b) == 0:  # no spread on either side: the t statistic is undefined
        return 0.0 if a.mean() != b.mean() else 1.0
    return float(_scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)


def seed_study(scores: Mapping[str, Sequence[np.ndarray]], truth: np.ndarray, *, bootstrap: int = DEFAULT_BOOTSTRAP,
               seed: int = 0, confidence: float = 0.95) -> dict[str, Any]:
    """Kendall tau per seed, mean +- std per method, and every pair of methods tested across seeds and architectures.

    ``scores[method]`` holds one score vector per seeded supernet, each over the same
    architectures as ``truth`` (higher is better on both). Returns ``{"methods": {method:
    {"taus", "mean", "std", "low", "high"}}, "pairs": [...], "order": [...], ...}`` where
    ``low``/``high`` bound the method's mean tau by the two-level bootstrap and each pair
    (in the mapping's order, A before B) has ``difference`` = mean tau A - mean tau B, its
    interval, ``p_bootstrap`` / ``p_bootstrap_holm`` and ``p_welch`` / ``p_welch_holm``.
    ``order`` lists the methods by descending mean tau. Everything random comes from
    ``np.random.default_rng(seed)``; ``bootstrap=0`` leaves the intervals and bootstrap
    p-values nan (Welch's test only).
    """
    runs = _checked(scores, truth)
    truth = np.asarray(truth, dtype=np.float64)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if int(bootstrap) < 0:
        raise ValueError(f"bootstrap must be a non-negative number of replicates, got {bootstrap}")
    rng = np.random.default_rng(seed)
    point = {method: [stats.kendall_tau(score, truth) for score in method_runs] for method, method_runs in runs.items()}
    if bootstrap:
        replicated = _bootstrap_taus(runs, truth, int(bootstrap), rng)
        means = {method: _seed_means(taus, rng) for method, taus in replicated.items()}
    else:  # no replicates: nan intervals and bootstrap p-values, Welch's test only
        means = {method: np.full(1, np.nan) for method in runs}
    methods: dict[str, dict[str, Any]] = {}
    for method, taus in point.items():
        low, high = _percentile_interval(means[method], confidence)
        methods[method] = {"seeds": len(taus), "taus": [float(t) for t in taus], "mean": float(np.mean(taus)),
                           "std": float(np.std(taus, ddof=1)), "low": low, "high": high}
    pairs = []
    for a, b in itertools.combinations(runs, 2):
        low, high = _percentile_interval(means[a] - means[b], confidence)
        pairs.append({"method_a": a, "method_b": b, "difference": methods[a]["mean"] - methods[b]["mean"],
                      "low": low, "high": high, "p_bootstrap": _two_sided_p(means[a] - means[b]),
                      "p_welch": _welch_p(point[a], point[b])})
    for test in ("p_bootstrap", "p_welch"):
        for pair, adjusted in zip(pairs, stats.holm_bonferroni([pair[test] for pair in pairs]), strict=True):
            pair[f"{test}_holm"] = adjusted
    order = sorted(methods, key=lambda method: -methods[method]["mean"])
    return {"architectures": int(truth.size), "bootstrap": int(bootstrap), "seed": seed, "confidence": confidence,
            "alpha": ALPHA, "methods": methods, "pairs": pairs, "order": order}


def _verdict(pair: Mapping[str, Any]) -> str:
    if not pair["p_bootstrap_holm"] <= ALPHA:
        return "no significant difference"
    better, worse = ((pair["method_a"], pair["method_b"]) if pair["difference"] > 0
                     else (pair["method_b"], pair["method_a"]))
    return f"{better} ranks better than {worse}"


def _f(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _p(value: float, replicates: int) -> str:
    """A bootstrap p-value; 0 (no replicate crossed zero) is written as below the resolution, 1 / replicates."""
    if value is not None and math.isfinite(value) and value == 0.0 and replicates:
        return f"< {1 / replicates:.2g}"
    return _f(value)


def seed_study_markdown(study: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> str:
    """The study as markdown: a table per method, a table per pair, and the verdict on the order."""
    labels = labels or {}
    percent = round(100 * study["confidence"])
    lines = [f"Kendall tau of each seeded supernet on the same {study['architectures']} architectures; the interval "
             f"of a mean and of a difference is the {percent}% two-level bootstrap ({study['bootstrap']} "
             f"replicates resampling architectures and seeds).", "",
             f"| method | seeds | tau per seed | mean +- std | {percent}% interval of the mean |", "|---|---|---|---|---|"]
    for method in study["order"]:
        row = study["methods"][method]
        name = f"{method} ({labels[method]})" if method in labels else method
        lines.append(f"| {name} | {row['seeds']} | {', '.join(_f(t) for t in row['taus'])} | "
                     f"{_f(row['mean'])} +- {_f(row['std'])} | [{_f(row['low'])}, {_f(row['high'])}] |")
    lines += ["", "| A | B | mean tau A - B | interval | p (two-level bootstrap), Holm | p (Welch, seeds only), Holm "
              "| verdict at 0.05 |", "|---|---|---|---|---|---|---|"]
    for pair in study["pairs"]:
        lines.append(f"| {pair['method_a']} | {pair['method_b']} | {_f(pair['difference'])} | "
                     f"[{_f(pair['low'])}, {_f(pair['high'])}] | {_p(pair['p_bootstrap'], study['bootstrap'])}, "
                     f"{_p(pair['p_bootstrap_holm'], study['bootstrap'])} | {_f(pair['p_welch'])}, {_f(pair['p_welch_holm'])} | "
                     f"{_verdict(pair)} |")
    significant = {(p["method_a"], p["method_b"]) for p in study["pairs"] if p["p_bootstrap_holm"] <= ALPHA}
    order = study["order"]
    steps = [f"{upper} {'>' if (upper, lower) in significant or (lower, upper) in significant else '~'} {lower}"
             for upper, lower in itertools.pairwise(order)]
    lines += ["", f"Order by mean tau: {', '.join(order)}. Neighbours in that order, tested (> significant after Holm, "
                  f"~ not): {'; '.join(steps) if steps else 'one method only'}."]
    return "\n".join(lines) + "\n"
