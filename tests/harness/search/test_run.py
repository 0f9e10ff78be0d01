"""One run's budgets: the query budget, the simulated-time budget (NAS-Bench-201's stop rule) and both;
a benchmark's per-run binding (``for_run``); and the refusal of a time budget a benchmark cannot charge."""

import math

import numpy as np
import pytest

from harness.errors import UserError
from harness.reporting.report import ReportMetadata, build_summary, format_table, render_report_md
from harness.search.benchmark import Result, TabularBenchmark, benchmark_for_run
from harness.search.run import STOP_QUERIES, STOP_TIME, check_time_budget, run_search
from harness.search.searcher import Searcher
from harness.space import NUM_ARCHITECTURES, Architecture

INDEX = np.arange(NUM_ARCHITECTURES)


def table(cost: np.ndarray | float | None = 10.0) -> TabularBenchmark:
    val = 50.0 + (INDEX * 7919 % 1000) / 100.0
    costs = None if cost is None else np.broadcast_to(np.asarray(cost, dtype=float), (NUM_ARCHITECTURES,)).copy()
    return TabularBenchmark("toy", val, val + 1.0, "toy valid", "toy test", cost_seconds=costs)


class Sweep(Searcher):
    """Asks cells 0, 1, 2, ... in order."""

    name = "sweep"

    def _ask(self) -> Architecture:
        return Architecture.from_index(len(self.history) + len(self._pending))


def test_the_query_that_would_cross_the_time_budget_is_not_made():
    searcher = Sweep(seed=0)
    record = run_search(searcher, table(10.0), None, time_budget=35.0)
    assert len(record.rows) == 3 and record.stop == STOP_TIME and record.complete
    assert [row.cumulative_cost_seconds for row in record.rows] == [10.0, 20.0, 30.0]
    assert [row.cost_seconds for row in record.rows] == [10.0, 10.0, 10.0]
    assert len(searcher.history) == 3  # the fourth query (40 s > 35 s) was neither told nor recorded


def test_a_query_that_lands_exactly_on_the_time_budget_counts():
    record = run_search(Sweep(seed=0), table(10.0), None, time_budget=30.0)
    assert len(record.rows) == 3 and record.final.cumulative_cost_seconds == 30.0


def test_query_and_time_budgets_together_stop_at_the_first_reached():
    by_queries = run_search(Sweep(seed=0), table(10.0), 2, time_budget=35.0)
    assert len(by_queries.rows) == 2 and by_queries.stop == STOP_QUERIES
    by_time = run_search(Sweep(seed=0), table(10.0), 10, time_budget=35.0)
    assert len(by_time.rows) == 3 and by_time.stop == STOP_TIME
    alone = run_search(Sweep(seed=0), table(10.0), 4)
    assert len(alone.rows) == 4 and alone.stop == STOP_QUERIES and alone.time_budget is None
    assert alone.final.cumulative_cost_seconds == 40.0  # charged even without a time budget


def test_varying_costs_follow_the_rule():
    costs = np.where(INDEX % 2 == 0, 7.0, 100.0)
    record = run_search(Sweep(seed=0), table(costs), None, time_budget=120.0)
    # 7 + 100 = 107 counts; + 7 = 114 counts; + 100 = 214 would cross: three queries
    assert [row.cumulative_cost_seconds for row in record.rows] == [7.0, 107.0, 114.0]


def test_a_run_needs_some_budget_and_known_positive_costs():
    with pytest.raises(ValueError, match="query budget, a time budget or both"):
        run_search(Sweep(seed=0), table(10.0), None)
    with pytest.raises(ValueError, match="positive number of seconds"):
        run_search(Sweep(seed=0), table(10.0), None, time_budget=-1.0)
    unknown = table(np.where(INDEX == 1, np.nan, 10.0))
    with pytest.raises(ValueError, match="known, positive costs"):
        run_search(Sweep(seed=0), unknown, None, time_budget=100.0)
    with pytest.raises(UserError, match="less than the first query's cost"):
        run_search(Sweep(seed=0), table(10.0), None, time_budget=5.0)


