"""`nas-harness compare`: a grid of methods x seeds on one benchmark, reported and tracked.

Results are written as runs complete: each finished run is appended to
``trajectories.csv`` and logged to MLflow at once, so Ctrl-C loses only unfinished runs;
the summary, report and plots are then written for whatever finished.

When a dataset is available the one-shot methods run too, after the tabular ones
(``harness.experiments.oneshot_compare``: a supernet per method and seed, its own search stage, Kendall
tau), each finished run appended to ``oneshot.csv``. Without data one line on stderr says
how to provide it and the tabular methods run as before.
"""

from __future__ import annotations

import math
import numbers
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import RunFailed, UserError
from harness.execution.executors import ExecutionSettings, check_ray_available
from harness.experiments.oneshot_compare import OneShotComparison, OneShotSettings, plan_oneshot
from harness.outputs import check_output_dir
from harness.search.benchmark_specs import DEFAULT_BENCHMARK, resolve_benchmark
from harness.search.grid import RunSpec, iter_grid
from harness.search.run import RunRecord, check_time_budget
from harness.search.searcher import (
    SEARCHERS,
    get_searcher,
    is_tabular,
    make_searcher,
    method_label,
    method_names,
)


@dataclass
class CompareSettings:
    """What ``run_compare`` runs; the defaults are those of ``nas-harness compare``."""

    #: Method names (None: every tabular method).
    methods: list[str] | None = None
    seeds: list[int] = field(default_factory=lambda: list(range(20)))
    #: Queries per run. With ``time_budget`` it still caps the queries; None: no cap (time budget only).
    budget: int | None = 150
    #: Simulated training time per run in seconds (``harness.search.run``: the query that would cross it is
    #: not made); only on a benchmark whose every architecture has a known, positive cost.
    time_budget: float | None = None
    benchmark: str = DEFAULT_BENCHMARK
    workers: int = 2
    #: Where the runs go: "local" (processes on this machine) or "ray" (``harness.execution``).
    executor: str = "local"
    #: A running Ray cluster (None: $RAY_ADDRESS, else a local Ray instance with ``workers`` CPUs).
    ray_address: str | None = None
    target: float | None = None
    out_dir: Path = Path("results/runs/compare")
    tracking_uri: str | None = None
    mlflow: bool = True
    progress: bool = True
    hyperparameters: dict[str, dict] = field(default_factory=dict)
    #: Data and settings of the one-shot methods; they run only when the data is there.
    oneshot: OneShotSettings = field(default_factory=OneShotSettings)
    #: Start over instead of resuming the runs ``out_dir`` already holds.
    restart: bool = False

    def __post_init__(self) -> None:
        """Refuse settings that would fail (or mislead) only after runs were made."""
        if isinstance(self.methods, str) or (self.methods is not None and not all(
                isinstance(name, str) and name for name in self.methods)):
            raise UserError(f"methods must be a list of method names, got {self.methods!r}")
        seeds = list(self.seeds) if isinstance(self.seeds, (list, tuple, range)) else None
        if not seeds or not all(_whole(seed) and seed >= 0 for seed in seeds):
            raise UserError(f"seeds must be a non-empty list of non-negative integers, got {self.seeds!r}")
        if len(set(seeds)) != len(seeds):
            raise UserError(f"a seed is given twice in {seeds}")
        self.seeds = [int(seed) for seed in seeds]
        if self.budget is not None and not (_whole(self.budget) and self.budget > 0):
            raise UserError(f"budget must be a positive number of queries (or None with a time budget), "
                            f"got {self.budget!r}")
        if not (_whole(self.workers) and self.workers > 0):
            raise UserError(f"workers must be a positive integer, got {self.workers!r}")
        if self.target is not None and not (isinstance(self.target, (int, float)) and math.isfinite(self.target)):
            raise UserError(f"target must be a finite number, got {self.target!r}")
        if self.target is not None and not 0 <= self.target <= 100:  # accuracies: % (or fractions of one)
            raise UserError(f"target {self.target:g} is not an accuracy: give a figure in 0..100 (default: the "
                            f"benchmark's optimum - 0.5)")


