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

import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import RunFailed, UserError
from harness.experiments.oneshot_compare import OneShotComparison, OneShotSettings, plan_oneshot
from harness.search.benchmark_specs import DEFAULT_BENCHMARK, resolve_benchmark
from harness.search.grid import RunSpec, iter_grid
from harness.search.run import RunRecord
from harness.search.searcher import SEARCHERS, get_searcher, is_tabular, method_names


@dataclass
class CompareSettings:
    """What ``run_compare`` runs; the defaults are those of ``nas-harness compare``."""

    #: Method names (None: every tabular method).
    methods: list[str] | None = None
    seeds: list[int] = field(default_factory=lambda: list(range(20)))
    budget: int = 150
    benchmark: str = DEFAULT_BENCHMARK
    workers: int = 2
    target: float | None = None
    out_dir: Path = Path("results/runs/compare")
    tracking_uri: str | None = None
    mlflow: bool = True
    progress: bool = True
    hyperparameters: dict[str, dict] = field(default_factory=dict)
    #: Data and settings of the one-shot methods; they run only when the data is there.
    oneshot: OneShotSettings = field(default_factory=OneShotSettings)


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


def run_compare(settings: CompareSettings) -> CompareOutcome:
    from harness.reporting import report
    from harness.reporting.tracking import make_tracker

    methods_given = bool(settings.methods)
    methods, oneshot_methods = split_methods(settings.methods) if methods_given else (default_methods(), [])
    benchmark = resolve_benchmark(settings.benchmark)
    out = Path(settings.out_dir)
    plan = plan_oneshot(settings.oneshot, oneshot_methods, methods_given, settings.seeds[0], out,
                        settings.hyperparameters)
    optimum = float(benchmark.test_optimum) if hasattr(benchmark, "test_optimum") else None
    target = settings.target if settings.target is not None else (optimum - 0.5 if optimum else None)
    specs = [
        RunSpec(method, seed, settings.benchmark, settings.budget, settings.hyperparameters.get(method, {}))
        for method in methods
        for seed in settings.seeds
    ]
    out.mkdir(parents=True, exist_ok=True)
    meta = report.ReportMetadata.from_benchmark(benchmark, settings.budget, target)
    tracker = make_tracker(settings.tracking_uri, enabled=settings.mlflow)
    all_methods = methods + list(dict.fromkeys(run.method for run in plan.runs) if plan else [])
    tracker.start_parent(
        f"compare {benchmark.name}",
        {"methods": ",".join(all_methods), "seeds": len(settings.seeds),
         "first_seed": settings.seeds[0], "budget": settings.budget, "benchmark": settings.benchmark,
         "workers": settings.workers, "reward_metric": benchmark.reward_metric,
         "report_metric": benchmark.report_metric,
         **({"oneshot_dataset": plan.dataset, "oneshot_runs": len(plan.runs)} if plan else {})},
    )
    writer = report.TrajectoryWriter(out / "trajectories.csv")
    records: list[RunRecord] = []
    interrupted = False
    progress = _progress(len(specs), settings.progress)
    try:
        if specs:
            for spec, record in iter_grid(specs, workers=settings.workers):
                records.append(record)
                writer.append(record)
                tracker.log_child_run(record, {"benchmark": settings.benchmark, "budget": settings.budget})
                progress.update(1)
                progress.set_postfix_str(f"{spec.method} seed {spec.seed}: {record.final.incumbent_test:.2f}")
    except KeyboardInterrupt:
        interrupted = True
        print(f"\ninterrupted: keeping {len(records)} finished run(s) of {len(specs)}", file=sys.stderr)
    finally:
        progress.close()
    records.sort(key=lambda r: (methods.index(r.method), r.seed))
    oneshot_rows: list[dict] = []
    summary, oneshot_summary, failure = {}, None, None
    if plan is not None and not interrupted:
        oneshot_rows, oneshot_summary, interrupted, failure = _run_oneshot(plan, benchmark, out, tracker,
                                                                           settings.progress)
    if records or oneshot_summary is not None:
        files = report.write_report(records, meta, out, write_trajectories=False, interrupted=interrupted,
                                    oneshot=oneshot_summary)
        summary = files.summary
        paths = files.all_paths()
        if records:
            print(report.format_table(summary))
        if oneshot_summary is not None:
            print(report.format_oneshot_table(summary["oneshot"]))
            if (out / report.ONESHOT_FILE).exists():
                paths.append(out / report.ONESHOT_FILE)
        print(f"\nwritten: {', '.join(str(p) for p in paths)}")
        tracker.log_artifacts(paths)
    tracker.end("KILLED" if interrupted else "FAILED" if failure else "FINISHED")
    if failure is not None:
        raise failure
    return CompareOutcome(records, summary, interrupted, oneshot_rows)


def _run_oneshot(plan, benchmark, out: Path, tracker, progress: bool):
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
        for row in comparison:
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
