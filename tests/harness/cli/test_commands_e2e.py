"""Every command run as a user runs it (a subprocess, real files): outputs that are checked before any
work, refusals that are one line and exit 2, and output that says what its numbers are."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
TINY_TRAIN = ("--dataset", "digits", "--C", "4", "--N", "1", "--epochs", "1", "--steps-per-epoch", "3",
              "--batch-size", "16", "--threads", "1", "--no-mlflow", "--no-progress")
FEW_IMAGES = ("--calibration-images", "32", "--eval-images", "64", "--threads", "1")


def run_cli(*args: str, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})


def one_line_error(result: subprocess.CompletedProcess, fragment: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def supernet(tmp_path_factory) -> Path:
    """A tiny SPOS supernet trained on digits by the train command."""
    run = tmp_path_factory.mktemp("supernet") / "spos-digits"
    result = run_cli("train", "--method", "spos", *TINY_TRAIN, "--out", str(run))
    assert result.returncode == 0, result.stderr
    return run


@pytest.fixture(scope="module")
def ground_truth(tmp_path_factory) -> Path:
    """Stand-alone results for three architectures (tiny protocol), written by the standalone command."""
    folder = tmp_path_factory.mktemp("standalone")
    archs = [BEST, BEST.replace("skip_connect", "none"), BEST.replace("nor_conv_3x3~1|nor_conv_3x3~2", "avg_pool_3x3~1|none~2")]
    result = run_cli("standalone", *archs, "--dataset", "digits", "--epochs", "1", "--C", "4", "--N", "1",
                     "--steps-per-epoch", "2", "--threads", "1", "--no-progress", "--out", str(folder))
    assert result.returncode == 0, result.stderr
    return folder / "standalone.csv"


# -- output locations are checked before any work starts ---------------------------------------------
def _a_file(tmp_path: Path) -> Path:
    path = tmp_path / "a-file"
    path.write_text("not a folder\n")
    return path


def test_compare_out_that_is_a_file(tmp_path):
    one_line_error(run_cli("compare", "--methods", "random_search", "--seeds", "1", "--budget", "3", "--no-mlflow",
                           "--out", str(_a_file(tmp_path))), "is a file, not a folder")


def test_compare_out_that_cannot_be_created(tmp_path):
    one_line_error(run_cli("compare", "--methods", "random_search", "--seeds", "1", "--budget", "3", "--no-mlflow",
                           "--out", str(_a_file(tmp_path) / "under")), "cannot be created")


def test_compare_out_that_cannot_be_written():
    one_line_error(run_cli("compare", "--methods", "random_search", "--seeds", "1", "--budget", "3", "--no-mlflow",
                           "--out", "/proc/nas-harness-out"), "--out /proc/nas-harness-out cannot be written")


def test_train_out_that_is_a_file(tmp_path):
    one_line_error(run_cli("train", "--method", "spos", *TINY_TRAIN, "--out", str(_a_file(tmp_path))),
                   "is a file, not a folder")


def test_rank_and_search_out_that_is_a_file_fail_before_scoring(supernet, ground_truth, tmp_path):
    target = _a_file(tmp_path)
    one_line_error(run_cli("rank", "--checkpoint", str(supernet), "--ground-truth", str(ground_truth),
                           "--no-mlflow", "--no-progress", *FEW_IMAGES, "--out", str(target)), "is a file")
    one_line_error(run_cli("search", "--checkpoint", str(supernet), "--budget", "2", "--no-progress", *FEW_IMAGES,
                           "--out", str(target)), "is a file")
    assert target.read_text() == "not a folder\n"


def test_surrogate_out_that_is_a_file(tmp_path):
    one_line_error(run_cli("surrogate", "--models", "xgboost", "--n", "100", "--seeds", "1",
                           "--out", str(_a_file(tmp_path))), "is a file, not a folder")


def test_standalone_out_and_results_are_checked(tmp_path):
    one_line_error(run_cli("standalone", BEST, "--dataset", "digits", "--epochs", "1", "--out", str(_a_file(tmp_path))),
                   "is a file, not a folder")
    one_line_error(run_cli("standalone", BEST, "--dataset", "digits", "--epochs", "1", "--out", str(tmp_path / "sa"),
                           "--results", str(tmp_path)), "--results")


# -- training: true messages, and no resume of nothing ----------------------------------------------
def test_a_diverged_first_epoch_says_no_checkpoint_was_written(tmp_path):
    run = tmp_path / "run"
    result = run_cli("train", "--method", "spos", *TINY_TRAIN, "--lr", "1e6", "--grad-clip", "0",
                     "--steps-per-epoch", "30", "--out", str(run))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "no checkpoint was written" in result.stderr and "is kept at" not in result.stderr
    assert not (run / "checkpoint.pt").exists()


def test_resume_without_a_checkpoint_is_refused(tmp_path):
    line = one_line_error(run_cli("train", "--method", "spos", *TINY_TRAIN, "--resume", "--out", str(tmp_path / "new")),
                          "--resume: there is no checkpoint to continue")
    assert str(tmp_path / "new") in line
    assert not (tmp_path / "new").exists()


# -- refused combinations -------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "fragment"), [
    (("compare", "--no-mlflow", "--tracking-uri", "sqlite:///x.db"), "not allowed with"),
    (("rank", "--checkpoint", "x", "--no-mlflow", "--tracking-uri", "sqlite:///x.db"), "not allowed with"),
    (("compare", "--target", "nan"), "expected a finite number, got 'nan'"),
    (("compare", "--benchmark", "analog:"), "has nothing after the ':'"),
    (("query", BEST, "--benchmark", "analog:"), "has nothing after the ':'"),
    (("train", "--method", "spos", "--lr", "inf", "--out", "x"), "expected a finite number"),
])
def test_refused_at_once(args, fragment):
    one_line_error(run_cli(*args), fragment)


def test_search_refuses_a_one_shot_method_as_searcher(supernet, tmp_path):
    one_line_error(run_cli("search", "--checkpoint", str(supernet), "--searcher", "darts", "--no-progress",
                           "--out", str(tmp_path)), "darts is a one-shot method")


# -- the checkpoint says which dataset; a missing one is named first ---------------------------------
def test_rank_names_a_missing_checkpoint_before_anything_else(tmp_path):
    one_line_error(run_cli("rank", "--checkpoint", "/nonexistent/run", "--no-mlflow", "--out", str(tmp_path)),
                   "no checkpoint at /nonexistent/run")


def test_rank_and_search_take_the_dataset_from_the_checkpoint(supernet, ground_truth, tmp_path):
    ranked = run_cli("rank", "--checkpoint", str(supernet), "--ground-truth", str(ground_truth), "--no-mlflow",
                     "--no-progress", *FEW_IMAGES, "--out", str(tmp_path / "rank"))
    assert ranked.returncode == 0, ranked.stderr
    assert json.loads((tmp_path / "rank" / "ranking.json").read_text())["meta"]["dataset"] == "digits"
    searched = run_cli("search", "--checkpoint", str(supernet), "--budget", "3", "--no-progress", *FEW_IMAGES,
                       "--out", str(tmp_path / "search"))
    assert searched.returncode == 0, searched.stderr


# -- output that says what its numbers are -------------------------------------------------------------
def test_rank_says_which_score_and_ground_truth_and_warns_about_small_samples(supernet, ground_truth, tmp_path):
    result = run_cli("rank", "--checkpoint", str(supernet), "--ground-truth", str(ground_truth), "--no-mlflow",
                     "--no-progress", *FEW_IMAGES, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "ranked by: probability = mean softmax probability (%) of the true class" in out
    assert f"ground truth: stand-alone results {ground_truth}" in out
    assert "architectures: 3 (covered, seed 0) of digits" in out
    assert "precision_top5: share of the true top 5% of architectures" in out
    assert "warning: kendall_tau is computed over 3 architecture(s)" in out


def test_search_names_its_columns_and_says_why_there_is_no_test_figure(supernet, tmp_path):
    result = run_cli("search", "--checkpoint", str(supernet), "--budget", "3", "--no-progress", *FEW_IMAGES,
                     "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "final test accuracy not available: there is no accuracy table for digits" in result.stderr
    assert json.loads(result.stdout)["final_test_accuracy"] is None
    with open(tmp_path / "trajectories.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert "supernet_score" in header and "incumbent_table_test_accuracy" in header
    assert "val_accuracy" not in header


def test_surrogate_study_prints_its_table_and_writes_its_files(tmp_path):
    result = run_cli("surrogate", "--models", "xgboost", "random_forest", "--n", "100", "--seeds", "2",
                     "--no-progress", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "xgboost" in result.stdout and "random_forest" in result.stdout
    study = json.loads((tmp_path / "study.json").read_text())
    assert {row["model"] for row in study["rows"]} == {"xgboost", "random_forest"} and len(study["rows"]) == 4
    assert (tmp_path / "study.md").is_file()


def test_surrogate_study_refuses_an_unknown_model():
    one_line_error(run_cli("surrogate", "--models", "xgbost", "--n", "100", "--seeds", "1"), "xgbost")


def test_list_names_every_method_and_benchmark_kind():
    result = run_cli("list")
    assert result.returncode == 0
    for name in ("aging_evolution (tabular)", "spos (one-shot)", "darts (one-shot)", "analog:PATH", "nb201:PATH"):
        assert name in result.stdout


# -- found by a new user: each is a test now --------------------------------------------------------
CRASHING_PLUGIN = """
from harness import Searcher, sample_architecture


