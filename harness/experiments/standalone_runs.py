"""Stand-alone training of a list of architectures, as ``nas-harness standalone`` runs it.

Each architecture trains from scratch in its own run folder (checkpointed, resumable); its
result is appended to the results file as soon as it finishes, and architectures already in
that file (same dataset, epochs and seed) are skipped, so a re-run continues a list.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.execution.executors import ExecutionSettings, check_ray_available, map_unordered
from harness.oneshot.data import DataSettings
from harness.oneshot.standalone import StandaloneConfig
from harness.outputs import check_output_dir, check_output_file
from harness.space import Architecture


def train_architectures(archs: Sequence[Architecture], out_dir: Path = Path("results/runs/standalone"),
                        config: StandaloneConfig | None = None, *, data: DataSettings | None = None,
                        results: Path | None = None, resume: bool = False, progress: bool = True,
                        on_skipped: Callable[[int, int, Path], None] | None = None,
                        on_result: Callable[[dict[str, Any], Path], None] | None = None,
                        execution: ExecutionSettings | None = None) -> list[dict[str, Any]]:
    """Train each architecture not yet in ``results`` (default ``out_dir``/standalone.csv); returns the new rows.

    ``on_skipped(skipped, total, results)`` is called once when some were already finished,
    ``on_result(row, run_dir)`` after each architecture. ``execution`` trains several at a
    time (local processes or Ray workers, one task per architecture, each worker loading the
    images once); results are appended here, in the order they finish, whatever the executor.
    """
    from harness.oneshot.standalone import (
        append_result,
        finished_architectures,
        records_protocol,
        result_protocol,
        run_dir_for,
        train_standalone,
    )
    from harness.oneshot.training import CHECKPOINT_NAME

    archs = list(dict.fromkeys(archs))
    if not archs:
        raise UserError("no architectures to train; give ARCH strings or --archs-file")
    config = config or StandaloneConfig()
    data = data or DataSettings()
    out_dir = check_output_dir(out_dir)
    results = check_output_file(results if results is not None else out_dir / "standalone.csv", "--results")
    execution = execution or ExecutionSettings()
    if execution.executor == "ray":
        check_ray_available()
    dataset = data.load()
    # One file, one protocol: a run with other settings than the file's rows is refused here, before training.
    finished = finished_architectures(results, dataset.name, config.epochs, config.seed,
                                      protocol=result_protocol(config, dataset))
    pending = [arch for arch in archs if arch not in finished]
    if pending and not records_protocol(results):
        import sys

        print(f"note: {results} was written by an older nas-harness and records only the dataset, epochs and "
              f"seed of its rows, so this run's other settings cannot be checked against them", file=sys.stderr)
    interrupted = [arch for arch in pending if (run_dir_for(out_dir, arch) / CHECKPOINT_NAME).exists()]
    if interrupted and not resume:
        raise UserError(f"{len(interrupted)} run folder(s) in {out_dir} hold checkpoints of interrupted runs "
                        f"(e.g. {run_dir_for(out_dir, interrupted[0])}); pass --resume to continue them or "
                        f"choose another --out")
    if len(pending) < len(archs) and on_skipped is not None:
        on_skipped(len(archs) - len(pending), len(archs), results)
    rows = []
    if execution.executor == "local" and execution.workers == 1:
        for arch in pending:
            run_dir = run_dir_for(out_dir, arch)
            row = train_standalone(arch, dataset, config, run_dir, progress=progress, resume=resume)
            append_result(results, row)
            rows.append(row)
            if on_result is not None:
                on_result(row, run_dir)
        return rows
    tasks = [(arch.ops, str(run_dir_for(out_dir, arch)), config, resume) for arch in pending]
    with _bar(len(tasks), progress) as bar:
        for index, row in map_unordered(_train_task, tasks, execution, data.load):
            append_result(results, row)
            rows.append(row)
            bar.update(1)
            if on_result is not None:
                on_result(row, Path(tasks[index][1]))
    return rows


def _train_task(dataset, task: tuple) -> dict[str, Any]:
    """One architecture trained in a worker (``dataset``: the worker's images, loaded once)."""
    from harness.oneshot.allocator import keep_freed_memory
    from harness.oneshot.standalone import train_standalone

    keep_freed_memory()  # a Ray worker does not inherit this process's malloc settings
    ops, run_dir, config, resume = task
    return train_standalone(Architecture(tuple(ops)), dataset, config, run_dir, progress=False, resume=resume)


def _bar(total: int, enabled: bool):
    """One progress bar over every architecture, on a terminal only."""
    import sys

    from tqdm import tqdm

    return tqdm(total=total, desc="stand-alone runs", unit="arch", file=sys.stderr, leave=False,
                disable=not (enabled and sys.stderr.isatty()))
