"""Reports of a comparison: summary.json, trajectories.csv, report.md and a terminal table.

The figure reported for a run is the *test* figure of its validation-chosen incumbent
after the last query. Every report names the reward metric (what searchers optimised)
and the report metric (what is shown) and says plainly when they are the same number.
Files are written as each is complete; trajectories can be appended one run at a time
so an interrupted comparison keeps the runs it finished. One-shot runs (a supernet per
method and seed, ``harness.experiments.oneshot_compare``) get their own section and ``oneshot.csv``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from harness.evaluation import stats
from harness.jsonsafe import jsonable
from harness.search.run import RunRecord, TrajectoryRow

TRAJECTORY_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TrajectoryRow))
SUMMARY_FILE = "summary.json"
TRAJECTORIES_FILE = "trajectories.csv"
REPORT_FILE = "report.md"
ONESHOT_FILE = "oneshot.csv"
#: One row per one-shot run (``harness.experiments.oneshot_compare``); empty cells are figures not available.
ONESHOT_COLUMNS: tuple[str, ...] = (
    "method", "seed", "final_arch", "final_val", "final_test_accuracy", "kendall_tau", "kendall_tau_low",
    "kendall_tau_high", "train_seconds", "search_seconds", "cost_seconds", "search_queries", "epochs_trained",
    "supernet",
)

_SAME_FIGURE_SENTENCE = (
    "The reward and the reported metric are the same figure: searchers optimised the very "
    "number reported here, so these results measure how fast each method finds good cells on "
    "that number, not how well its choice generalises to held-out data."
)
_FITTED_ON_REPORT_SENTENCE = (
    "The reward is a prediction fitted on the reported figure itself: the surrogate was trained "
    "on the report metric of its training architectures, so the report is not held out (the "
    "search was steered by a model of the very number reported here); these results measure "
    "how well each method searches that model, not how its choice generalises to held-out data."
)
_DIFFERENT_FIGURES_SENTENCE = (
    "The reward and the reported metric are different figures: the test figure never steered the search."
)


@dataclass(frozen=True)
class ReportMetadata:
    """What a report states about the comparison besides the runs themselves.

    ``optimum`` is the best report-metric value in the table (the reference for regret;
    None when unknown); ``target`` the figure for queries-to-target (None: not computed).
    ``reward_is_report_metric`` defaults to whether the two metric names are equal;
    ``reward_fitted_on_report_metric`` says that the reward, though another figure, is a
    prediction fitted on the reported one (a surrogate of a table whose reward is its report).
    ``budget`` is the query budget per run (None: no cap), ``time_budget`` the simulated
    training time per run in seconds (None: none), ``cost_metric`` what a query's cost is
    (when the benchmark says).
    """

    benchmark: str
    reward_metric: str
    report_metric: str
    budget: int | None
    optimum: float | None = None
    target: float | None = None
    reward_is_report_metric: bool | None = None
    time_budget: float | None = None
    cost_metric: str | None = None
    reward_fitted_on_report_metric: bool = False

    def __post_init__(self) -> None:
        if self.reward_is_report_metric is None:
            object.__setattr__(self, "reward_is_report_metric", self.reward_metric == self.report_metric)

    @classmethod
    def from_benchmark(cls, benchmark: Any, budget: int | None, target: float | None = None,
                       time_budget: float | None = None) -> ReportMetadata:
        """Read name, metrics, optimum and cost metric from a benchmark (``test_optimum``, ``cost_metric``).

        The reward counts as the reported figure when the metric names match or, for a
        table, when its validation and test columns hold identical numbers; a benchmark's
        ``fitted_on_report_metric`` (``surrogates.learned.SurrogateBenchmark``) says that its
        reward is a model fitted on the reported figure.
        """
        same = benchmark.reward_metric == benchmark.report_metric
        val = getattr(benchmark, "val_accuracy", None)
        test = getattr(benchmark, "test_accuracy", None)
        if isinstance(val, np.ndarray) and isinstance(test, np.ndarray):
            same = same or bool(val is test or np.array_equal(val, test))
        optimum = getattr(benchmark, "test_optimum", None)
        return cls(
            benchmark=benchmark.name,
            reward_metric=benchmark.reward_metric,
            report_metric=benchmark.report_metric,
            budget=None if budget is None else int(budget),
            optimum=None if optimum is None else float(optimum),
            target=None if target is None else float(target),
            reward_is_report_metric=same,
            time_budget=None if time_budget is None else float(time_budget),
            cost_metric=getattr(benchmark, "cost_metric", None),
            reward_fitted_on_report_metric=bool(getattr(benchmark, "fitted_on_report_metric", False)),
        )

    @property
    def budget_text(self) -> str:
        """The budget of each run in words, including the rule for the query that crosses a time budget."""
        return describe_budget(self.budget, self.time_budget)


def describe_budget(budget: int | None, time_budget: float | None) -> str:
    """A run's budget in words (``ReportMetadata.budget_text``; also in summary.json as ``budget_rule``)."""
    if time_budget is None:
        return f"{budget} queries per run"
    rule = (f"{time_budget:g} s of simulated training time per run (the sum of the queries' costs; a query "
            "whose cost would take the total past it is not counted and ends the run, as in NAS-Bench-201's "
            "own searches)")
    return rule if budget is None else f"{rule}, and at most {budget} queries (whichever comes first)"