def _whole(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass
class CompareOutcome:
    records: list[RunRecord]
    summary: dict
    interrupted: bool
    oneshot_rows: list[dict] = field(default_factory=list)


def default_methods() -> list[str]:
    """Every declared or registered method that can run on a table."""
    return method_names(tabular=True)


def split_methods(methods: list[str]) -> tuple[list[str], list[str]]:
    """(tabular methods, one-shot methods) of a method list, in its order."""
    one_shot = method_names(tabular=False)
    tabular, oneshot = [], []
    for name in methods:
        if name in SEARCHERS.names():
            named_tabular = is_tabular(name)
        else:
            named_tabular = getattr(get_searcher(name), "tabular", True)
        if named_tabular:
            tabular.append(name)
        elif name in one_shot:
            oneshot.append(name)
        else:
            raise UserError(f"method {name!r} needs a supernet; compare trains the declared one-shot methods "
                            f"only ({', '.join(one_shot)})")
    if len(set(methods)) != len(methods):
        raise UserError(f"a method is named twice in {methods}")
    return tabular, oneshot


def method_labels(methods: list[str]) -> dict[str, str]:
    """How each method is shown in tables, files and MLflow (``method_label``), by the name it was given.

    Two methods shown alike, or a plug-in class calling itself by another method's name, are refused.
    """
    labels: dict[str, str] = {}
    for name in methods:
        label = method_label(name)
        if label != name and label in SEARCHERS.names() and get_searcher(label) is not get_searcher(name):
            raise UserError(f"{name} calls itself {label!r} (its name attribute), the name of another method; "
                            "give the class another name")
        same = [other for other, shown in labels.items() if shown == label]
        if same:
            raise UserError(f"{same[0]} and {name} would both be shown as {label!r}; give one of the classes "
                            "another name attribute")
        labels[name] = label
    return labels


def check_hyperparameters(hyperparameters: dict[str, dict], methods: list[str], seed: int, budget: int) -> None:
    """Refuse, before any run, hyper-parameters for a method not in the comparison, and tabular methods
    whose constructor refuses theirs (each is built once, with the run's budget when it takes one).

    Declared methods given no hyper-parameters are not built here (that would import each
    one in this process): they cannot conflict, and build as they were declared.
    """
    stray = [name for name in hyperparameters if name not in methods]
    if stray:
        raise UserError(f"--hp for {', '.join(map(repr, stray))}, not a method of this comparison "
                        f"(methods: {', '.join(methods)})")
    for name in methods:
        if is_tabular(name) and (name in hyperparameters or name not in SEARCHERS.names()):
            make_searcher(name, seed, hyperparameters.get(name, {}), budget=budget)


def run_compare(settings: CompareSettings) -> CompareOutcome:
    """Run every (method, seed), write the report, log to MLflow; resume what ``out_dir`` already holds.

    Finished runs are kept on disk as they complete; running the same comparison again runs
    only the missing ones (``restart`` starts over). A user mistake raises ``UserError``
    before any run starts.
    """
    from harness.experiments import compare_state
    from harness.reporting import report
    from harness.reporting.tracking import make_tracker

    out = check_output_dir(settings.out_dir)
    execution = execution_for(settings)
    methods_given = bool(settings.methods)
    methods, oneshot_methods = split_methods(settings.methods) if methods_given else (default_methods(), [])
    labels = method_labels(methods)
    check_hyperparameters(settings.hyperparameters,
                          methods + (oneshot_methods if methods_given else method_names(tabular=False)),
                          settings.seeds[0], settings.budget)
    benchmark = resolve_benchmark(settings.benchmark)
    if settings.time_budget is not None:  # refused before any run on a benchmark that cannot charge it
        check_time_budget(benchmark, settings.time_budget)
    elif settings.budget is None:
        raise UserError("give a query budget, a time budget or both")
    plan = plan_oneshot(settings.oneshot, oneshot_methods, methods_given, settings.seeds[0], out,
                        settings.hyperparameters, restart=settings.restart)
    optimum = float(benchmark.test_optimum) if hasattr(benchmark, "test_optimum") else None
    target = settings.target if settings.target is not None else (optimum - 0.5 if optimum else None)
    run_settings = run_defining_settings(settings, methods)
    wanted = [(method, seed) for method in methods for seed in settings.seeds]
    # Runs are recorded (trajectories.csv, runs.jsonl, MLflow) under their method's label.
    kept = (compare_state.KeptRuns() if settings.restart else
            compare_state.load_kept_runs(out, run_settings, [(labels[method], seed) for method, seed in wanted]))
    specs = [
        RunSpec(method, seed, settings.benchmark, settings.budget, settings.hyperparameters.get(method, {}),
                label=labels[method], time_budget=settings.time_budget)
        for method, seed in wanted if (labels[method], seed) not in kept.records
    ]
    if kept.records:
        print(f"resuming: {len(kept.records)} of {len(wanted)} runs already finished in {out}", file=sys.stderr)
    if kept.others:
        print(f"note: {kept.others} other finished run(s) in {out} (methods or seeds not asked for this time) stay "
              f"in its trajectories.csv but are not in this report", file=sys.stderr)
    for record in kept.records.values():  # finished runs (runs.jsonl), whichever budget ended them
        record.time_budget, record.stop = settings.time_budget, record.stop or "finished"
    meta = report.ReportMetadata.from_benchmark(benchmark, settings.budget, target, time_budget=settings.time_budget)
    tracker = make_tracker(settings.tracking_uri, enabled=settings.mlflow)
    logged: set[tuple[str, int]] = set()
    if kept.parent_run_id and kept.tracking_uri == tracker.uri and tracker.parent_exists(kept.parent_run_id):
        tracker.resume_parent(kept.parent_run_id)
        logged = tracker.logged_children()
    else:
        all_methods = methods + list(dict.fromkeys(run.method for run in plan.runs) if plan else [])
        tracker.start_parent(
            f"compare {benchmark.name}",
            {"methods": ",".join(all_methods), "seeds": len(settings.seeds),
             "first_seed": settings.seeds[0], "budget": settings.budget, "time_budget": settings.time_budget,
             "benchmark": settings.benchmark, "workers": settings.workers,
             "executor": execution.describe(), "reward_metric": benchmark.reward_metric,
             "report_metric": benchmark.report_metric,
             **({"oneshot_dataset": plan.dataset, "oneshot_runs": len(plan.runs)} if plan else {})},
        )
    if settings.restart:  # only now that every setting has been checked
        compare_state.restart(out)
    out.mkdir(parents=True, exist_ok=True)
    if tracker.parent_run_id is not None:  # a run without MLflow leaves the earlier parent recorded
        compare_state.save_state(out, run_settings, tracker.parent_run_id, tracker.uri, kept.settings)
    else:
        compare_state.save_state(out, run_settings, kept.parent_run_id, kept.tracking_uri, kept.settings)
    child_params = {"benchmark": settings.benchmark, "budget": settings.budget, "time_budget": settings.time_budget}
    spec_of = {label: method for method, label in labels.items()}  # how each label's method was named
    for key, record in kept.records.items():
        if key not in logged:  # finished before, but never logged to this parent
            tracker.log_child_run(record, {**child_params, "method_spec": spec_of[record.method]})
    writer = report.TrajectoryWriter(out / "trajectories.csv", keep_existing=True)
    records: list[RunRecord] = list(kept.records.values())
    interrupted, failure = False, None
    progress = _progress(len(specs), settings.progress)
    try:
        if specs:
            for spec, record in iter_grid(specs, execution=execution):
                records.append(record)
                writer.append(record)
                compare_state.mark_finished(out, record)
                tracker.log_child_run(record, {**child_params, "method_spec": spec.method})
                progress.update(1)
                progress.set_postfix_str(f"{spec.label} seed {spec.seed}: {record.final.incumbent_test:.2f}")
    except KeyboardInterrupt:
        interrupted = True
        print(f"\ninterrupted: keeping {len(records)} finished run(s) of {len(wanted)}; the same command "
              f"resumes the rest", file=sys.stderr)
    except RunFailed as exc:  # a run failed (a searcher's error): keep and report what finished, then say why
        failure = exc
        print(f"\nstopped: keeping {len(records)} finished run(s) of {len(wanted)}", file=sys.stderr)
    finally:
        progress.close()
    order = [labels[method] for method in methods]
    records.sort(key=lambda r: (order.index(r.method), r.seed))
    oneshot_rows: list[dict] = []
    summary, oneshot_summary = {}, None
    if plan is not None and not interrupted and failure is None:
        oneshot_rows, oneshot_summary, interrupted, failure = _run_oneshot(
            plan, benchmark, out, tracker, settings.progress, execution, settings.benchmark)
    if records or oneshot_summary is not None:
        files = report.write_report(records, meta, out, write_trajectories=False, interrupted=interrupted,
                                    oneshot=oneshot_summary, specs=spec_of)
        summary = files.summary
        paths = files.all_paths()
        if records:
            print(report.format_table(summary))
        if oneshot_summary is not None:
            print(report.format_oneshot_table(summary["oneshot"]))
            if (out / report.ONESHOT_FILE).exists():
                paths.append(out / report.ONESHOT_FILE)
        print(f"\nwritten: {', '.join(str(p) for p in paths)}")
        tracker.log_metrics(summary_metrics(summary))
        tracker.log_artifacts(paths)
    if tracker.enabled and tracker.parent_run_id is not None:
        print(f"MLflow: run {tracker.parent_run_id} in {tracker.uri} (experiment {tracker.experiment}); "
              f"browse it with: nas-harness ui --tracking-uri {tracker.uri}")
    tracker.end("KILLED" if interrupted else "FAILED" if failure else "FINISHED")
    if failure is not None:
        raise failure
    return CompareOutcome(records, summary, interrupted, oneshot_rows)


def execution_for(settings: CompareSettings) -> ExecutionSettings:
    """Where the tabular runs go. Locally at most one process per CPU of this machine (more only
    cost memory); on Ray, ``workers`` actors wherever the cluster has room."""
    workers = settings.workers
    if settings.executor == "local":
        cpus = os.cpu_count() or 1
        if workers > cpus:
            print(f"--workers {workers}: this machine has {cpus} CPU(s); using {cpus} processes", file=sys.stderr)
        workers = min(workers, cpus)
    execution = ExecutionSettings(settings.executor, workers=workers, address=settings.ray_address)
    if execution.executor == "ray":
        check_ray_available()
    return execution


def run_defining_settings(settings: CompareSettings, methods: list[str]) -> dict:
    """The settings besides method and seed that decide a run's result: kept runs must share them."""
    return {"benchmark": settings.benchmark, "budget": settings.budget, "time_budget": settings.time_budget,
            "hyperparameters": {method: dict(settings.hyperparameters.get(method, {})) for method in methods}}


def summary_metrics(summary: dict) -> dict[str, float]:
    """Each method's final figure (mean, std, CI, median) and queries to target, for the MLflow parent run."""
    metrics: dict[str, float] = {}
    for method, entry in summary.get("methods", {}).items():
        for key in ("mean", "std", "ci_low", "ci_high", "median", "regret_mean"):
            value = entry.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                metrics[f"{method}.final_{key}"] = float(value)
        target = entry.get("queries_to_target") or {}
        if isinstance(target.get("median_queries"), (int, float)):
            metrics[f"{method}.median_queries_to_target"] = float(target["median_queries"])
        if isinstance(target.get("fraction_reached"), (int, float)) and math.isfinite(target["fraction_reached"]):
            metrics[f"{method}.fraction_reached_target"] = float(target["fraction_reached"])
        metrics[f"{method}.runs"] = float(entry.get("n_runs", 0))
    return metrics


def _run_oneshot(plan, benchmark, out: Path, tracker, progress: bool, execution: ExecutionSettings | None = None,
                 benchmark_spec: str | None = None):
    """Run the one-shot plan, appending each row to oneshot.csv and MLflow as it finishes.

    Returns (rows, summary section or None, interrupted, failure): a user error or failed
    run stops the phase but is raised only after the report of what finished is written.
    """
    from harness.reporting import report

    rows: list[dict] = []
    interrupted, failure = False, None
    bars = progress and sys.stderr.isatty()  # as for the tabular runs: bars on a terminal only
    comparison = OneShotComparison(plan, reference=benchmark, progress=bars)
    try:
        comparison.prepare()
        writer = report.OneShotWriter(out / report.ONESHOT_FILE)
        for row in comparison.run_all(execution, benchmark_spec):
            rows.append(row)
            writer.append(row)
            tracker.log_metrics(_oneshot_metrics(row), step=int(row["seed"]))
            if progress:
                print(f"one-shot {row['method']} seed {row['seed']}: cost {row['cost_seconds']:.1f} s, "
                      f"Kendall tau {_figure(row['kendall_tau'])}", file=sys.stderr)
    except KeyboardInterrupt:
        interrupted = True
        print(f"\ninterrupted: keeping {len(rows)} finished one-shot run(s) of {len(plan.runs)}; "
              f"supernet checkpoints stay in {out / 'oneshot'}, the same command continues them", file=sys.stderr)
    except (UserError, RunFailed) as exc:
        failure = exc
    order = {(run.method, run.seed): i for i, run in enumerate(plan.runs)}
    rows.sort(key=lambda row: order.get((row["method"], row["seed"]), len(order)))  # plan order, however they finished
    summary = report.summarise_oneshot(rows, comparison.setup) if comparison.setup is not None else None
    return rows, summary, interrupted, failure


def _oneshot_metrics(row: dict) -> dict[str, float]:
    """MLflow metrics of one one-shot run on the comparison's run (step = seed); missing figures left out."""
    keys = ("final_test_accuracy", "kendall_tau", "cost_seconds", "train_seconds", "search_seconds")
    return {f"oneshot.{row['method']}.{key}": float(row[key]) for key in keys if row.get(key) is not None}


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    # On a terminal only: a log file gets the summary, not hundreds of bar redraws.
    return tqdm(total=total, desc="runs", unit="run", file=sys.stderr,
                disable=not (enabled and sys.stderr.isatty()), mininterval=0.2)
