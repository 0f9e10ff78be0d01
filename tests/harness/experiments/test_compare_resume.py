"""A compare run again on the same folder resumes: finished runs are kept, not re-run and not logged twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.reporting.report import read_trajectories_csv

ROOT = Path(__file__).resolve().parents[3]


def compare(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", "compare", "--methods", "random_search",
                           "aging_evolution", "--budget", "20", "--workers", "2", "--no-progress", "--out", str(out),
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def rows_by_run(out: Path) -> dict[tuple[str, int], list]:
    return {(r.method, r.seed): [(row.arch, row.val_accuracy) for row in r.rows]
            for r in read_trajectories_csv(out / "trajectories.csv")}


def children(store: str) -> list:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("nas-harness")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return [run for run in runs if "mlflow.parentRunId" in run.data.tags]


def test_rerun_keeps_finished_runs_and_runs_only_the_missing_ones(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = compare(tmp_path / "out", "--seeds", "2", "--tracking-uri", store)
    assert first.returncode == 0, first.stderr
    kept = rows_by_run(tmp_path / "out")
    assert len(kept) == 4
    second = compare(tmp_path / "out", "--seeds", "4", "--tracking-uri", store)
    assert second.returncode == 0, second.stderr
    assert "resuming: 4 of 8 runs already finished" in second.stderr
    resumed = rows_by_run(tmp_path / "out")
    assert {key: resumed[key] for key in kept} == kept and len(resumed) == 8
    fresh = compare(tmp_path / "fresh", "--seeds", "4", "--no-mlflow")
    assert rows_by_run(tmp_path / "fresh") == resumed  # the same numbers as one uninterrupted compare
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["methods"]["aging_evolution"]["n_runs"] == 4
    fresh_summary = json.loads((tmp_path / "fresh" / "summary.json").read_text())
    assert summary["methods"]["aging_evolution"]["hyperparameters"] == \
        fresh_summary["methods"]["aging_evolution"]["hyperparameters"] != {}  # kept runs keep theirs
    logged = children(store)
    assert sorted((r.data.params["method"], int(r.data.params["seed"])) for r in logged) == sorted(resumed)
    assert len({r.data.tags["mlflow.parentRunId"] for r in logged}) == 1  # one parent, resumed
    assert fresh.returncode == 0


def test_a_run_cut_off_while_being_written_runs_again(tmp_path):
    out = tmp_path / "out"
    assert compare(out, "--seeds", "2", "--no-mlflow").returncode == 0
    complete = rows_by_run(out)
    lines = (out / "runs.jsonl").read_text().splitlines()
    (out / "runs.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:10])  # the last mark cut off
    with open(out / "trajectories.csv", "a") as handle:
        handle.write("random_search,7,1,|none~0|")  # and a row cut off mid-line
    again = compare(out, "--seeds", "2", "--no-mlflow")
    assert again.returncode == 0, again.stderr
    assert "resuming: 3 of 4 runs already finished" in again.stderr
    assert rows_by_run(out) == complete


@pytest.mark.parametrize(("args", "fragment"), [
    (("--seeds", "2", "--budget", "30"), "holds runs made with --budget 20, not --budget 30"),
    (("--seeds", "2", "--benchmark", "surrogate:xgboost:100"), "holds runs made with --benchmark analog"),
])
def test_other_settings_than_the_kept_runs_are_refused(tmp_path, args, fragment):
    out = tmp_path / "out"
    assert compare(out, "--seeds", "2", "--no-mlflow").returncode == 0
    refused = subprocess.run([sys.executable, "-m", "harness.cli", "compare", "--methods", "random_search",
                              "aging_evolution", "--workers", "2", "--no-progress", "--no-mlflow", "--out", str(out),
                              "--budget", "20", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and fragment in refused.stderr
    assert "--restart" in refused.stderr


def test_restart_starts_over(tmp_path):
    out = tmp_path / "out"
    assert compare(out, "--seeds", "2", "--no-mlflow").returncode == 0
    again = compare(out, "--seeds", "1", "--budget", "20", "--restart", "--no-mlflow")
    assert again.returncode == 0 and "resuming" not in again.stderr
    assert sorted(rows_by_run(out)) == [("aging_evolution", 0), ("random_search", 0)]


def test_a_foreign_trajectories_file_is_not_resumed_silently(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "trajectories.csv").write_text("method,seed\n")
    refused = compare(out, "--seeds", "1", "--no-mlflow")
    assert refused.returncode == 2 and "cannot resume" in refused.stderr and "--restart" in refused.stderr


def test_mlflow_parent_gets_summary_metrics_and_the_run_is_named_on_screen(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = compare(tmp_path / "out", "--seeds", "3", "--tracking-uri", store)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("MLflow: run "))
    run_id = line.split()[2]
    assert store in line and "nas-harness ui --tracking-uri" in line
    from mlflow import MlflowClient

    metrics = MlflowClient(tracking_uri=store).get_run(run_id).data.metrics
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())["methods"]
    for method in ("random_search", "aging_evolution"):
        assert metrics[f"{method}.final_mean"] == pytest.approx(summary[method]["mean"])
        assert metrics[f"{method}.final_ci_low"] == pytest.approx(summary[method]["ci_low"])
        assert metrics[f"{method}.runs"] == 3
    assert os.path.exists(tmp_path / "out" / "compare.json")


def test_a_subset_of_the_kept_runs_says_the_others_stay_out_of_the_report(tmp_path):
    out = tmp_path / "out"
    assert compare(out, "--seeds", "2", "--no-mlflow").returncode == 0
    subset = subprocess.run([sys.executable, "-m", "harness.cli", "compare", "--methods", "random_search",
                             "--budget", "20", "--seeds", "1", "--workers", "1", "--no-progress", "--no-mlflow",
                             "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert subset.returncode == 0, subset.stderr
    assert "3 other finished run(s)" in subset.stderr and "not in this report" in subset.stderr
    assert len(rows_by_run(out)) == 4  # nothing on disk was dropped
    assert list(json.loads((out / "summary.json").read_text())["methods"]) == ["random_search"]