# -- summary ------------------------------------------------------------------------------
def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def group_runs(records: Iterable[RunRecord]) -> dict[str, list[RunRecord]]:
    """Runs per method (order of first appearance), each list ordered by seed.

    Raises ValueError on two runs of one method with the same seed.
    """
    groups: dict[str, list[RunRecord]] = {}
    for record in records:
        runs = groups.setdefault(record.method, [])
        if any(r.seed == record.seed for r in runs):
            raise ValueError(f"two runs of method {record.method!r} with seed {record.seed}")
        runs.append(record)
    return {method: sorted(runs, key=lambda r: r.seed) for method, runs in groups.items()}


def is_complete(record: RunRecord) -> bool:
    """Whether a run spent its whole budget (interrupted runs are left out of statistics; ``RunRecord.complete``)."""
    return record.complete


def build_summary(
    records: Iterable[RunRecord],
    metadata: ReportMetadata,
    *,
    n_boot: int = stats.DEFAULT_N_BOOT,
    confidence: float = stats.DEFAULT_CONFIDENCE,
    seed: int = 0,
    interrupted: bool = False,
    specs: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The content of summary.json: metadata, per-method statistics and pairwise tests.

    Statistics use the complete runs only; the seeds of incomplete runs are listed.
    ``interrupted`` records that the comparison was stopped before every run was done.
    ``specs`` maps a method's shown name to the name it was run by (``module:Class``,
    ``file.py:Class``), recorded per method as ``spec`` (default: the shown name).
    """
    groups = group_runs(records)
    optimum = metadata.optimum
    methods: dict[str, Any] = {}
    finals: dict[str, list[float]] = {}
    for method, runs in groups.items():
        complete = [r for r in runs if is_complete(r)]
        final = [r.final.incumbent_test for r in complete]
        values = np.asarray(final, dtype=np.float64)
        n = values.size
        mean = float(values.mean()) if n else math.nan
        # One run has no spread: its interval would be a single point, so it is not given.
        low, high = (stats.bootstrap_mean_ci(values, n_boot=n_boot, confidence=confidence, seed=seed) if n >= 2
                     else (math.nan, math.nan))
        target = None
        if metadata.target is not None:
            target = stats.summarise_queries_to_target(
                [[row.incumbent_test for row in r.rows] for r in complete], metadata.target
            ).as_dict()
        methods[method] = {
            "n_runs": n,
            "seeds": [r.seed for r in complete],
            "final_incumbent_test": final,
            "final_incumbent_val": [r.final.incumbent_val for r in complete],
            "final_incumbent_arch": [r.final.incumbent_arch for r in complete],
            "queries": [len(r.rows) for r in complete],
            "total_cost_seconds": [r.final.cumulative_cost_seconds for r in complete],
            "mean": mean,
            "std": float(values.std(ddof=1)) if n >= 2 else math.nan,
            "ci_low": low,
            "ci_high": high,
            "median": float(np.median(values)) if n else math.nan,
            "regret_mean": (optimum - mean) if optimum is not None else math.nan,
            "queries_to_target": target,
            "incomplete_seeds": [r.seed for r in runs if not is_complete(r)],
            "hyperparameters": dict(runs[0].hyperparameters) if runs else {},
            "spec": (specs or {}).get(method, method),
        }
        if n:
            finals[method] = final
    summary = {
        "benchmark": metadata.benchmark,
        "reward_metric": metadata.reward_metric,
        "report_metric": metadata.report_metric,
        "reward_is_report_metric": bool(metadata.reward_is_report_metric),
        "reward_fitted_on_report_metric": bool(metadata.reward_fitted_on_report_metric),
        "optimum": metadata.optimum,
        "budget": metadata.budget,
        "time_budget_seconds": metadata.time_budget,
        "budget_rule": metadata.budget_text,
        "cost_metric": metadata.cost_metric,
        "target": metadata.target,
        "interrupted": bool(interrupted),
        "reported_figure": "test figure of the validation-chosen incumbent after the last query",
        "confidence": confidence,
        "n_boot": int(n_boot),
        "bootstrap_seed": int(seed),
        "std_definition": "sample standard deviation (ddof=1) over seeds",
        "pairwise_test": "two-sided Mann-Whitney U on final incumbent test figures, Holm-Bonferroni over all pairs",
        "methods": methods,
        "pairwise": [c.as_dict() for c in stats.pairwise_tests(finals)],
    }
    return jsonable(summary)


def _write_text_atomic(path: Path, text: str) -> Path:
    """Write through a temporary file so an interrupted write never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_summary_json(summary: Mapping[str, Any], path: str | Path) -> Path:
    """Write summary.json (nan written as null)."""
    return _write_text_atomic(Path(path), json.dumps(jsonable(summary), indent=2) + "\n")


