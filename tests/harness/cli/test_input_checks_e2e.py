"""Settings that would have been accepted and silently ignored, capped or mixed, refused as a user meets them
(a subprocess, real files): one line on stderr naming what was wrong and what is accepted, exit 2, nothing
written. And figures that said more than they knew (a spread from one seed) saying what they are."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
OTHER = "|skip_connect~0|+|nor_conv_3x3~0|none~1|+|nor_conv_1x1~0|skip_connect~1|avg_pool_3x3~2|"
TINY_TRAIN = ("--dataset", "digits", "--C", "4", "--N", "1", "--epochs", "1", "--steps-per-epoch", "3",
              "--batch-size", "16", "--threads", "1", "--no-mlflow", "--no-progress")
TINY_STANDALONE = ("--dataset", "digits", "--epochs", "1", "--N", "1", "--steps-per-epoch", "2", "--batch-size", "32",
                   "--threads", "1", "--no-progress")
FEW_IMAGES = ("--calibration-images", "32", "--eval-images", "64", "--threads", "1")
DIGITS_VALID = 749  # images in the digits valid split (and in its train split)


def run_cli(*args: str, cwd: Path = ROOT, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    environment.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=environment)


def one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: to show that a refused command changed nothing."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def supernet(tmp_path_factory) -> Path:
    """A tiny SPOS supernet trained on digits by the train command."""
    run = tmp_path_factory.mktemp("supernet") / "spos-digits"
    result = run_cli("train", "--method", "spos", *TINY_TRAIN, "--out", str(run))
    assert result.returncode == 0, result.stderr
    return run


@pytest.fixture(scope="module")
def standalone_c4(tmp_path_factory) -> Path:
    """A stand-alone results folder holding BEST trained at C=4."""
    folder = tmp_path_factory.mktemp("standalone") / "c4"
    result = run_cli("standalone", BEST, *TINY_STANDALONE, "--C", "4", "--out", str(folder))
    assert result.returncode == 0, result.stderr
    return folder


# -- A1: one results file, one protocol ----------------------------------------------------------------
def test_standalone_records_the_protocol_of_each_row(standalone_c4):
    with open(standalone_c4 / "standalone.csv", newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["C"], row["N"], row["batch_size"], row["lr"], row["steps_per_epoch"]) == ("4", "1", "32", "0.1", "2")
    assert row["precision"] == "fp32" and row["dataset"] == "digits"


@pytest.mark.parametrize(("archs", "change", "named"), [
    ((BEST,), ("--C", "8"), "C 4 vs 8"),
    ((BEST,), ("--C", "4", "--batch-size", "16"), "batch_size 32 vs 16"),
    ((OTHER,), ("--C", "4", "--lr", "0.05"), "lr 0.1 vs 0.05"),
    ((BEST, OTHER), ("--C", "4", "--steps-per-epoch", "3"), "steps_per_epoch 2 vs 3"),
], ids=["C-same-arch", "batch-size", "lr-new-arch", "steps"])
def test_standalone_refuses_other_settings_over_a_results_file_before_training(standalone_c4, archs, change, named):
    before = tree(standalone_c4)
    # TINY_STANDALONE's own --batch-size / --steps-per-epoch come first: the later ones win, as argparse does.
    line = one_line_error(run_cli("standalone", *archs, *TINY_STANDALONE, *change, "--out", str(standalone_c4)),
                          named, "one results file holds one protocol", "--out or --results")
    assert "skipped" not in line
    assert tree(standalone_c4) == before  # nothing trained, nothing appended


def test_rank_refuses_a_ground_truth_that_mixes_protocols(supernet, standalone_c4, tmp_path):
    mixed = tmp_path / "mixed.csv"
    lines = (standalone_c4 / "standalone.csv").read_text().splitlines()
    other = lines[1].replace(BEST, OTHER).replace(",4,1,2,", ",8,1,2,")  # the C column of a second row
    assert other != lines[1].replace(BEST, OTHER)
    mixed.write_text("\n".join([*lines, other]) + "\n")
    one_line_error(run_cli("rank", "--checkpoint", str(supernet), "--ground-truth", str(mixed), "--no-mlflow",
                           "--no-progress", *FEW_IMAGES, "--out", str(tmp_path / "rank")),
                   "mixes results of different protocols", "C 4 vs 8", "line 2 vs line 3")
    assert not (tmp_path / "rank" / "ranking.json").exists()


def test_a_results_file_of_an_older_version_is_continued_in_its_own_format(tmp_path):
    legacy = tmp_path / "sa" / "standalone.csv"
    legacy.parent.mkdir()
    legacy.write_text("arch,valid_accuracy,test_accuracy,dataset,epochs,seed,seconds\n"
                      f"{BEST},50.0000,49.0000,digits,1,0,1.0000\n")
    result = run_cli("standalone", OTHER, *TINY_STANDALONE, "--C", "4", "--out", str(tmp_path / "sa"))
    assert result.returncode == 0, result.stderr
    assert "records only the dataset, epochs and seed" in result.stderr
    rows = legacy.read_text().splitlines()
    assert rows[0] == "arch,valid_accuracy,test_accuracy,dataset,epochs,seed,seconds" and len(rows) == 3
    assert rows[2].startswith(OTHER) and rows[2].count(",") == 6  # appended in the file's own format


# -- A2: no more images than the split holds -------------------------------------------------------------
@pytest.mark.parametrize(("option", "split"), [("--eval-images", "valid"), ("--calibration-images", "train")])
def test_rank_and_search_refuse_more_images_than_the_split(supernet, tmp_path, option, split):
    images = ("--calibration-images", "32", "--eval-images", "64", option, "10000000", "--threads", "1")
    fragments = (f"{option} 10000000", f"{DIGITS_VALID} images of the digits {split} split",
                 f"at most {DIGITS_VALID}")
    one_line_error(run_cli("rank", "--checkpoint", str(supernet), "--no-mlflow", "--no-progress", *images,
                           "--archs", "5", "--ground-truth", str(_truth_file(tmp_path)), "--out", str(tmp_path / "r")),
                   *fragments)
    one_line_error(run_cli("search", "--checkpoint", str(supernet), "--budget", "2", "--no-progress", *images,
                           "--out", str(tmp_path / "s")), *fragments)
    assert not (tmp_path / "r" / "ranking.json").exists() and not (tmp_path / "s" / "search.json").exists()


def test_compare_refuses_more_images_than_the_split_before_training(tmp_path):
    out = tmp_path / "out"
    one_line_error(run_cli("compare", "--methods", "spos", "--dataset", "digits", "--seeds", "1", "--no-mlflow",
                           "--no-progress", "--eval-images", "10000000", "--out", str(out)),
                   "--eval-images 10000000", f"{DIGITS_VALID} images of the digits valid split")
    assert not (out / "oneshot").exists()  # no supernet was trained


def test_rank_by_default_scores_on_the_whole_of_a_small_split_and_says_so(supernet, tmp_path):
    result = run_cli("rank", "--checkpoint", str(supernet), "--ground-truth", str(_truth_file(tmp_path)),
                     "--no-mlflow", "--no-progress", "--calibration-images", "32", "--threads", "1",
                     "--out", str(tmp_path / "r"))  # the default (1,000) is more than digits' 749: all of them
    assert result.returncode == 0, result.stderr
    assert f"{DIGITS_VALID} valid images per architecture" in result.stdout
    assert json.loads((tmp_path / "r" / "ranking.json").read_text())["meta"]["scoring"]["eval_images"] == DIGITS_VALID


def _truth_file(folder: Path) -> Path:
    """A hand-written ground truth for three architectures."""
    path = folder / "truth.csv"
    archs = [BEST, OTHER, BEST.replace("skip_connect", "none")]
    path.write_text("arch,test_accuracy\n" + "".join(f"{a},{80 + i}\n" for i, a in enumerate(archs)))
    return path


# -- A3: a surrogate of the reported figure says so ---------------------------------------------------------
def test_a_surrogate_of_the_embedded_table_says_its_reward_is_fitted_on_the_report(tmp_path):
    result = run_cli("compare", "--methods", "random_search", "--seeds", "2", "--budget", "5", "--no-mlflow",
                     "--no-progress", "--benchmark", "surrogate:gp:100", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "note: the reward is a prediction fitted on the reported figure itself" in result.stdout
    report = (tmp_path / "report.md").read_text()
    assert "The reward is a prediction fitted on the reported figure itself" in report
    assert "never steered the search" not in report
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["reward_fitted_on_report_metric"] is True and summary["reward_is_report_metric"] is False


# -- A4: no spread from a single sample ----------------------------------------------------------------------
def test_compare_with_one_seed_shows_no_interval_and_says_why(tmp_path):
    result = run_cli("compare", "--methods", "random_search", "--seeds", "1", "--budget", "10", "--no-mlflow",
                     "--no-progress", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if line.startswith("random_search"))
    assert row.split()[3:5] == ["n/a", "n/a"] and "[" not in row
    assert "std and CI are n/a for random_search: one run has no spread" in result.stdout
    entry = json.loads((tmp_path / "summary.json").read_text())["methods"]["random_search"]
    assert entry["std"] is None and entry["ci_low"] is None and entry["ci_high"] is None
    assert "one run has no spread" in (tmp_path / "report.md").read_text()


def test_surrogate_study_says_what_its_spread_is_and_has_none_for_one_seed(tmp_path):
    one = run_cli("surrogate", "--models", "gp", "--n", "100", "--seeds", "1", "--no-progress",
                  "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    assert "± n/a" in one.stdout and "± 0.000" not in one.stdout
    assert "mean ± sample standard deviation (ddof=1) over 1 seed" in one.stdout
    assert "standard deviation is n/a: one value has no spread" in one.stdout
    study = json.loads((tmp_path / "one" / "study.json").read_text())
    assert study["summary"][0]["kendall_tau_std"] is None
    assert "over 1 seed" in (tmp_path / "one" / "study.md").read_text()
    two = run_cli("surrogate", "--models", "gp", "--n", "100", "--seeds", "2", "--no-progress")
    assert two.returncode == 0, two.stderr
    assert "over 2 seeds" in two.stdout and "n/a" not in two.stdout


# -- A5: ui refuses what it cannot serve -----------------------------------------------------------------------
def test_ui_refuses_a_port_in_use(tmp_path):
    store = tmp_path / "mlflow.db"
    store.write_bytes(b"")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        one_line_error(run_cli("ui", "--tracking-uri", f"sqlite:///{store}", "--port", str(port), timeout=60),
                       f"port {port} on 127.0.0.1 is already in use", "--port")


@pytest.mark.parametrize(("uri", "fragments"), [
    ("/proc/x", ("--tracking-uri /proc/x is not a store URI", "accepted: sqlite:///")),
    ("mlflow.db", ("is not a store URI", "accepted: sqlite:///")),
    ("file:///tmp", ("folder (file://) stores", "accepted: sqlite:///")),
    ("ftp://host/x", ("unknown kind of store 'ftp'", "accepted: sqlite:///")),
], ids=["bare-path-proc", "bare-file", "file-store", "unknown-scheme"])
def test_ui_refuses_a_store_that_is_not_a_uri(uri, fragments, tmp_path):
    one_line_error(run_cli("ui", "--tracking-uri", uri, "--port", "5000", cwd=tmp_path, timeout=60), *fragments)


def test_ui_refuses_a_sqlite_store_that_does_not_exist_and_creates_nothing(tmp_path):
    missing = tmp_path / "nothing" / "mlflow.db"
    one_line_error(run_cli("ui", "--tracking-uri", f"sqlite:///{missing}", timeout=60),
                   f"no tracking store at {missing}", "run a compare first, or pass --tracking-uri")
    assert not (tmp_path / "nothing").exists()


def test_ui_refuses_the_default_store_when_there_is_none(tmp_path):
    one_line_error(run_cli("ui", cwd=tmp_path, timeout=60),
                   f"no tracking store at {tmp_path.resolve() / 'results' / 'mlflow.db'}")
    assert not (tmp_path / "results").exists()


# -- A6: output locations are not silently ignored -----------------------------------------------------------
def test_an_unwritable_cache_dir_is_refused_before_any_work(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder\n")
    one_line_error(run_cli("train", "--method", "spos", *TINY_TRAIN, "--cache-dir", "/proc/x",
                           "--out", str(tmp_path / "run")), "--cache-dir /proc/x cannot be written")
    one_line_error(run_cli("standalone", BEST, *TINY_STANDALONE, "--cache-dir", str(a_file),
                           "--out", str(tmp_path / "sa")), f"--cache-dir {a_file} is a file, not a folder")
    one_line_error(run_cli("compare", "--methods", "random_search", "--seeds", "1", "--budget", "3", "--no-mlflow",
                           "--cache-dir", "/proc/x", "--out", str(tmp_path / "cmp")), "--cache-dir /proc/x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


# -- A7: values that make no sense ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "fragments"), [
    (("compare", "--target", "150", "--no-mlflow"), ("target 150 is not an accuracy", "0..100")),
    (("compare", "--target", "-1", "--no-mlflow"), ("target -1 is not an accuracy",)),
    (("train", "--method", "spos", *TINY_TRAIN, "--grad-clip", "-1"), ("grad_clip must be a positive", "--grad-clip 0")),
    (("train", "--method", "spos", *TINY_TRAIN, "--weight-decay", "-1"), ("weight_decay must be a non-negative",)),
    (("train", "--method", "spos", *TINY_TRAIN, "--lr", "1e39"), ("lr must be a positive number float32 can hold",)),
    (("train", "--method", "spos", *TINY_TRAIN, "--lr", "0"), ("lr must be a positive number",)),
    (("train", "--method", "spos", *TINY_TRAIN, "--lr", "0.01", "--lr-min", "0.1"), ("0 <= lr_min <= lr",)),
    (("standalone", BEST, *TINY_STANDALONE, "--lr", "1e39"), ("lr must be a positive number float32 can hold",)),
    (("surrogate", "--models", "xgboost", "xgboost", "--n", "100"), ("--models gives xgboost more than once",)),
    (("surrogate", "--models", "xgboost", "--n", "100", "100"), ("--n gives 100 more than once",)),
], ids=["target-above-100", "target-negative", "grad-clip", "weight-decay", "lr-overflow", "lr-zero", "lr-min",
        "standalone-lr", "surrogate-models", "surrogate-n"])
def test_settings_that_make_no_sense_are_refused_and_nothing_is_created(args, fragments, tmp_path):
    one_line_error(run_cli(*args, "--out", str(tmp_path / "out")), *fragments)
    assert not (tmp_path / "out").exists()


# -- A8: hyper-parameters can be discovered ------------------------------------------------------------------------
def test_an_unknown_hyperparameter_lists_the_accepted_ones(tmp_path):
    one_line_error(run_cli("compare", "--methods", "reinforce", "--hp", "reinforce:baseline_decay=0.9", "--seeds", "1",
                           "--budget", "3", "--no-mlflow", "--out", str(tmp_path / "c")),
                   "unexpected keyword argument 'baseline_decay'",
                   "reinforce takes: learning_rate=0.01, ema_momentum=0.9, init_std=0.001")
    one_line_error(run_cli("train", "--method", "greedynas", *TINY_TRAIN, "--hp", "pool=3", "--out", str(tmp_path / "t")),
                   "unexpected keyword argument 'pool'", "greedynas takes: paths_sampled=10", "population_size=50")
    assert not (tmp_path / "c").exists() and not (tmp_path / "t").exists()


def test_version_and_list_show_what_can_be_set():
    from harness import __version__

    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"nas-harness {__version__}"
    listed = run_cli("list")
    assert listed.returncode == 0, listed.stderr
    assert "aging_evolution (tabular)  hyper-parameters: population_size=10, sample_size=3" in listed.stdout
    assert "spos (one-shot)  hyper-parameters: see 'nas-harness list --hyperparameters'" in listed.stdout
    full = run_cli("list", "--hyperparameters")
    assert full.returncode == 0, full.stderr
    assert "spos (one-shot)  hyper-parameters: population_size=50, generations=20, top_k=10" in full.stdout
    assert "darts (one-shot)  hyper-parameters: order=1" in full.stdout


# -- A9: one checkpoint, once -----------------------------------------------------------------------------------------
def test_rank_refuses_the_same_checkpoint_twice(supernet, tmp_path):
    for second in (supernet, Path(os.path.relpath(supernet, ROOT)) / "checkpoint.pt"):  # cwd: ROOT
        one_line_error(run_cli("rank", "--checkpoint", str(supernet), str(second), "--no-mlflow", "--no-progress",
                               *FEW_IMAGES, "--out", str(tmp_path / "r")),
                       f"names the checkpoint {supernet / 'checkpoint.pt'} twice", "give each once")
    assert not (tmp_path / "r").exists()


# -- the GPU path on a machine without one -----------------------------------------------------------------------
@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a CUDA device")
def test_rank_on_cuda_without_a_gpu_is_one_line(supernet, tmp_path):
    one_line_error(run_cli("rank", "--checkpoint", str(supernet), "--device", "cuda", "--archs", "5", "--no-mlflow",
                           "--no-progress", *FEW_IMAGES, "--out", str(tmp_path / "r")),
                   "no CUDA device", "--device cpu")
