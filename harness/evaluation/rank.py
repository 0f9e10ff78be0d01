"""``nas-harness rank``: how well trained supernets rank architectures against stand-alone accuracy.

Every checkpoint scores the same architectures (a seeded sample, all 15,625, or the 6,466
non-isomorphic ones) with inherited weights (``harness.oneshot.scoring``); the ground truth is the
embedded CIFAR-10 table's accuracy or a stand-alone results file. Results are written per
checkpoint as they complete.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import UserError
from harness.evaluation import stats
from harness.oneshot.data import Dataset
from harness.oneshot.scoring import FIGURES, ScoringConfig, SupernetScorer, supernet_from_checkpoint
from harness.search.benchmark_specs import reference_table
from harness.space import (
    NUM_ARCHITECTURES,
    Architecture,
    all_architectures,
    parse_architecture,
    unique_architectures,
)


def select_architectures(mode: str, n: int, seed: int) -> list[Architecture]:
    """'sample' (n distinct, seeded, sorted by ``Architecture.index``), 'all' (15,625) or 'unique' (6,466)."""
    if mode == "all":
        return list(all_architectures())
    if mode == "unique":
        return list(unique_architectures())
    if not 1 <= n <= NUM_ARCHITECTURES:
        raise UserError(f"--archs must be in 1..{NUM_ARCHITECTURES}, got {n}")
    indices = np.sort(np.random.default_rng(seed).choice(NUM_ARCHITECTURES, size=n, replace=False))
    return [Architecture.from_index(int(i)) for i in indices]


@dataclass
class GroundTruth:
    """Stand-alone accuracy per architecture, and where it comes from."""

    values: dict[Architecture, float]
    source: str
    chance: float

    def lookup(self, archs: list[Architecture]) -> np.ndarray:
        missing = [a for a in archs if a not in self.values]
        if missing:
            raise UserError(f"{self.source} has no accuracy for {len(missing)} of the {len(archs)} architectures "
                            f"(e.g. {missing[0].to_string()}); rank only those it covers")
        return np.array([self.values[a] for a in archs], dtype=float)


def ground_truth_for(dataset: Dataset, path: Path | None) -> GroundTruth:
    """The table's accuracy for CIFAR-10 or a stand-alone results file (required for other datasets)."""
    chance = 100.0 / dataset.num_classes
    if path is not None:
        from harness.evaluation.ranking import read_ground_truth

        values = {parse_architecture(text): float(acc) for text, acc in read_ground_truth(path).items()}
        return GroundTruth(values, f"stand-alone results {path}", chance)
    table = reference_table(dataset.name)
    if table is None:
        raise UserError(f"there is no accuracy table for {dataset.name}; pass --ground-truth FILE "
                        f"(a results file written by 'nas-harness standalone')")
    values = {arch: float(table.test_accuracy[arch.index]) for arch in all_architectures()}
    return GroundTruth(values, f"{table.name} ({table.report_metric})", chance)


def rank_checkpoint(path: Path, dataset: Dataset, archs: list[Architecture], truth: np.ndarray,
                    scoring: ScoringConfig, out_dir: Path, meta: dict[str, Any], progress: bool = True,
                    bootstrap: int = 1000, weights: str = "average") -> dict[str, Any]:
    """Score ``archs`` with one checkpoint and write ``out_dir``/ranking.{csv,json,png}; returns the metrics."""
    from harness.evaluation.ranking import degenerate_mask, ranking_metrics, write_ranking

    model, payload = supernet_from_checkpoint(path, dataset, weights)
    scorer = SupernetScorer(model, dataset, scoring)
    bar = None
    if progress:
        import sys

        from tqdm import tqdm

        bar = tqdm(total=len(archs), desc=f"rank {payload['method']}", unit="arch", file=sys.stderr, leave=False)
    start = time.perf_counter()
    try:
        scores = scorer.score_many(archs, progress=(lambda _: bar.update(1)) if bar is not None else None)
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    degenerate = degenerate_mask(truth, chance=meta.get("chance", 10.0))
    ranked_by = scoring.ranking_score(scores)
    metrics = ranking_metrics(ranked_by, truth, degenerate=degenerate, bootstrap=bootstrap, seed=0)
    full_meta = {
        **meta,
        "checkpoint": str(path),
        "method": payload["method"],
        "epochs_trained": int(payload.get("epoch", 0)),
        "train_config": payload["config"],
        "scored_weights": payload["scored_weights"],
        "architectures": len(archs),
        "scoring": {"calibration_images": scoring.calibration_images, "eval_images": scoring.eval_images,
                    "recalibrate_batchnorm": scoring.recalibrate, "seed": scoring.seed,
                    "score": scoring.score, "score_meaning": ScoringConfig.SCORES[scoring.score],
                    "precision": scoring.precision},
        "scoring_seconds": seconds,
        "seconds_per_architecture": seconds / max(len(archs), 1),
        "degenerate_architectures": int(degenerate.sum()),
        **{f"supernet_{name}": scores[:, i].tolist() for i, name in enumerate(FIGURES)},
        # the point tau of every score on these same images (the metrics above are for scoring.score)
        "kendall_tau_by_score": {name: stats.kendall_tau(dataclasses.replace(scoring, score=name)
                                                         .ranking_score(scores), truth)
                                 for name in ScoringConfig.SCORES},
    }
    write_ranking(out_dir, [a.to_string() for a in archs], ranked_by, truth, metrics, full_meta)
    return metrics
