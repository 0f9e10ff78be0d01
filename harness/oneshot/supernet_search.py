"""Search a trained supernet: a one-shot method's own search stage, or any black-box searcher.

The supernet becomes a ``SupernetBenchmark`` (reward: supernet score on valid images after
BN recalibration; report: the reference table's test accuracy when there is one), and the
searcher runs against it through the ordinary run loop, so its trajectory is a normal
``RunRecord``. With ``searcher=None`` the checkpoint's own method is restored (its
training state included: GreedyNAS' pool, DARTS' architecture weights) and its search
stage runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from harness.oneshot.data import Dataset
from harness.oneshot.scoring import ScoringConfig, SupernetBenchmark, SupernetScorer
from harness.search.run import RunRecord, run_search
from harness.search.searcher import Searcher, get_searcher


def restore_method(payload: dict[str, Any]) -> Searcher:
    """The one-shot method a checkpoint was trained with, in its saved state."""
    cls = get_searcher(payload["method"])
    method = cls(seed=int(payload["method_state"]["seed"]), **payload.get("method_kwargs", {}))
    method.load_state_dict(payload["method_state"])
    return method


def search_supernet(checkpoint: str | Path, dataset: Dataset, budget: int, scoring: ScoringConfig | None = None,
                    searcher: Searcher | None = None, reference=None) -> tuple[RunRecord, dict[str, Any]]:
    """Run ``searcher`` (default: the checkpoint's own search stage) for ``budget`` supernet queries."""
    from harness.oneshot.scoring import supernet_from_checkpoint

    model, payload = supernet_from_checkpoint(checkpoint, dataset)
    method = searcher if searcher is not None else restore_method(payload)
    scorer = SupernetScorer(model, dataset, scoring or ScoringConfig())
    benchmark = SupernetBenchmark(scorer, f"supernet:{payload['method']}@{checkpoint}", reference)
    start = time.perf_counter()
    record = run_search(method, benchmark, budget)
    info = {
        "search_seconds": time.perf_counter() - start,
        "train_seconds": float(payload.get("elapsed_seconds", 0.0)),
        "train_cpu_seconds": float(payload.get("cpu_seconds", 0.0)),
        "epochs_trained": int(payload.get("epoch", 0)),
        "final_arch": record.final.incumbent_arch,
        "final_test_accuracy": record.final.incumbent_test,
        "reward_metric": benchmark.reward_metric,
        "report_metric": benchmark.report_metric,
    }
    return record, info


def searcher_for(name: str, seed: int) -> Searcher:
    return get_searcher(name)(seed=seed)