# -- trajectories.csv -------------------------------------------------------------------------
def _write_rows(handle: Any, records: Iterable[RunRecord], header: bool,
                rename: Mapping[str, str] | None = None) -> None:
    writer = csv.writer(handle)
    if header:
        writer.writerow([(rename or {}).get(name, name) for name in TRAJECTORY_COLUMNS])
    for record in records:
        for row in record.rows:
            writer.writerow([getattr(row, name) for name in TRAJECTORY_COLUMNS])


def write_trajectories_csv(records: Iterable[RunRecord], path: str | Path,
                           rename: Mapping[str, str] | None = None) -> Path:
    """Write every trajectory row of every run (columns: ``TRAJECTORY_COLUMNS``), replacing the file.

    ``rename`` gives some columns a header that says what they hold in this file (e.g. a
    supernet search's ``val_accuracy`` is the supernet score).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        _write_rows(handle, records, header=True, rename=rename)
    os.replace(tmp, path)
    return path


def append_trajectories_csv(record: RunRecord, path: str | Path) -> Path:
    """Append one run's rows, writing the header first if the file is new or empty, and flush.

    Flushed rows survive the process being interrupted; see ``TrajectoryWriter`` to start a
    fresh file for a new comparison rather than extend an old one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="", encoding="utf-8") as handle:
        _write_rows(handle, [record], header=header)
    return path


