"""`nas-harness compare`: a grid of methods x seeds on one benchmark, reported and tracked.

Results are written as runs complete: each finished run is appended to
``trajectories.csv`` and logged to MLflow at once, so Ctrl-C loses only unfinished runs;
the summary, report and plots are then written for whatever finished.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from harness.benchmarks import resolve_benchmark
from harness.errors import UserError
from harness.grid import RunSpec, iter_grid
from harness.run import RunRecord
from harness.searcher import SEARCHERS, get_searcher


@dataclass
class CompareSettings:
    methods: list[str] | None
    seeds: list[int]
    budget: int
    benchmark: str
    workers: int = 2
    target: float | None = None
    out_dir: Path = Path("results/runs/compare")
    tracking_uri: str | None = None
    mlflow: bool = True
    progress: bool = True
    hyperparameters: dict[str, dict] = field(default_factory=dict)


@dataclass
class CompareOutcome:
    records: list[RunRecord]
    summary: dict
    interrupted: bool


def default_methods() -> list[str]:
    """Every registered built-in that can run on a table."""
    get_searcher("random_search")  # imports the built-ins
    return [name for name in SEARCHERS if SEARCHERS.attribute(name, "tabular", True)]


def validate_methods(methods: list[str]) -> list[str]:
    get_searcher("random_search")  # imports the built-ins
    for name in methods:
        if name in SEARCHERS:
            tabular = SEARCHERS.attribute(name, "tabular", True)
        else:
            tabular = getattr(get_searcher(name), "tabular", True)
        if not tabular:
            raise UserError(f"method {name!r} needs a supernet and cannot run on a table")
    if len(set(methods)) != len(methods):
        raise UserError(f"a method is named twice in {methods}")
    return methods


def run_compare(settings: CompareSettings) -> CompareOutcome:
    from harness import report
    from harness.tracking import make_tracker

    methods = validate_methods(settings.methods or default_methods())
    benchmark = resolve_benchmark(settings.benchmark)
    optimum = float(benchmark.test_optimum) if hasattr(benchmark, "test_optimum") else None
    target = settings.target if settings.target is not None else (optimum - 0.5 if optimum else None)
    specs = [
        RunSpec(method, seed, settings.benchmark, settings.budget, settings.hyperparameters.get(method, {}))
        for method in methods
        for seed in settings.seeds
    ]
    out = Path(settings.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    meta = report.ReportMetadata.from_benchmark(benchmark, settings.budget, target)
    tracker = make_tracker(settings.tracking_uri, enabled=settings.mlflow)
    tracker.start_parent(
        f"compare {benchmark.name}",
        {"methods": ",".join(methods), "seeds": len(settings.seeds), "first_seed": settings.seeds[0],
         "budget": settings.budget, "benchmark": settings.benchmark, "workers": settings.workers,
         "reward_metric": benchmark.reward_metric, "report_metric": benchmark.report_metric},
    )
    writer = report.TrajectoryWriter(out / "trajectories.csv")
    records: list[RunRecord] = []
    interrupted = False
    progress = _progress(len(specs), settings.progress)
    try:
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
    summary = {}
    if records:
        files = report.write_report(records, meta, out, write_trajectories=False, interrupted=interrupted)
        summary = files.summary
        print(report.format_table(summary))
        print(f"\nwritten: {', '.join(str(p) for p in files.all_paths())}")
        tracker.log_artifacts(files.all_paths())
    tracker.end("KILLED" if interrupted else "FINISHED")
    return CompareOutcome(records, summary, interrupted)


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    # On a terminal only: a log file gets the summary, not hundreds of bar redraws.
    return tqdm(total=total, desc="runs", unit="run", file=sys.stderr,
                disable=not (enabled and sys.stderr.isatty()), mininterval=0.2)