class Crash(Searcher):
    def _ask(self):
        if len(self.history) == 5:
            raise ValueError("boom at query 6")
        return sample_architecture(self.rng)
"""


def test_a_plugin_that_fails_mid_run_is_named_in_one_line_and_the_finished_runs_are_reported(tmp_path):
    (tmp_path / "crash.py").write_text(CRASHING_PLUGIN)
    result = run_cli("compare", "--methods", "random_search", str(tmp_path / "crash.py") + ":Crash", "--seeds", "2",
                     "--budget", "10", "--workers", "1", "--no-mlflow", "--no-progress", "--out", str(tmp_path / "out"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "crash.py:Crash (seed 0) failed in ask() at query 6: ValueError: boom at query 6" in last
    assert "crash.py:" in last.split("(")[-1]  # where: the plug-in's file and line
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["methods"]["random_search"]["n_runs"] == 2  # what finished is reported


def test_sigterm_to_compare_keeps_the_finished_runs(tmp_path):
    import signal
    import time

    (tmp_path / "blocking.py").write_text("import threading\nfrom harness import Searcher\n\n\n"
                                          "class Blocking(Searcher):\n    def _ask(self):\n"
                                          "        threading.Event().wait()\n")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "compare", "--methods", "random_search",
                             str(tmp_path / "blocking.py") + ":Blocking", "--seeds", "2", "--budget", "10",
                             "--workers", "2", "--no-mlflow", "--no-progress", "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not ((out / "runs.jsonl").exists() and (out / "runs.jsonl").read_text().count("\n") == 2):
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[1]
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)  # to the parent only: it must stop its workers too
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in stderr
    assert json.loads((out / "summary.json").read_text())["interrupted"] is True


def test_a_ranking_needs_three_architectures(supernet, tmp_path):
    code = "from harness.evaluation.rank import select_architectures as s; print(s('sample', 2, 0)[0].to_string())"
    arch = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    truth = tmp_path / "truth.csv"
    truth.write_text(f"arch,test_accuracy\n{arch},50.0\n")
    one_line_error(run_cli("rank", "--checkpoint", str(supernet), "--ground-truth", str(truth), "--no-mlflow",
                           "--no-progress", *FEW_IMAGES, "--out", str(tmp_path / "r")), "at least 3 architectures")


@pytest.mark.parametrize("command", [
    ("compare", "--methods", "random_search", "--no-mlflow"),
    ("train", "--method", "spos", "--dataset", "digits"),
    ("rank", "--checkpoint", "x"),
])
def test_an_empty_out_is_refused(command, tmp_path):
    one_line_error(run_cli(*command, "--out", "", cwd=tmp_path), "empty string")
    assert not list(tmp_path.iterdir())


def test_one_shot_options_without_a_one_shot_method_are_refused(tmp_path):
    one_line_error(run_cli("compare", "--methods", "random_search", "--dataset", "nosuch", "--no-mlflow",
                           "--out", str(tmp_path)), "one-shot settings given (--dataset)")
