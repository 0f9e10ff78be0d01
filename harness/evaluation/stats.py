"""Statistics for comparing searchers over seeds and for ranking supernets.

Confidence intervals are percentile bootstraps drawn from one seeded
``numpy.random.Generator``, so a report is reproducible to the last digit. Methods are
compared with the two-sided Mann-Whitney U test (runs of different methods that share a
seed share no randomness, so the samples are independent, not paired), with Cliff's delta
and the difference of means as effect sizes, and Holm-Bonferroni over all pairs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as _scipy_stats

DEFAULT_CONFIDENCE = 0.95
DEFAULT_N_BOOT = 10_000
#: Default resamples for correlation CIs (each resample of a 15,625-row ranking costs ms).
DEFAULT_N_BOOT_CORRELATION = 1_000


# -- confidence intervals ------------------------------------------------------------------
def _percentile_interval(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return (math.nan, math.nan)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(samples, [tail, 100.0 - tail])
    return (float(low), float(high))


def _check_confidence(confidence: float, n_boot: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot}")


def bootstrap_mean_ci(
    values: Sequence[float],
    *,
    n_boot: int = DEFAULT_N_BOOT,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean of ``values``.

    One value gives a zero-width interval at that value; no values give ``(nan, nan)``.
    """
    _check_confidence(confidence, n_boot)
    data = np.asarray(values, dtype=np.float64).ravel()
    if data.size == 0:
        return (math.nan, math.nan)
    if data.size == 1:
        return (float(data[0]), float(data[0]))
    rng = np.random.default_rng(seed)
    means = np.empty(int(n_boot))
    # Chunks keep the index matrix small whatever n_boot and the sample size are.
    chunk = max(1, 2_000_000 // data.size)
    for start in range(0, int(n_boot), chunk):
        stop = min(int(n_boot), start + chunk)
        idx = rng.integers(0, data.size, size=(stop - start, data.size))
        means[start:stop] = data[idx].mean(axis=1)
    return _percentile_interval(means, confidence)


def bootstrap_paired_ci(
    statistic: Callable[[np.ndarray, np.ndarray], float],
    x: Sequence[float],
    y: Sequence[float],
    *,
    n_boot: int = DEFAULT_N_BOOT_CORRELATION,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``statistic(x, y)``, resampling (x_i, y_i) pairs together.

    Resamples on which the statistic is undefined (nan, e.g. a constant resample) are
    dropped; if all are, the interval is ``(nan, nan)``.
    """
    _check_confidence(confidence, n_boot)
    xs, ys = _paired_arrays(x, y)
    if xs.size < 2:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    values = np.empty(int(n_boot))
    for b in range(int(n_boot)):
        idx = rng.integers(0, xs.size, size=xs.size)
        values[b] = statistic(xs[idx], ys[idx])
    return _percentile_interval(values, confidence)


# -- comparing methods over seeds -------------------------------------------------------
def cliffs_delta(a: Sequence[float], b: Sequence[float]) -> float:
    """Cliff's delta: P(a > b) - P(a < b) over all pairs; +1 when every a beats every b."""
    xa = np.asarray(a, dtype=np.float64).ravel()
    xb = np.asarray(b, dtype=np.float64).ravel()
    if xa.size == 0 or xb.size == 0:
        return math.nan
    return float(np.sign(xa[:, None] - xb[None, :]).mean())


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test: ``(U of a, p-value)``; ``(nan, nan)`` if a sample is empty.

    Two samples of one identical value are indistinguishable: p = 1.
    """
    xa = np.asarray(a, dtype=np.float64).ravel()
    xb = np.asarray(b, dtype=np.float64).ravel()
    if xa.size == 0 or xb.size == 0:
        return (math.nan, math.nan)
    if np.ptp(np.concatenate([xa, xb])) == 0.0:
        return (xa.size * xb.size / 2.0, 1.0)
    result = _scipy_stats.mannwhitneyu(xa, xb, alternative="two-sided")
    return (float(result.statistic), float(result.pvalue))


def holm_bonferroni(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    The i-th smallest of m p-values is multiplied by (m - i + 1), capped at 1, and made
    non-decreasing along the sorted order; rejecting where the adjusted value is <= alpha
    controls the family-wise error rate at alpha. NaN entries stay NaN and do not count in m.
    """
    p = np.asarray(p_values, dtype=np.float64).ravel()
    adjusted = np.full(p.shape, np.nan)
    finite = np.flatnonzero(~np.isnan(p))
    m = finite.size
    running = 0.0
    for rank, index in enumerate(finite[np.argsort(p[finite], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return [float(v) for v in adjusted]


@dataclass(frozen=True)
class PairwiseComparison:
    """Method A against method B over seeds: effect sizes and the two-sided test."""

    method_a: str
    method_b: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    #: mean_a - mean_b
    mean_difference: float
    #: P(a > b) - P(a < b); positive when A tends to be better.
    cliffs_delta: float
    u_statistic: float
    p_value: float
    #: Holm-Bonferroni adjusted over all pairs of the comparison.
    p_holm: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def pairwise_tests(samples: Mapping[str, Sequence[float]]) -> list[PairwiseComparison]:
    """Compare every pair of methods (in the mapping's order) with Holm over all pairs."""
    names = list(samples)
    raw = []
    for name_a, name_b in itertools.combinations(names, 2):
        a = np.asarray(samples[name_a], dtype=np.float64).ravel()
        b = np.asarray(samples[name_b], dtype=np.float64).ravel()
        u, p = mann_whitney(a, b)
        mean_a = float(a.mean()) if a.size else math.nan
        mean_b = float(b.mean()) if b.size else math.nan
        raw.append((name_a, name_b, a.size, b.size, mean_a, mean_b, u, p, cliffs_delta(a, b)))
    adjusted = holm_bonferroni([r[7] for r in raw])
    return [
        PairwiseComparison(
            method_a=name_a,
            method_b=name_b,
            n_a=int(n_a),
            n_b=int(n_b),
            mean_a=mean_a,
            mean_b=mean_b,
            mean_difference=mean_a - mean_b,
            cliffs_delta=delta,
            u_statistic=u,
            p_value=p,
            p_holm=p_holm,
        )
        for (name_a, name_b, n_a, n_b, mean_a, mean_b, u, p, delta), p_holm in zip(raw, adjusted, strict=True)
    ]


# -- queries to reach a target ------------------------------------------------------------
def queries_to_target(incumbent_test: Sequence[float], target: float) -> int | None:
    """The first (1-based) query at which the incumbent's test figure is >= ``target``; None if never."""
    values = np.asarray(incumbent_test, dtype=np.float64).ravel()
    hits = np.flatnonzero(values >= target)
    return int(hits[0]) + 1 if hits.size else None


@dataclass(frozen=True)
class TargetSummary:
    """Queries-to-target over seeds.

    A seed that never reached the target counts as infinitely many queries, so the median
    is None (never) when half or more of the seeds missed it; it is a median over *all*
    seeds, not only the lucky ones.
    """

    target: float
    median_queries: float | None
    fraction_reached: float
    n_runs: int
    per_run: tuple[int | None, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "median_queries": self.median_queries,
            "fraction_reached": self.fraction_reached,
            "n_runs": self.n_runs,
            "per_run": list(self.per_run),
        }


def summarise_queries_to_target(curves: Sequence[Sequence[float]], target: float) -> TargetSummary:
    """Queries-to-target of each run's incumbent curve, as the median and the fraction reached."""
    per_run = tuple(queries_to_target(curve, target) for curve in curves)
    if not per_run:
        return TargetSummary(float(target), None, math.nan, 0, ())
    values = np.array([math.inf if q is None else q for q in per_run], dtype=np.float64)
    median = float(np.median(values))
    return TargetSummary(
        target=float(target),
        median_queries=median if math.isfinite(median) else None,
        fraction_reached=float(np.mean(np.isfinite(values))),
        n_runs=len(per_run),
        per_run=per_run,
    )


# -- rank correlation (supernet / predictor ranking quality) ---------------------------------
def _paired_arrays(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    xs = np.asarray(x, dtype=np.float64).ravel()
    ys = np.asarray(y, dtype=np.float64).ravel()
    if xs.shape != ys.shape:
        raise ValueError(f"x and y must have the same length, got {xs.size} and {ys.size}")
    return xs, ys


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's linear correlation; nan when either input is constant or shorter than 2."""
    xs, ys = _paired_arrays(x, y)
    if xs.size < 2:
        return math.nan
    dx = xs - xs.mean()
    dy = ys - ys.mean()
    # Elementwise sums, not BLAS dot products: BLAS threads make short vectors erratically slow.
    denominator = math.sqrt(float((dx * dx).sum()) * float((dy * dy).sum()))
    if denominator == 0.0:
        return math.nan
    return float(np.clip(float((dx * dy).sum()) / denominator, -1.0, 1.0))


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rho: Pearson's correlation of the average ranks (ties share their mean rank)."""
    xs, ys = _paired_arrays(x, y)
    if xs.size < 2:
        return math.nan
    return pearson(_scipy_stats.rankdata(xs), _scipy_stats.rankdata(ys))


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's tau-b (corrected for ties in either ranking); nan for a constant input."""
    xs, ys = _paired_arrays(x, y)
    if xs.size < 2 or np.ptp(xs) == 0.0 or np.ptp(ys) == 0.0:
        return math.nan
    return float(_scipy_stats.kendalltau(xs, ys, variant="b").statistic)


def top_k(n: int, fraction: float) -> int:
    """How many items the top ``fraction`` of ``n`` holds: round(fraction * n), at least 1."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    return max(1, int(round(fraction * n)))


def precision_at_top(predicted: Sequence[float], true: Sequence[float], fraction: float = 0.1) -> float:
    """Share of the true top-k found in the predicted top-k, k = ``top_k(n, fraction)``.

    Higher is better for both inputs; ties are broken by position (stable order).
    """
    ps, ts = _paired_arrays(predicted, true)
    if ps.size == 0:
        return math.nan
    k = top_k(ps.size, fraction)
    predicted_top = np.argsort(-ps, kind="stable")[:k]
    true_top = np.argsort(-ts, kind="stable")[:k]
    return float(np.intersect1d(predicted_top, true_top).size / k)


def pearson_ci(x: Sequence[float], y: Sequence[float], **kwargs: Any) -> tuple[float, float]:
    """Bootstrap CI of ``pearson`` (keyword arguments as ``bootstrap_paired_ci``)."""
    return bootstrap_paired_ci(pearson, x, y, **kwargs)


def spearman_ci(x: Sequence[float], y: Sequence[float], **kwargs: Any) -> tuple[float, float]:
    """Bootstrap CI of ``spearman`` (keyword arguments as ``bootstrap_paired_ci``)."""
    return bootstrap_paired_ci(spearman, x, y, **kwargs)


def kendall_tau_ci(x: Sequence[float], y: Sequence[float], **kwargs: Any) -> tuple[float, float]:
    """Bootstrap CI of ``kendall_tau`` (keyword arguments as ``bootstrap_paired_ci``)."""
    return bootstrap_paired_ci(kendall_tau, x, y, **kwargs)


def precision_at_top_ci(
    predicted: Sequence[float], true: Sequence[float], fraction: float = 0.1, **kwargs: Any
) -> tuple[float, float]:
    """Bootstrap CI of ``precision_at_top`` (keyword arguments as ``bootstrap_paired_ci``)."""
    return bootstrap_paired_ci(lambda p, t: precision_at_top(p, t, fraction), predicted, true, **kwargs)


def ranking_metrics(
    predicted: Sequence[float],
    true: Sequence[float],
    *,
    top_fraction: float = 0.1,
    n_boot: int = DEFAULT_N_BOOT_CORRELATION,
    confidence: float = DEFAULT_CONFIDENCE,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Every ranking metric of ``predicted`` against ``true`` with its bootstrap CI.

    Returns ``{metric: {"value", "ci_low", "ci_high"}}`` for kendall_tau, spearman,
    pearson and precision_at_top; ``n_boot=0`` skips the intervals (nan).
    """
    metrics: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
        "kendall_tau": kendall_tau,
        "spearman": spearman,
        "pearson": pearson,
        "precision_at_top": lambda p, t: precision_at_top(p, t, top_fraction),
    }
    out: dict[str, dict[str, float]] = {}
    for name, metric in metrics.items():
        low, high = (
            bootstrap_paired_ci(metric, predicted, true, n_boot=n_boot, confidence=confidence, seed=seed)
            if n_boot > 0
            else (math.nan, math.nan)
        )
        out[name] = {"value": metric(*_paired_arrays(predicted, true)), "ci_low": low, "ci_high": high}
    return out
