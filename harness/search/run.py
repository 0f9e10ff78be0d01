"""One search run: (searcher, benchmark, budget, seed) -> trajectory."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from harness.search.benchmark import Benchmark
from harness.search.searcher import Searcher
from harness.space import Architecture


@dataclass(frozen=True)
class TrajectoryRow:
    """The state of a run after its ``query``-th query (1-based).

    ``incumbent_*`` describe the architecture with the best *validation* accuracy so far;
    its ``incumbent_test`` is what reports plot, so the test set never steers the search.
    """

    method: str
    seed: int
    query: int
    arch: str
    val_accuracy: float
    test_accuracy: float
    cost_seconds: float
    incumbent_arch: str
    incumbent_val: float
    incumbent_test: float
    elapsed_seconds: float


@dataclass
class RunRecord:
    """A finished (or interrupted) run and everything needed to log it."""

    method: str
    seed: int
    benchmark: str
    budget: int
    hyperparameters: dict[str, Any]
    rows: list[TrajectoryRow] = field(default_factory=list)

    @property
    def final(self) -> TrajectoryRow:
        return self.rows[-1]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [asdict(row) for row in self.rows]


def run_search(
    searcher: Searcher,
    benchmark: Benchmark,
    budget: int,
    on_row: Callable[[TrajectoryRow], None] | None = None,
    label: str | None = None,
) -> RunRecord:
    """Ask, query and tell ``budget`` times; the searcher sees only validation accuracy.

    ``label`` names the method in the record (default: the searcher's registered name).
    """
    if budget <= 0:
        raise ValueError(f"budget must be a positive number of queries, got {budget}")
    method = label or searcher.name
    record = RunRecord(
        method=method,
        seed=searcher.seed,
        benchmark=benchmark.name,
        budget=budget,
        hyperparameters=searcher.hyperparameters(),
    )
    start = time.perf_counter()
    incumbent: tuple[Architecture, float, float] | None = None
    for query in range(1, budget + 1):
        arch = searcher.ask()
        result = benchmark.query(arch)
        searcher.tell(arch, result)
        if incumbent is None or result.val_accuracy > incumbent[1]:
            incumbent = (arch, result.val_accuracy, result.test_accuracy)
        row = TrajectoryRow(
            method=method,
            seed=searcher.seed,
            query=query,
            arch=arch.to_string(),
            val_accuracy=result.val_accuracy,
            test_accuracy=result.test_accuracy,
            cost_seconds=result.cost_seconds,
            incumbent_arch=incumbent[0].to_string(),
            incumbent_val=incumbent[1],
            incumbent_test=incumbent[2],
            elapsed_seconds=time.perf_counter() - start,
        )
        record.rows.append(row)
        if on_row is not None:
            on_row(row)
    return record
