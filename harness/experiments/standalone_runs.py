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
from harness.oneshot.data import DataSettings
from harness.oneshot.standalone import StandaloneConfig
from harness.outputs import check_output_dir, check_output_file
from harness.space import Architecture


def train_architectures(archs: Sequence[Architecture], out_dir: Path = Path("results/runs/standalone"),
                        config: StandaloneConfig | None = None, *, data: DataSettings | None = None,
                        results: Path | None = None, resume: bool = False, progress: bool = True,
                        on_skipped: Callable[[int, int, Path], None] | None = None,
                        on_result: Callable[[dict[str, Any], Path], None] | None = None) -> list[dict[str, Any]]:
    """Train each architecture not yet in ``results`` (default ``out_dir``/standalone.csv); returns the new rows.

    ``on_skipped(skipped, total, results)`` is called once when some were already finished,
    ``on_result(row, run_dir)`` after each architecture.
    """
    from harness.oneshot.standalone import (
        append_result,
        finished_architectures,
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
    dataset = data.load()
    finished = finished_architectures(results, dataset.name, config.epochs, config.seed)
    pending = [arch for arch in archs if arch not in finished]
    interrupted = [arch for arch in pending if (run_dir_for(out_dir, arch) / CHECKPOINT_NAME).exists()]
    if interrupted and not resume:
        raise UserError(f"{len(interrupted)} run folder(s) in {out_dir} hold checkpoints of interrupted runs "
                        f"(e.g. {run_dir_for(out_dir, interrupted[0])}); pass --resume to continue them or "
                        f"choose another --out")
    if len(pending) < len(archs) and on_skipped is not None:
        on_skipped(len(archs) - len(pending), len(archs), results)
    rows = []
    for arch in pending:
        run_dir = run_dir_for(out_dir, arch)
        row = train_standalone(arch, dataset, config, run_dir, progress=progress, resume=resume)
        append_result(results, row)
        rows.append(row)
        if on_result is not None:
            on_result(row, run_dir)
    return rows
