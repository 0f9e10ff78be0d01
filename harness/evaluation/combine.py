"""Does a combination of rankers order architectures better than its members alone?

A combination is a rank average: each member's scores are turned into ranks over the
architectures (ties averaged, higher score = higher rank), the ranks are averaged with
equal weight, and the mean rank is the combination's score. Rank averaging needs no
calibration between rankers whose scales have nothing in common (a supernet's mean
probability, a proxy's log-saliency, a parameter count); it is the "voting" of
Abdelfattah et al. (ICLR 2021) with ranks in place of votes.

``combination_study`` measures each combination's Kendall tau against the ground truth
and tests it against its best member (the member with the highest tau on these
architectures): a paired bootstrap resamples the architectures with replacement, one
resample shared by every ranker, and the interval of (tau of the combination - tau of the
best member) is the percentile interval over replicates; the two-sided p-value is twice the
smaller share on either side of zero, Holm-corrected over all combinations studied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats as _scipy_stats

from harness.evaluation import stats
from harness.evaluation.ranking import _resample_counts, _tau_of_counts, _validate
from harness.evaluation.seeds import _two_sided_p
from harness.evaluation.stats import _percentile_interval

#: Joins the members' names into a combination's name.
SEPARATOR = "+"
#: Upper bound on resamples x architectures held in memory at once.
_CHUNK_ELEMENTS = 1_000_000


def rank_average(scores: Sequence[np.ndarray]) -> np.ndarray:
    """The mean over ``scores`` (one vector per ranker, higher is better) of each architecture's rank.

    Ranks run from 1 (lowest score) to n, ties take the mean of their positions; the result
    is on the same 1..n scale, higher is better. A single vector gives its own ranks.
    """
    vectors = [np.asarray(score, dtype=np.float64) for score in scores]
    if not vectors:
        raise ValueError("rank_average needs at least one score vector")
    n = vectors[0].shape
    for vector in vectors:
        if vector.ndim != 1 or vector.shape != n:
            raise ValueError(f"every score vector must be 1-D with one length, got shapes "
                             f"{[v.shape for v in vectors]}")
        if not np.all(np.isfinite(vector)):
            raise ValueError("score vectors must be finite: drop or fix the architectures a ranker could not score")
    return np.mean([_scipy_stats.rankdata(vector) for vector in vectors], axis=0)


def pairwise_agreement(scores: Sequence[np.ndarray], truth: np.ndarray, block: int = 512) -> float:
    """The share of architecture pairs that a strict majority of ``scores`` order as ``truth`` does.

    Pairs tied in ``truth`` are left out; a ranker that ties a pair votes against it. With
    one ranker this is the share of concordant pairs, (1 + tau-a) / 2 when nothing is tied:
    Abdelfattah et al. (ICLR 2021) report their three-proxy vote as this share, and it is
    not on the scale of a rank correlation.
    """
    vectors = [np.asarray(score, dtype=np.float64) for score in scores]
    truth = np.asarray(truth, dtype=np.float64)
    if not vectors or any(vector.shape != truth.shape or vector.ndim != 1 for vector in vectors):
        raise ValueError("pairwise_agreement needs one or more score vectors of the truth's length")
    right = total = 0
    for start in range(0, truth.size, block):
        rows = slice(start, min(start + block, truth.size))
        later = np.arange(truth.size)[None, :] > np.arange(rows.start, rows.stop)[:, None]
        order = np.sign(truth[rows, None] - truth[None, :])
        counted = later & (order != 0)
        votes = sum((np.sign(vector[rows, None] - vector[None, :]) == order).astype(np.int32) for vector in vectors)
        right += int(np.count_nonzero(counted & (2 * votes > len(vectors))))
        total += int(np.count_nonzero(counted))
    return right / total if total else float("nan")


def combination_name(members: Sequence[str]) -> str:
    return SEPARATOR.join(members)


def _replicated_taus(vectors: Mapping[Any, np.ndarray], truth: np.ndarray, bootstrap: int,
                     seed: int) -> dict[Any, np.ndarray]:
    """Each vector's Kendall tau on ``bootstrap`` resamples of the architectures, one resample shared by all."""
    if not bootstrap:
        return {}
    rng = np.random.default_rng(seed)
    rows = max(1, _CHUNK_ELEMENTS // truth.size)
    parts: dict[Any, list[np.ndarray]] = {}
    for start in range(0, bootstrap, rows):
        counts = _resample_counts(rng, min(rows, bootstrap - start), truth.size)
        for key, vector in vectors.items():
            parts.setdefault(key, []).append(_tau_of_counts(vector, truth, counts))
    return {key: np.concatenate(values) for key, values in parts.items()}


def versus_baseline(rankers: Mapping[str, np.ndarray], truth: np.ndarray, baseline: str, *, bootstrap: int = 1000,
                    seed: int = 0, confidence: float = 0.95) -> list[dict[str, Any]]:
    """Each ranker's Kendall tau against ``baseline``'s on the same architectures (e.g. every proxy against
    ``params``, the naive proxy ZiCo's paper measures itself against).

    Per ranker: ``difference`` = tau - the baseline's tau, its paired-bootstrap interval (one
    resample of the architectures shared by both) and two-sided p-value, Holm-corrected over
    the rankers compared (``p_holm``).
    """
    if baseline not in rankers:
        raise ValueError(f"baseline {baseline!r} is not among the rankers {sorted(rankers)}")
    truth = np.asarray(truth, dtype=np.float64)
    vectors = {name: _validate(np.asarray(score, dtype=np.float64), truth, None)[0] for name, score in rankers.items()}
    point = {name: stats.kendall_tau(vector, truth) for name, vector in vectors.items()}
    replicated = _replicated_taus(vectors, truth, int(bootstrap), seed)
    rows = []
    for name in vectors:
        if name == baseline:
            continue
        difference = replicated[name] - replicated[baseline] if replicated else None
        low, high = (_percentile_interval(difference, confidence) if difference is not None
                     else (float("nan"), float("nan")))
        rows.append({"name": name, "kendall_tau": float(point[name]), "baseline": baseline,
                     "baseline_tau": float(point[baseline]), "difference": float(point[name] - point[baseline]),
                     "low": low, "high": high,
                     "p": _two_sided_p(difference) if difference is not None else float("nan")})
    for row, adjusted in zip(rows, stats.holm_bonferroni([row["p"] for row in rows]), strict=True):
        row["p_holm"] = adjusted
    return rows


def combination_study(rankers: Mapping[str, np.ndarray], truth: np.ndarray,
                      combinations: Sequence[Sequence[str]], *, bootstrap: int = 1000, seed: int = 0,
                      confidence: float = 0.95) -> dict[str, Any]:
    """Kendall tau of each ranker and of each rank-averaged combination of them, each combination
    tested against its best member.

    ``rankers`` maps a name to its scores over the architectures of ``truth`` (higher is
    better on both); each entry of ``combinations`` names 2 or more of them. Returns
    ``{"rankers": {name: {"kendall_tau", "low", "high"}}, "combinations": [{"name",
    "members", "kendall_tau", "low", "high", "best_member", "best_member_tau", "gain",
    "gain_low", "gain_high", "p", "p_holm"}], ...}`` with ``gain`` = tau of the combination
    - tau of its best member. Everything random comes from ``np.random.default_rng(seed)``;
    ``bootstrap=0`` leaves intervals and p-values nan.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if int(bootstrap) < 0:
        raise ValueError(f"bootstrap must be a non-negative number of resamples, got {bootstrap}")
    truth = np.asarray(truth, dtype=np.float64)
    vectors = {name: _validate(np.asarray(score, dtype=np.float64), truth, None)[0] for name, score in rankers.items()}
    combos: list[tuple[str, ...]] = []
    for members in combinations:
        members = tuple(members)
        unknown = [member for member in members if member not in vectors]
        if unknown:
            raise ValueError(f"combination {combination_name(members)!r} names unknown ranker(s) {unknown}; "
                             f"known: {sorted(vectors)}")
        if len(set(members)) < 2:
            raise ValueError(f"a combination needs 2 or more distinct rankers, got {list(members)}")
        combos.append(members)
    combined = {members: rank_average([vectors[m] for m in members]) for members in combos}
    point = {name: stats.kendall_tau(vector, truth) for name, vector in vectors.items()}
    point_combined = {members: stats.kendall_tau(vector, truth) for members, vector in combined.items()}

    replicated = _replicated_taus({**vectors, **combined}, truth, int(bootstrap), seed)

    def interval(values: np.ndarray | None) -> tuple[float, float]:
        return _percentile_interval(values, confidence) if values is not None else (float("nan"), float("nan"))

    out_rankers = {}
    for name in vectors:
        low, high = interval(replicated.get(name))
        out_rankers[name] = {"kendall_tau": float(point[name]), "low": low, "high": high}
    out_combos = []
    for members in combos:
        best = max(members, key=lambda member: point[member])
        low, high = interval(replicated.get(members))
        difference = replicated[members] - replicated[best] if bootstrap else None
        gain_low, gain_high = interval(difference)
        out_combos.append({"name": combination_name(members), "members": list(members),
                           "kendall_tau": float(point_combined[members]), "low": low, "high": high,
                           "best_member": best, "best_member_tau": float(point[best]),
                           "gain": float(point_combined[members] - point[best]),
                           "gain_low": gain_low, "gain_high": gain_high,
                           "p": _two_sided_p(difference) if difference is not None else float("nan")})
    for combo, adjusted in zip(out_combos, stats.holm_bonferroni([c["p"] for c in out_combos]), strict=True):
        combo["p_holm"] = adjusted
    return {"architectures": int(truth.size), "bootstrap": int(bootstrap), "seed": seed, "confidence": confidence,
            "rankers": out_rankers, "combinations": out_combos}


def combination_markdown(study: Mapping[str, Any], alpha: float = 0.05) -> str:
    """The study as a markdown table, combinations by descending tau."""
    resolution = f"< {1 / study['bootstrap']:.2g}" if study["bootstrap"] else "n/a"

    def p_text(value: float) -> str:
        if value != value:  # nan
            return "n/a"
        return resolution if value == 0.0 else f"{value:.3g}"

    lines = [f"Kendall tau on {study['architectures']} architectures; combination = mean of the members' ranks. "
             f"Gain = tau(combination) - tau(best member), paired bootstrap over the architectures "
             f"({study['bootstrap']} resamples, {study['confidence']:.0%} interval), p Holm-corrected over "
             f"{len(study['combinations'])} combinations.", "",
             "| combination | tau | best member (tau) | gain [interval] | p (Holm) | verdict |",
             "|---|---|---|---|---|---|"]
    for combo in sorted(study["combinations"], key=lambda c: -c["kendall_tau"]):
        significant = combo["p_holm"] == combo["p_holm"] and combo["p_holm"] <= alpha
        verdict = ("better than its best member" if significant and combo["gain"] > 0 else
                   "worse than its best member" if significant else "not separated")
        lines.append(f"| {combo['name']} | {combo['kendall_tau']:.3f} [{combo['low']:.3f}, {combo['high']:.3f}] | "
                     f"{combo['best_member']} ({combo['best_member_tau']:.3f}) | {combo['gain']:+.3f} "
                     f"[{combo['gain_low']:+.3f}, {combo['gain_high']:+.3f}] | {p_text(combo['p_holm'])} | {verdict} |")
    return "\n".join(lines) + "\n"