def test_time_budget_is_refused_in_one_line_on_a_benchmark_that_cannot_charge_it():
    for benchmark, fragment in [
        (table(None), "charges none"),
        (table(0.0), "charges none"),
        (table(np.where(INDEX < 3, np.nan, 10.0)), "no training time for 3 architectures"),
        (table(np.where(INDEX == 7, 0.0, 10.0)), "no training time for 1 architectures"),
    ]:
        with pytest.raises(UserError, match=fragment) as info:
            check_time_budget(benchmark, 100.0)
        assert "\n" not in str(info.value) and "--budget" in str(info.value)

    class Costless:
        name, reward_metric, report_metric = "costless", "r", "t"

        def query(self, arch):
            return Result(1.0, 1.0)

    with pytest.raises(UserError, match="has none"):
        check_time_budget(Costless())
    with pytest.raises(UserError, match="cheapest architecture"):
        check_time_budget(table(10.0), 9.0)
    check_time_budget(table(10.0), 10.0)


class Drawing(TabularBenchmark):
    """A benchmark whose answers are random: each run draws from a generator seeded by its seed."""

    def __init__(self) -> None:
        val = np.full(NUM_ARCHITECTURES, 50.0)
        super().__init__("drawing", val, val, "noisy", "clean", cost_seconds=np.full(NUM_ARCHITECTURES, 1.0))
        self.bound_to: int | None = None
        self.rng = np.random.default_rng(12345)

    def for_run(self, seed: int) -> "Drawing":
        bound = Drawing()
        bound.bound_to, bound.rng = seed, np.random.default_rng(seed)
        return bound

    def query(self, arch):
        return Result(float(self.rng.normal(50.0)), 50.0, 1.0)


def test_run_search_binds_a_random_benchmark_to_the_run_seed():
    benchmark = Drawing()
    assert benchmark_for_run(benchmark, 7).bound_to == 7
    assert benchmark_for_run(table(), 7) is not None  # no for_run: used as it is
    first = run_search(Sweep(seed=7), benchmark, 20)
    again = run_search(Sweep(seed=7), benchmark, 20)
    other = run_search(Sweep(seed=8), benchmark, 20)
    rewards = lambda record: [row.val_accuracy for row in record.rows]  # noqa: E731
    assert rewards(first) == rewards(again) != rewards(other)
    assert benchmark.bound_to is None  # the shared benchmark itself is not changed


def test_reports_say_which_budget_was_used():
    records = [run_search(Sweep(seed=s), table(10.0), None, time_budget=35.0) for s in (0, 1)]
    meta = ReportMetadata.from_benchmark(table(10.0), None, time_budget=35.0)
    summary = build_summary(records, meta)
    assert summary["budget"] is None and summary["time_budget_seconds"] == 35.0
    assert "a query whose cost would take the total past it is not counted" in summary["budget_rule"]
    assert summary["methods"]["sweep"]["n_runs"] == 2  # stopped by time: complete
    assert summary["methods"]["sweep"]["queries"] == [3, 3]
    assert summary["methods"]["sweep"]["total_cost_seconds"] == [30.0, 30.0]
    assert "35 s of simulated training time" in format_table(summary)
    assert "35 s of simulated training time per run" in render_report_md(summary)
    both = build_summary(records, ReportMetadata.from_benchmark(table(10.0), 50, time_budget=35.0))
    assert "at most 50 queries (whichever comes first)" in both["budget_rule"]
    plain = build_summary([run_search(Sweep(seed=0), table(10.0), 4)], ReportMetadata.from_benchmark(table(), 4))
    assert plain["time_budget_seconds"] is None and plain["budget_rule"] == "4 queries per run"
    assert math.isfinite(plain["methods"]["sweep"]["total_cost_seconds"][0])
