"""`compare` with the one-shot methods: rows with architecture, cost and tau; the no-data hint; errors."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.experiments.compare import default_methods
from harness.experiments.oneshot_compare import DATA_DIR_ENV
from harness.space import Architecture, all_architectures

ONE_SHOT = ["spos", "fairnas", "greedynas", "darts"]
#: A tiny supernet on the embedded digits: one epoch of two steps, a 6-query search, tau over 12 cells.
TINY = ["--dataset", "digits", "--seeds", "1", "--budget", "10", "--workers", "1", "--no-mlflow", "--no-progress",
        "--oneshot-C", "4", "--oneshot-N", "1", "--oneshot-epochs", "1", "--oneshot-steps-per-epoch", "2",
        "--oneshot-search-budget", "6", "--tau-archs", "12", "--calibration-images", "32", "--eval-images", "64"]


@pytest.fixture(scope="module")
def ground_truth(tmp_path_factory) -> Path:
    """Made-up stand-alone accuracies for every cell (digits has no table)."""
    path = tmp_path_factory.mktemp("truth") / "standalone.csv"
    values = np.random.default_rng(0).uniform(10.0, 100.0, size=15625)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch", "test_accuracy"])
        writer.writerows([arch.to_string(), f"{value:.2f}"] for arch, value in zip(all_architectures(), values, strict=True))
    return path


@pytest.fixture(scope="module")
def compared(tmp_path_factory, ground_truth) -> Path:
    out = tmp_path_factory.mktemp("compare") / "out"
    code = main(["compare", "--methods", "random_search", *ONE_SHOT, *TINY, "--ground-truth", str(ground_truth),
                 "--out", str(out)])
    assert code == 0
    return out


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def test_oneshot_rows_have_architecture_cost_and_tau(compared):
    result = summary(compared)
    assert list(result["methods"]) == ["random_search"]  # the tabular methods ran beside them
    oneshot = result["oneshot"]
    assert [row["method"] for row in oneshot["runs"]] == ONE_SHOT
    for row in oneshot["runs"]:
        Architecture.from_string(row["final_arch"])
        assert row["seed"] == 0 and row["epochs_trained"] == 1
        assert row["train_seconds"] > 0 and row["search_seconds"] > 0
        assert row["cost_seconds"] == pytest.approx(row["train_seconds"] + row["search_seconds"])
        assert -1.0 <= row["kendall_tau"] <= 1.0
        assert row["final_test_accuracy"] is None  # no CIFAR-10 table for digits
    assert [row["search_queries"] for row in oneshot["runs"]] == [6, 6, 6, 1]  # DARTS: its derived cell
    assert oneshot["tau"]["architectures"] == 12 and "stand-alone results" in oneshot["tau"]["ground_truth"]
    assert "not available" in oneshot["report_metric"]
    with open(compared / "oneshot.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["method"] for row in rows] == ONE_SHOT and rows[0]["final_test_accuracy"] == ""
    report = (compared / "report.md").read_text()
    assert "## One-shot methods" in report and "## Final incumbent test figure" in report
    assert all(f"| {method} | 0 |" in report for method in ONE_SHOT)


def test_a_second_compare_reuses_the_supernets(compared, ground_truth, capsys):
    checkpoints = {m: (compared / "oneshot" / f"{m}-seed0" / "checkpoint.pt").stat().st_mtime_ns for m in ONE_SHOT}
    before = summary(compared)["oneshot"]["runs"]
    assert main(["compare", "--methods", "random_search", *ONE_SHOT, *TINY, "--ground-truth", str(ground_truth),
                 "--out", str(compared)]) == 0
    assert summary(compared)["oneshot"]["runs"] == before
    for method, mtime in checkpoints.items():
        assert (compared / "oneshot" / f"{method}-seed0" / "checkpoint.pt").stat().st_mtime_ns == mtime


def test_a_checkpoint_from_other_settings_is_one_line(compared, tmp_path, capsys):
    shutil.copytree(compared / "oneshot" / "spos-seed0", tmp_path / "oneshot" / "spos-seed0")
    code = main(["compare", "--methods", "spos", *TINY, "--oneshot-epochs", "2", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "epochs 1 vs 2" in err and "another --out" in err


def test_a_checkpoint_from_other_settings_is_refused_before_the_tabular_runs(compared, tmp_path, capsys):
    shutil.copytree(compared / "oneshot" / "spos-seed0", tmp_path / "oneshot" / "spos-seed0")
    code = main(["compare", "--methods", "random_search", "spos", *TINY, "--oneshot-epochs", "2",
                 "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "epochs 1 vs 2" in err and "--restart" in err
    assert not (tmp_path / "trajectories.csv").exists() and not (tmp_path / "runs.jsonl").exists()


def test_given_supernets_are_searched_not_trained(compared, tmp_path, capsys):
    run = compared / "oneshot" / "spos-seed0"
    assert main(["compare", "--methods", "spos", *TINY, "--supernets", str(run), "--out", str(tmp_path)]) == 0
    result = summary(tmp_path)
    assert result["methods"] == {}
    (row,) = result["oneshot"]["runs"]
    assert row["supernet"] == str(run) and row["kendall_tau"] is None  # no --ground-truth this time
    trained = summary(compared)["oneshot"]["runs"][0]
    assert row["train_seconds"] == trained["train_seconds"] and row["final_arch"] == trained["final_arch"]
    assert not (tmp_path / "oneshot" / "spos-seed0" / "checkpoint.pt").exists()
    assert "No tabular methods were run." in (tmp_path / "report.md").read_text()
    assert "pass --ground-truth FILE" in capsys.readouterr().out


def test_ctrl_c_keeps_the_finished_oneshot_runs(tmp_path, monkeypatch, capsys):
    from harness.experiments.oneshot_compare import OneShotComparison

    finished = []
    run_one = OneShotComparison.run_one

    def stop_at_the_second(self, run):
        if finished:
            raise KeyboardInterrupt
        finished.append(run.method)
        return run_one(self, run)

    monkeypatch.setattr(OneShotComparison, "run_one", stop_at_the_second)
    assert main(["compare", "--methods", "random_search", "spos", "darts", *TINY, "--out", str(tmp_path)]) == 130
    result = summary(tmp_path)
    assert result["interrupted"] is True and list(result["methods"]) == ["random_search"]
    assert [row["method"] for row in result["oneshot"]["runs"]] == ["spos"]
    assert (tmp_path / "oneshot.csv").read_text().count("\n") == 2
    assert "the same command continues them" in capsys.readouterr().err


TABULAR = ["--seeds", "1", "--budget", "5", "--workers", "1", "--no-mlflow", "--no-progress"]


@pytest.mark.parametrize("data", [[], ["--data-dir", "/nonexistent/cifar"]], ids=["no-data-dir", "missing-dir"])
def test_without_data_one_hint_line_and_the_tabular_methods_run(data, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert main(["compare", *TABULAR, *data, "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("one-shot methods skipped: ")
    assert "--data-dir" in err[0] or "/nonexistent/cifar does not exist" in err[0]
    result = summary(tmp_path)
    assert list(result["methods"]) == default_methods() and "oneshot" not in result


def test_tabular_methods_named_alone_need_no_hint(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert main(["compare", "--methods", "random_search", *TABULAR, "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--methods", "random_search", "spos"], "spos need(s) a dataset: no dataset; pass --data-dir DIR"),
        (["--methods", "darts", "--data-dir", "/nonexistent/cifar"], "/nonexistent/cifar does not exist"),
        (["--supernets", "/nonexistent/run"], "--supernets need(s) a dataset"),
        (["--dataset", "digits", "--supernets", "/nonexistent/run"], "no checkpoint at /nonexistent/run"),
        (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["--dataset", "digits", "--tau-archs", "20000"], "--tau-archs must be in 3..15625"),
        (["--dataset", "digits", "--oneshot-epochs", "0"], "expected a positive integer, got 0"),
        (["--dataset", "digits", "--ground-truth", "/nonexistent/truth.csv"], "does not exist"),
    ],
)
def test_bad_oneshot_input_is_one_line_and_runs_nothing(args, fragment, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    out = tmp_path / "out"
    assert main(["compare", *TABULAR, *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert not out.exists()


def test_the_data_dir_variable_is_the_one_data_reads():
    from harness.oneshot import data

    assert DATA_DIR_ENV == data.DATA_DIR_ENV
