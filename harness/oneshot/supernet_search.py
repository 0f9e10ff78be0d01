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

from harness.errors import UserError
from harness.oneshot.data import Dataset
from harness.oneshot.scoring import ScoringConfig, SupernetBenchmark, SupernetScorer
from harness.search.run import RunRecord, run_search
from harness.search.searcher import Searcher, get_searcher, is_tabular, make_searcher, method_names


def restore_method(payload: dict[str, Any]) -> Searcher:
    """The one-shot method a checkpoint was trained with, in its saved state."""
    cls = get_searcher(payload["method"])
    method = cls(seed=int(payload["method_state"]["seed"]), **payload.get("method_kwargs", {}))
    method.load_state_dict(payload["method_state"])
    return method


def search_supernet(checkpoint: str | Path, dataset: Dataset, budget: int, scoring: ScoringConfig | None = None,
                    searcher: Searcher | None = None, reference=None,
                    label: str | None = None, on_row=None) -> tuple[RunRecord, dict[str, Any]]:
    """Run ``searcher`` (default: the checkpoint's own search stage) for ``budget`` supernet queries.

    ``label`` names the method in the record (default: the searcher's ``name``); ``on_row``
    is called after every query (a progress bar).
    """
    from harness.oneshot.scoring import supernet_from_checkpoint

    scoring = (scoring or ScoringConfig()).resolved()
    model, payload = supernet_from_checkpoint(checkpoint, dataset, device=scoring.device)
    method = searcher if searcher is not None else restore_method(payload)
    scorer = SupernetScorer(model, dataset, scoring)
    benchmark = SupernetBenchmark(scorer, f"supernet:{payload['method']}@{checkpoint}", reference)
    start = time.perf_counter()
    record = run_search(method, benchmark, budget, label=label, on_row=on_row)
    info = {
        "search_seconds": time.perf_counter() - start,
        "train_seconds": float(payload.get("elapsed_seconds", 0.0)),
        "train_cpu_seconds": float(payload.get("cpu_seconds", 0.0)),
        "epochs_trained": int(payload.get("epoch", 0)),
        "final_arch": record.final.incumbent_arch,
        "final_test_accuracy": record.final.incumbent_test,
        "final_test_accuracy_note": None if reference is not None else (
            f"not available: there is no accuracy table for {dataset.name} (the tables hold CIFAR-10 results); "
            f"train it with 'nas-harness standalone' to know it"),
        "reward_metric": benchmark.reward_metric,
        "report_metric": benchmark.report_metric,
    }
    return record, info


#: trajectories.csv columns of a search on a supernet, named by what they hold: the searcher's
#: reward is the supernet's score, the reported figure the reference table's test accuracy.
SUPERNET_SEARCH_COLUMNS = {"val_accuracy": "supernet_score", "incumbent_val": "incumbent_supernet_score",
                           "test_accuracy": "table_test_accuracy",
                           "incumbent_test": "incumbent_table_test_accuracy"}


def searcher_for(name: str, seed: int, budget: int | None = None) -> Searcher:
    """The black-box searcher ``name`` for a search on a trained supernet; a one-shot method is refused."""
    if not is_tabular(name):
        raise UserError(f"{name} is a one-shot method, not a searcher to run on a trained supernet; --searcher "
                        f"takes a black-box searcher ({', '.join(method_names(tabular=True))}, or "
                        f"path/to/file.py:ClassName or package.module:ClassName); without --searcher the supernet's own method searches it")
    return make_searcher(name, seed, budget=budget)  # a class that takes ``budget`` is given the search's
