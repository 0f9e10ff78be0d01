"""One search run: (searcher, benchmark, budget, seed) -> trajectory.

A run spends a query budget (a number of queries), a time budget (the simulated training
time the benchmark charges, summed over the queries), or both, stopping at whichever is
reached first. The time rule is NAS-Bench-201's (``exps/NAS-Bench-201-algos/RANDOM.py``
and ``R_EA.py`` in D-X-Y/AutoDL-Projects): a query whose cost would take the total past
the time budget is not counted, not told to the searcher, not recorded, and ends the
run; a query that brings the total exactly to the budget counts.
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from harness.errors import SearcherFailed, UserError
from harness.search.benchmark import Benchmark, benchmark_for_run
from harness.search.searcher import Searcher
from harness.space import NUM_ARCHITECTURES, Architecture

#: Why a run ended (``RunRecord.stop``).
STOP_QUERIES, STOP_TIME = "queries", "time"


@dataclass(frozen=True)
class TrajectoryRow:
    """The state of a run after its ``query``-th query (1-based).

    ``incumbent_*`` describe the architecture with the best *validation* accuracy so far;
    its ``incumbent_test`` is what reports plot, so the test set never steers the search.
    ``cost_seconds`` is what this query was charged, ``cumulative_cost_seconds`` the total
    charged by the run so far (what a time budget is spent on; NaN once a cost was unknown).
    """

    method: str
    seed: int
    query: int
    arch: str
    val_accuracy: float
    test_accuracy: float
    cost_seconds: float
    cumulative_cost_seconds: float
    incumbent_arch: str
    incumbent_val: float
    incumbent_test: float
    elapsed_seconds: float


@dataclass
class RunRecord:
    """A finished (or interrupted) run and everything needed to log it.

    ``budget`` is the query budget (None: no cap on queries), ``time_budget`` the
    simulated-time budget in seconds (None: none); ``stop`` says which ended the run
    (``"queries"`` or ``"time"``; ``"finished"`` for a run known to have ended without
    knowing which; empty when not known to have ended, e.g. a run read back from a file).
    """

    method: str
    seed: int
    benchmark: str
    budget: int | None
    hyperparameters: dict[str, Any]
    rows: list[TrajectoryRow] = field(default_factory=list)
    time_budget: float | None = None
    stop: str = ""

    @property
    def final(self) -> TrajectoryRow:
        return self.rows[-1]

    @property
    def complete(self) -> bool:
        """Whether the run spent its budget: it stopped on one, or made all its budgeted queries."""
        if self.stop:
            return True
        if self.budget is None:
            return bool(self.rows)
        return len(self.rows) >= self.budget > 0

    def as_dicts(self) -> list[dict[str, Any]]:
        return [asdict(row) for row in self.rows]


def check_time_budget(benchmark: Benchmark, time_budget: float | None = None) -> None:
    """Refuse (``UserError``, one line) a time budget on a benchmark that cannot charge every query.

    The benchmark must have a ``cost_seconds`` array (one cost per architecture) whose
    costs are all known and positive: on one that charges nothing (the embedded table, a
    surrogate) a time budget would never end a run, and an architecture of unknown cost
    could not be charged. A ``time_budget`` below the cheapest architecture's cost is
    refused too (no run could make a query).
    """
    costs = getattr(benchmark, "cost_seconds", None)
    name = getattr(benchmark, "name", type(benchmark).__name__)
    advice = "use a query budget (--budget) instead"
    if not isinstance(costs, np.ndarray) or costs.size == 0:
        raise UserError(f"a time budget needs a benchmark that charges a training time per query; {name} "
                        f"has none; {advice}")
    known = np.isfinite(costs)
    if not np.any(known & (costs > 0)):
        raise UserError(f"a time budget needs simulated training times, but {name} charges none (all its "
                        f"costs are zero or unknown); {advice}")
    unknown = np.flatnonzero(~known | (costs <= 0))
    if unknown.size:
        example = Architecture.from_index(int(unknown[0])) if costs.shape == (NUM_ARCHITECTURES,) else unknown[0]
        raise UserError(f"{name} has no training time for {unknown.size} architectures (e.g. {example}), "
                        f"which a time budget cannot charge; {advice}")
    if time_budget is not None and time_budget < float(costs.min()):
        raise UserError(f"the time budget ({time_budget:g} s) is less than the cheapest architecture's cost on "
                        f"{name} ({float(costs.min()):g} s); no run could make a query")


def run_search(
    searcher: Searcher,
    benchmark: Benchmark,
    budget: int | None,
    on_row: Callable[[TrajectoryRow], None] | None = None,
    label: str | None = None,
    *,
    time_budget: float | None = None,
) -> RunRecord:
    """Ask, query and tell until the budget is spent; the searcher sees only validation accuracy.

    ``budget`` caps the number of queries, ``time_budget`` the simulated training time
    (seconds, the sum of the queries' ``cost_seconds``); give either or both, the first
    reached ends the run (the module docstring has the rule for the query that crosses the
    time budget). The benchmark is first bound to the run's seed (the searcher's,
    ``benchmark_for_run``). ``label`` names the method in the record (default: the
    searcher's registered name).
    """
    if budget is None and time_budget is None:
        raise ValueError("give a query budget, a time budget or both")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget <= 0):
        raise ValueError(f"budget must be a positive whole number of queries, got {budget!r}")
    if time_budget is not None and not (math.isfinite(time_budget) and time_budget > 0):
        raise ValueError(f"time_budget must be a positive number of seconds, got {time_budget}")
    method = label or searcher.name
    record = RunRecord(
        method=method,
        seed=searcher.seed,
        benchmark=benchmark.name,
        budget=budget,
        hyperparameters=searcher.hyperparameters(),
        time_budget=time_budget,
    )
    benchmark = benchmark_for_run(benchmark, searcher.seed)
    start = time.perf_counter()
    incumbent: tuple[Architecture, float, float] | None = None
    spent = 0.0
    query = 0
    while budget is None or query < budget:
        try:
            arch = searcher.ask()
        except Exception as exc:  # the searcher's code, often a plug-in's: say which run and where
            raise _failed(method, searcher.seed, query + 1, "ask", exc) from exc
        result = benchmark.query(arch)
        cost = float(result.cost_seconds)
        if time_budget is not None:
            if not (math.isfinite(cost) and cost > 0):
                raise ValueError(f"{benchmark.name} charged {cost} s for {arch}; a time budget needs known, "
                                 "positive costs (check_time_budget)")
            if spent + cost > time_budget:
                if query == 0:
                    raise UserError(f"the time budget ({time_budget:g} s) is less than the first query's cost "
                                    f"({cost:g} s, {arch}); the run could not query anything")
                record.stop = STOP_TIME
                break
        try:
            searcher.tell(arch, result)
        except Exception as exc:
            raise _failed(method, searcher.seed, query + 1, "tell", exc) from exc
        spent += cost
        query += 1
        if incumbent is None or result.val_accuracy > incumbent[1]:
            incumbent = (arch, result.val_accuracy, result.test_accuracy)
        row = TrajectoryRow(
            method=method,
            seed=searcher.seed,
            query=query,
            arch=arch.to_string(),
            val_accuracy=result.val_accuracy,
            test_accuracy=result.test_accuracy,
            cost_seconds=cost,
            cumulative_cost_seconds=spent,
            incumbent_arch=incumbent[0].to_string(),
            incumbent_val=incumbent[1],
            incumbent_test=incumbent[2],
            elapsed_seconds=time.perf_counter() - start,
        )
        record.rows.append(row)
        if on_row is not None:
            on_row(row)
    else:
        record.stop = STOP_QUERIES
    return record


def _failed(method: str, seed: int, query: int, call: str, exc: Exception) -> SearcherFailed:
    """One line: which run failed, in which call, with what, and the searcher's line that raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno}, in {frames[-1].name})" if frames else ""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return SearcherFailed(f"{method} (seed {seed}) failed in {call}() at query {query}: "
                          f"{type(exc).__name__}{': ' + detail if detail else ''}{where}")
