"""Run a grid of (method, seed) searches, in a process pool when asked, yielding runs as they finish.

Each run depends only on (method, hyper-parameters, seed, benchmark, budget), never on
which worker ran it or in which order, so any ``workers`` gives identical trajectories.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from harness.execution.executors import ExecutionSettings, map_unordered
from harness.search.benchmark_specs import resolve_benchmark
from harness.search.run import RunRecord, run_search
from harness.search.searcher import make_searcher, takes_budget


@dataclass(frozen=True)
class RunSpec:
    """One run. ``method`` is what resolves the searcher (a name, ``module:Class`` or
    ``file.py:Class``); ``label`` is how the run's record names it (default: ``method``).
    ``budget`` caps the queries (None: no cap), ``time_budget`` the simulated training time
    in seconds (``run_search``)."""

    method: str
    seed: int
    benchmark: str
    budget: int | None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    time_budget: float | None = None


def execute(spec: RunSpec) -> RunRecord:
    """Run one search in this process; a searcher that takes ``budget`` is given ``spec.budget``."""
    searcher = make_searcher(spec.method, spec.seed, spec.hyperparameters, budget=spec.budget)
    record = run_search(searcher, resolve_benchmark(spec.benchmark), spec.budget, label=spec.label or spec.method,
                        time_budget=spec.time_budget)
    if takes_budget(type(searcher)):  # logged with the hyper-parameters, unless the searcher reports it
        record.hyperparameters = {"budget": spec.budget, **record.hyperparameters}
    return record


def _execute_task(_context: None, spec: RunSpec) -> RunRecord:
    return execute(spec)


def iter_grid(specs: list[RunSpec], workers: int = 1,
              execution: ExecutionSettings | None = None) -> Iterator[tuple[RunSpec, RunRecord]]:
    """Yield (spec, record) for every spec as runs complete, on ``execution`` (default: ``workers``
    local processes, single-threaded; ``harness.execution.executors``).

    Closing the generator early (e.g. on KeyboardInterrupt in the consumer) stops the runs
    not yet finished. No more workers are started than there are runs.
    """
    execution = execution or ExecutionSettings(workers=max(1, min(workers, len(specs) or 1)))
    if execution.executor == "local" and execution.workers > 1:
        # Warm the benchmark cache here, so forked workers inherit the loaded tables.
        for name in {s.benchmark for s in specs}:
            resolve_benchmark(name)
    for index, record in map_unordered(_execute_task, specs, execution):
        yield specs[index], record