class TrajectoryWriter:
    """trajectories.csv written one finished run at a time, so an interrupted comparison keeps them.

    Creating a writer replaces any file left at ``path`` by an earlier comparison with just
    the header, unless ``keep_existing`` (a resumed comparison); each ``append`` adds one
    run's rows and closes the file again.
    """

    def __init__(self, path: str | Path, keep_existing: bool = False) -> None:
        self.path = Path(path)
        self.runs = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if keep_existing and self.path.exists() and self.path.stat().st_size > 0:
            return  # a resumed comparison: its finished runs stay, new ones are appended
        with open(self.path, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerow(TRAJECTORY_COLUMNS)

    def append(self, record: RunRecord) -> None:
        append_trajectories_csv(record, self.path)
        self.runs += 1


class OneShotWriter:
    """oneshot.csv written one finished one-shot run at a time (columns ``ONESHOT_COLUMNS``).

    Like ``TrajectoryWriter``, creating one starts the file afresh with just the header.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerow(ONESHOT_COLUMNS)

    def append(self, row: Mapping[str, Any]) -> None:
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerow(["" if row.get(name) is None else row[name] for name in ONESHOT_COLUMNS])


def read_trajectories_csv(
    path: str | Path, benchmark: str = "", budget: int | None = None
) -> list[RunRecord]:
    """Rebuild runs from trajectories.csv (hyper-parameters are not stored there: empty).

    ``budget`` defaults to each run's number of rows, i.e. every run read counts as complete.
    """
    numeric = {f.name: f.type for f in fields(TrajectoryRow)}
    runs: dict[tuple[str, int], list[TrajectoryRow]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for raw in csv.DictReader(handle):
            values: dict[str, Any] = {}
            for name in TRAJECTORY_COLUMNS:
                kind = numeric[name]
                text = raw[name] if name != "cumulative_cost_seconds" else raw.get(name) or "nan"  # older files
                values[name] = (
                    int(text) if kind in ("int", int) else float(text) if kind in ("float", float) else text
                )
            row = TrajectoryRow(**values)
            runs.setdefault((row.method, row.seed), []).append(row)
    return [
        RunRecord(
            method=method,
            seed=seed,
            benchmark=benchmark,
            budget=budget if budget is not None else len(rows),
            hyperparameters={},
            rows=sorted(rows, key=lambda r: r.query),
        )
        for (method, seed), rows in runs.items()
    ]


# -- human-readable output ----------------------------------------------------------------------
def _decimals(summary: Mapping[str, Any]) -> int:
    """2 decimals for figures in percent, 4 for fractions of one."""
    scale = [abs(summary.get("optimum") or 0.0)]
    scale += [abs(m["mean"]) for m in summary["methods"].values() if m.get("mean") is not None]
    return 2 if max(scale, default=0.0) > 1.5 else 4


def _num(value: float | None, decimals: int) -> str:
    return "-" if value is None else f"{value:.{decimals}f}"


#: What the std and CI cells of a method with a single run say.
NOT_AVAILABLE = "n/a"


def _ci(method: Mapping[str, Any], decimals: int) -> str:
    if method["ci_low"] is None:
        return NOT_AVAILABLE if method["n_runs"] == 1 else "-"
    return f"[{method['ci_low']:.{decimals}f}, {method['ci_high']:.{decimals}f}]"


def _spread_note(summary: Mapping[str, Any]) -> str | None:
    """Why some methods show no std or CI (a single run has no spread), or None."""
    single = [name for name, m in summary["methods"].items() if m["n_runs"] == 1]
    if not single:
        return None
    return f"std and CI are n/a for {', '.join(single)}: one run has no spread (they need at least 2 seeds)"


def _target_cells(method: Mapping[str, Any]) -> tuple[str, str]:
    target = method.get("queries_to_target")
    if not target or not target["n_runs"]:
        return ("-", "-")
    median = target["median_queries"]
    median_text = "never" if median is None else f"{median:g}"
    return (median_text, f"{target['fraction_reached']:.0%}")


def _method_rows(summary: Mapping[str, Any]) -> list[list[str]]:
    d = _decimals(summary)
    rows = []
    for name, m in summary["methods"].items():
        median_q, reached = _target_cells(m)
        rows.append(
            [
                name,
                str(m["n_runs"]),
                _num(m["mean"], d),
                NOT_AVAILABLE if m["std"] is None and m["n_runs"] == 1 else _num(m["std"], d),
                _ci(m, d),
                _num(m["median"], d),
                _num(m["regret_mean"], d),
                median_q,
                reached,
            ]
        )
    return rows


def _method_header(summary: Mapping[str, Any]) -> list[str]:
    ci = f"{summary['confidence']:.0%} CI"
    target = summary.get("target")
    to_target = f"queries to {target:g}" if target is not None else "queries to target"
    return ["method", "runs", "mean", "std", ci, "median", "mean regret", to_target, "reached"]


def _short_budget(summary: Mapping[str, Any]) -> str:
    seconds = summary.get("time_budget_seconds")
    if seconds is None:
        return f"{summary['budget']} queries"
    cap = "" if summary.get("budget") is None else f", at most {summary['budget']} queries"
    return f"{seconds:g} s of simulated training time{cap}"


def format_table(summary: Mapping[str, Any]) -> str:
    """A plain-text table of the methods' final incumbent test figures, for the terminal."""
    out = [
        f"{summary['benchmark']}: final incumbent test figure over seeds "
        f"(budget {_short_budget(summary)})",
        *_plain_table(_method_header(summary), _method_rows(summary)),
    ]
    spread = _spread_note(summary)
    if spread:
        out.append(f"note: {spread}")
    if summary.get("reward_is_report_metric"):
        out.append("note: reward and reported metric are the same figure")
    elif summary.get("reward_fitted_on_report_metric"):
        out.append("note: the reward is a prediction fitted on the reported figure itself, so the report is not "
                   "held out from the search")
    return "\n".join(out) + "\n"


def _plain_table(header: Sequence[str], rows: Sequence[Sequence[str]], left_last: bool = False) -> list[str]:
    """Lines of a terminal table: first column (and with ``left_last`` the last) left-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        aligned = [cell.rjust(width) for cell, width in zip(cells, widths, strict=True)]
        aligned[0] = cells[0].ljust(widths[0])
        if left_last:
            aligned[-1] = cells[-1]
        return "  ".join(aligned).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def esc(cell: str) -> str:
        return str(cell).replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return lines


def _p(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2e}" if value < 1e-3 else f"{value:.4f}"


def render_report_md(summary: Mapping[str, Any], plots: Mapping[str, str] | None = None) -> str:
    """report.md: metrics stated up front, methods table, pairwise tests, plot links.

    ``plots`` maps a plot's name to its path relative to the report.
    """
    d = _decimals(summary)
    lines = [
        f"# NAS benchmark report: {summary['benchmark']}",
        "",
        f"- **Benchmark:** `{summary['benchmark']}`",
        f"- **Reward metric** (the only figure searchers see, as validation accuracy): {summary['reward_metric']}",
        f"- **Report metric** (shown below, as test accuracy): {summary['report_metric']}",
    ]
    if summary.get("reward_is_report_metric"):
        lines.append(f"- **{_SAME_FIGURE_SENTENCE}**")
    elif summary.get("reward_fitted_on_report_metric"):
        lines.append(f"- **{_FITTED_ON_REPORT_SENTENCE}**")
    else:
        lines.append(f"- {_DIFFERENT_FIGURES_SENTENCE}")
    if summary.get("interrupted"):
        lines.append("- **Interrupted:** the comparison was stopped early; only finished runs are reported.")
    if not summary["methods"] and summary.get("oneshot"):
        lines += ["", "No tabular methods were run."]
        return "\n".join([*lines, "", *_oneshot_md(summary["oneshot"])]).rstrip() + "\n"
    optimum = summary.get("optimum")
    lines += [
        f"- **Budget:** {summary.get('budget_rule') or describe_budget(summary['budget'], None)}",
        *([f"- **Cost of a query:** {summary['cost_metric']}"] if summary.get("cost_metric") else []),
        f"- **Table optimum** (reference for regret): {_num(optimum, d)}",
        f"- **Target** for queries-to-target: {'-' if summary.get('target') is None else summary['target']}",
        "",
        "## Final incumbent test figure",
        "",
        f"Reported figure: the {summary['reported_figure']}. Mean and {summary['std_definition']}; "
        f"{summary['confidence']:.0%} CI of the mean by percentile bootstrap "
        f"({summary['n_boot']} resamples, seed {summary['bootstrap_seed']}); regret = optimum - mean. "
        "Queries to target: median over all seeds, a seed that never reached it counting as "
        'infinitely many ("never" when half or more missed); "reached" is the share of seeds '
        "that reached it.",
        "",
        *_md_table(_method_header(summary), _method_rows(summary)),
    ]
    spread = _spread_note(summary)
    if spread:
        lines += ["", f"{spread[0].upper()}{spread[1:]}."]
    given = {name: m["spec"] for name, m in summary["methods"].items() if m.get("spec", name) != name}
    if given:
        lines += ["", "Methods shown by their class's name were run as: "
                  + "; ".join(f"{name} = `{spec}`" for name, spec in given.items()) + "."]
    incomplete = {
        name: m["incomplete_seeds"] for name, m in summary["methods"].items() if m["incomplete_seeds"]
    }
    if incomplete:
        listed = "; ".join(
            f"{name}: seeds {', '.join(map(str, seeds))}" for name, seeds in incomplete.items()
        )
        lines += ["", f"Incomplete runs, left out of the statistics: {listed}."]
    lines += ["", "## Pairwise tests", ""]
    if summary["pairwise"]:
        lines += [
            f"{summary['pairwise_test'][0].upper()}{summary['pairwise_test'][1:]}. Cliff's delta = P(A > B) - P(A < B).",
            "",
            *_md_table(
                ["A", "B", "mean A - B", "Cliff's delta", "U", "p", "p (Holm)"],
                [
                    [
                        c["method_a"],
                        c["method_b"],
                        _num(c["mean_difference"], d),
                        _num(c["cliffs_delta"], 3),
                        "-" if c["u_statistic"] is None else f"{c['u_statistic']:g}",
                        _p(c["p_value"]),
                        _p(c["p_holm"]),
                    ]
                    for c in summary["pairwise"]
                ],
            ),
        ]
    else:
        lines.append("Fewer than two methods with complete runs: no tests.")
    if summary.get("oneshot"):
        lines += ["", *_oneshot_md(summary["oneshot"])]
    if plots:
        lines += ["", "## Plots", ""]
        for name, rel in plots.items():
            lines += [f"[{name}]({rel})", "", f"![{name}]({rel})", ""]
    return "\n".join(lines).rstrip() + "\n"


# -- one-shot methods ---------------------------------------------------------------------------
def summarise_oneshot(rows: Sequence[Mapping[str, Any]], setup: Mapping[str, Any]) -> dict[str, Any]:
    """The one-shot section of summary.json: what was measured (``setup``), every run, per-method means."""
    methods: dict[str, Any] = {}
    for name in dict.fromkeys(row["method"] for row in rows):
        runs = [row for row in rows if row["method"] == name]

        def mean(key: str, runs: list = runs) -> float | None:
            values = [row[key] for row in runs if row.get(key) is not None]
            return float(np.mean(values)) if values else None

        methods[name] = {
            "n_runs": len(runs),
            "seeds": [row["seed"] for row in runs],
            "mean_test_accuracy": mean("final_test_accuracy"),
            "mean_kendall_tau": mean("kendall_tau"),
            "mean_cost_seconds": mean("cost_seconds"),
        }
    return jsonable({**setup, "runs": [dict(row) for row in rows], "methods": methods})


_ONESHOT_HEADER = ("method", "seed", "test", "Kendall tau", "train s", "search s", "cost s", "final architecture")


def _oneshot_rows(oneshot: Mapping[str, Any]) -> list[list[str]]:
    return [
        [row["method"], str(row["seed"]), _num(row["final_test_accuracy"], 2), _num(row["kendall_tau"], 3),
         f"{row['train_seconds']:.1f}", f"{row['search_seconds']:.1f}", f"{row['cost_seconds']:.1f}",
         row["final_arch"]]
        for row in oneshot["runs"]
    ]


def _tau_text(oneshot: Mapping[str, Any]) -> str:
    tau = oneshot["tau"]
    if not tau.get("ground_truth"):
        return tau["note"]
    return (f"over {tau['architectures']} architectures (seeded sample, seed {tau['sample_seed']}) against "
            f"{tau['ground_truth']}")


def _oneshot_notes(oneshot: Mapping[str, Any]) -> list[str]:
    return [f"test: {oneshot['report_metric']}", f"Kendall tau: {_tau_text(oneshot)}", f"cost: {oneshot['cost']}"]


def format_oneshot_table(oneshot: Mapping[str, Any]) -> str:
    """A plain-text table of the one-shot runs, with what each column measures."""
    out = [f"one-shot methods on {oneshot['dataset']}: {oneshot['search']}",
           *_plain_table(_ONESHOT_HEADER, _oneshot_rows(oneshot), left_last=True),
           *(f"note: {note}" for note in _oneshot_notes(oneshot))]
    return "\n".join(out) + "\n"


def _supernet_text(supernet: Any) -> str:
    if not isinstance(supernet, Mapping):
        return str(supernet)
    steps = supernet.get("steps_per_epoch")
    epochs = supernet["epochs"]
    return (f"C={supernet['C']}, N={supernet['N']}, {epochs} epoch{'s' if epochs != 1 else ''}"
            f"{f' of at most {steps} steps' if steps else ''}, batch {supernet['batch_size']}, "
            f"lr {supernet['lr']} cosine to {supernet['lr_min']} (all settings in summary.json)")


def _oneshot_md(oneshot: Mapping[str, Any]) -> list[str]:
    tau = oneshot["tau"]
    lines = [
        "## One-shot methods",
        "",
        f"- **Dataset:** {oneshot['dataset']}",
        f"- **Supernet:** {_supernet_text(oneshot['supernet'])}",
        f"- **Search:** {oneshot['search']}; reward: {oneshot['reward_metric']}",
        f"- **Test figure of the final architecture:** {oneshot['report_metric']}",
        f"- **Kendall tau:** {_tau_text(oneshot)}",
        f"- **Cost:** {oneshot['cost']}",
        "",
    ]
    if not oneshot["runs"]:
        return [*lines, "No one-shot run finished."]
    rows = _oneshot_rows(oneshot)
    if tau.get("ground_truth"):
        for row, run in zip(rows, oneshot["runs"], strict=True):
            if run.get("kendall_tau_low") is not None:
                row[3] += f" [{run['kendall_tau_low']:.3f}, {run['kendall_tau_high']:.3f}]"
        lines += ["Kendall tau with its 95% bootstrap interval over the sampled architectures.", ""]
    lines += _md_table(_ONESHOT_HEADER, [[*row[:-1], f"`{row[-1]}`"] for row in rows])
    if any(m["n_runs"] > 1 for m in oneshot["methods"].values()):
        lines += ["", *_md_table(["method", "runs", "mean test", "mean Kendall tau", "mean cost s"], [
            [name, str(m["n_runs"]), _num(m["mean_test_accuracy"], 2), _num(m["mean_kendall_tau"], 3),
             _num(m["mean_cost_seconds"], 1)] for name, m in oneshot["methods"].items()])]
    return lines


def write_report_md(
    summary: Mapping[str, Any], path: str | Path, plots: Mapping[str, str | Path] | None = None
) -> Path:
    """Write report.md; plot paths are linked relative to the report's folder."""
    path = Path(path)
    relative = {
        name: Path(os.path.relpath(Path(p).resolve(), path.parent.resolve())).as_posix()
        for name, p in (plots or {}).items()
    }
    return _write_text_atomic(path, render_report_md(summary, relative))


# -- everything at once ---------------------------------------------------------------------------
@dataclass
class ReportFiles:
    """Paths of what ``write_report`` wrote, and the summary it wrote them from."""

    summary: dict[str, Any]
    summary_json: Path
    trajectories_csv: Path | None
    report_md: Path
    plots: dict[str, Path] = field(default_factory=dict)

    def all_paths(self) -> list[Path]:
        paths = [self.summary_json, self.report_md, *self.plots.values()]
        return paths + ([self.trajectories_csv] if self.trajectories_csv else [])


def write_report(
    records: Sequence[RunRecord],
    metadata: ReportMetadata,
    out_dir: str | Path,
    *,
    write_trajectories: bool = True,
    make_plots: bool = True,
    n_boot: int = stats.DEFAULT_N_BOOT,
    confidence: float = stats.DEFAULT_CONFIDENCE,
    seed: int = 0,
    interrupted: bool = False,
    oneshot: Mapping[str, Any] | None = None,
    specs: Mapping[str, str] | None = None,
) -> ReportFiles:
    """Write trajectories.csv, summary.json, the plots and report.md into ``out_dir``, in that order.

    Pass ``write_trajectories=False`` when trajectories.csv was appended run by run already
    (``TrajectoryWriter``), ``interrupted=True`` when the comparison was stopped early,
    ``oneshot`` (``summarise_oneshot``) to add the one-shot methods' section, and ``specs``
    (shown name -> the name a method was run by; ``build_summary``).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trajectories = (
        write_trajectories_csv(records, out_dir / TRAJECTORIES_FILE) if write_trajectories else None
    )
    summary = build_summary(
        records, metadata, n_boot=n_boot, confidence=confidence, seed=seed, interrupted=interrupted, specs=specs
    )
    if oneshot is not None:
        summary["oneshot"] = jsonable(oneshot)
    summary_json = write_summary_json(summary, out_dir / SUMMARY_FILE)
    plots: dict[str, Path] = {}
    if make_plots and any(r.rows for r in records):
        from harness.reporting.plots import write_plots

        plots = write_plots(records, metadata, out_dir)
    report_md = write_report_md(summary, out_dir / REPORT_FILE, plots)
    if trajectories is None and (out_dir / TRAJECTORIES_FILE).exists():
        trajectories = out_dir / TRAJECTORIES_FILE
    return ReportFiles(summary, summary_json, trajectories, report_md, plots)
