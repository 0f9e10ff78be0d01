"""What a compare's output folder already holds, so that running the same compare again resumes it.

``compare.json`` records the settings every kept run was made with (benchmark, budget, each
method's hyper-parameters) and the MLflow parent run; ``runs.jsonl`` gets one line per
finished (method, seed) run (with the hyper-parameters its searcher reported), written
after its rows reached ``trajectories.csv``. A run
counts as kept only when both agree, so a run cut off while being written is run again
(with its seed, to the same result). Settings that differ from the kept runs' are refused:
mixing them would put two experiments in one report.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.jsonsafe import jsonable
from harness.search.run import RunRecord

STATE_FILE = "compare.json"
RUNS_FILE = "runs.jsonl"
STATE_VERSION = 1
#: Everything a compare writes into its folder, removed by ``restart``.
WRITTEN = ("compare.json", "runs.jsonl", "trajectories.csv", "summary.json", "report.md", "incumbent.png",
           "regret.png", "oneshot.csv", "oneshot")


@dataclass
class KeptRuns:
    """The finished runs a folder holds (by (method, seed)) and the MLflow parent they were logged under."""

    records: dict[tuple[str, int], RunRecord] = field(default_factory=dict)
    parent_run_id: str | None = None
    tracking_uri: str | None = None
    #: The settings recorded with the kept runs (empty for a new folder).
    settings: dict[str, Any] = field(default_factory=dict)
    #: Finished runs in the folder that this comparison does not ask for (kept on disk, not reported).
    others: int = 0


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _describe(key: str, value: Any) -> str:
    return {"budget": f"--budget {value}", "benchmark": f"--benchmark {value}"}.get(key, f"{key} {value}")


def restart(out: Path) -> None:
    """Remove what an earlier compare wrote into ``out`` (only those files and folders)."""
    for name in WRITTEN:
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def load_kept_runs(out: Path, settings: Mapping[str, Any], wanted: Iterable[tuple[str, int]]) -> KeptRuns:
    """The finished runs in ``out`` that this compare asks for again; refuses kept runs made differently.

    ``settings`` are what decide a run's result besides its method and seed:
    ``{"benchmark": spec, "budget": n, "hyperparameters": {method: {...}}, ...}``. A folder
    with trajectories but no ``compare.json`` (written by something else) is refused too.
    """
    from harness.reporting.report import read_trajectories_csv

    state_path, csv_path = out / STATE_FILE, out / "trajectories.csv"
    if not state_path.exists():
        if csv_path.exists():
            raise UserError(f"--out {out} holds a trajectories.csv this compare cannot resume (no {STATE_FILE}); "
                            f"pass --restart to replace it or choose another --out")
        return KeptRuns()
    try:
        state = json.loads(state_path.read_text())
        kept_settings = state["settings"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{state_path} is unreadable; pass --restart to start over or choose another --out") from None
    _refuse_other_settings(out, kept_settings, settings)
    finished: dict[tuple[str, int], int] = {}
    reported: dict[tuple[str, int], dict[str, Any]] = {}
    if (out / RUNS_FILE).exists():
        for line in (out / RUNS_FILE).read_text().splitlines():
            try:
                entry = json.loads(line)
                key = (str(entry["method"]), int(entry["seed"]))
                finished[key] = int(entry["rows"])
                reported[key] = dict(entry.get("hyperparameters", {}))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut off by an interruption: that run is not finished
    records = {}
    if csv_path.exists() and finished:
        try:
            written = read_trajectories_csv(csv_path, benchmark=settings["benchmark"], budget=settings["budget"])
        except (OSError, ValueError, KeyError, TypeError):
            written = _read_whole_runs(csv_path, settings)
        records = {(r.method, r.seed): r for r in written if finished.get((r.method, r.seed)) == len(r.rows)}
    wanted = set(wanted)
    for key, record in records.items():  # as the searcher reported them when it ran (trajectories hold none)
        record.hyperparameters = reported.get(key, {})
    kept = KeptRuns({key: record for key, record in records.items() if key in wanted},
                    state.get("mlflow_parent_run_id"), state.get("tracking_uri"), dict(kept_settings),
                    others=sum(key not in wanted for key in records))
    # Keep exactly the finished runs on disk (all of them, asked for this time or not), in order.
    _rewrite(out, list(records.values()))
    return kept


def _read_whole_runs(csv_path: Path, settings: Mapping[str, Any]) -> list[RunRecord]:
    """The runs of a trajectories.csv whose last line was cut off: parse it without that line."""
    from harness.reporting.report import read_trajectories_csv

    lines = csv_path.read_text().splitlines(keepends=True)
    trimmed = csv_path.with_name(f".{csv_path.name}.trimmed{os.getpid()}")
    try:
        trimmed.write_text("".join(lines[:-1]))
        return read_trajectories_csv(trimmed, benchmark=settings["benchmark"], budget=settings["budget"])
    finally:
        trimmed.unlink(missing_ok=True)


def _refuse_other_settings(out: Path, kept: Mapping[str, Any], asked: Mapping[str, Any]) -> None:
    advice = "pass the same settings to resume, --restart to start over, or another --out"
    for key in sorted(set(kept) | set(asked)):
        if key == "hyperparameters":
            continue
        if kept.get(key) != asked.get(key):
            raise UserError(f"--out {out} holds runs made with {_describe(key, kept.get(key))}, "
                            f"not {_describe(key, asked.get(key))}; {advice}")
    kept_hp, asked_hp = kept.get("hyperparameters", {}), asked.get("hyperparameters", {})
    for method in sorted(set(kept_hp) & set(asked_hp)):
        if kept_hp[method] != asked_hp[method]:
            raise UserError(f"--out {out} holds {method} runs with hyper-parameters {kept_hp[method]}, "
                            f"not {asked_hp[method]}; {advice}")


def _rewrite(out: Path, records: list[RunRecord]) -> None:
    from harness.reporting.report import write_trajectories_csv

    write_trajectories_csv(records, out / "trajectories.csv")
    _write_atomic(out / RUNS_FILE, "".join(_run_line(r) for r in records))


def _run_line(record: RunRecord) -> str:
    return json.dumps({"method": record.method, "seed": record.seed, "rows": len(record.rows),
                       "hyperparameters": jsonable(record.hyperparameters)}) + "\n"


def save_state(out: Path, settings: Mapping[str, Any], parent_run_id: str | None, tracking_uri: str | None,
               kept_settings: Mapping[str, Any] | None = None) -> None:
    """Record the settings of the runs in ``out`` (hyper-parameters merged with the kept runs') and the
    MLflow parent run they are logged under."""
    merged = dict(settings)
    merged["hyperparameters"] = {**(kept_settings or {}).get("hyperparameters", {}),
                                 **settings.get("hyperparameters", {})}
    state = {"version": STATE_VERSION, "settings": merged, "mlflow_parent_run_id": parent_run_id,
             "tracking_uri": tracking_uri}
    _write_atomic(out / STATE_FILE, json.dumps(state, indent=1, sort_keys=True) + "\n")


def mark_finished(out: Path, record: RunRecord) -> None:
    """Append the run to runs.jsonl (after its rows are in trajectories.csv): it is now kept."""
    with open(out / RUNS_FILE, "a", encoding="utf-8") as handle:
        handle.write(_run_line(record))
        handle.flush()
        os.fsync(handle.fileno())
