"""``nas-harness rank --proxy`` as a user runs it (a subprocess, real files, digits): the same outputs as a
supernet's ranking, kept scores that resume, supernets and proxies side by side, and refusals in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_input_checks_e2e import one_line_error, run_cli  # the CLI helpers these tests share

from harness.space import Architecture

ROOT = Path(__file__).resolve().parents[3]
TINY_PROXY = ("--dataset", "digits", "--proxy-C", "4", "--proxy-N", "1", "--proxy-batch-size", "16",
              "--threads", "1", "--bootstrap", "20", "--no-progress")
TINY_TRAIN = ("--dataset", "digits", "--C", "4", "--N", "1", "--epochs", "1", "--steps-per-epoch", "3",
              "--batch-size", "16", "--threads", "1", "--no-mlflow", "--no-progress")


@pytest.fixture(scope="module")
def ground_truth(tmp_path_factory) -> Path:
    """A stand-alone results file for six architectures (digits has no reference table)."""
    path = tmp_path_factory.mktemp("truth") / "standalone.csv"
    rows = [f"{Architecture.from_index(i).to_string()},{acc}"
            for i, acc in ((0, 10.0), (1500, 61.5), (4000, 72.0), (7777, 80.5), (11000, 55.0), (15624, 68.0))]
    path.write_text("arch,test_accuracy\n" + "\n".join(rows) + "\n")
    return path


def test_proxies_rank_like_supernets_and_resume(ground_truth, tmp_path):
    out = tmp_path / "rank"
    args = ("rank", "--proxy", "synflow", "naswot", *TINY_PROXY, "--ground-truth", str(ground_truth),
            "--proxy-init-seed", "3", "--no-mlflow", "--out", str(out))
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "## synflow (zero-cost proxy)" in first.stdout and "s per architecture" in first.stdout
    for name in ("synflow", "naswot"):
        for file in ("ranking.csv", "ranking.json", "ranking.png", "scores.csv"):
            assert (out / name / file).is_file(), (name, file)
        document = json.loads((out / name / "ranking.json").read_text())
        assert document["meta"]["proxy_config"] == {"C": 4, "N": 1, "batch_size": 16, "batches": 2, "init_seed": 3,
                                                    "batch_seed": 0, "split": "train", "augment": False,
                                                    "dtype": "float32", "device": "cpu"}
        assert document["meta"]["architectures"] == 6 and document["meta"]["seconds_per_architecture"] > 0
        assert set(document["metrics"]) >= {"kendall_tau", "spearman", "precision_top10"}
        assert document["metrics"]["kendall_tau"]["low"] is not None  # bootstrap interval
    comparison = (out / "comparison.md").read_text()
    assert "| synflow |" in comparison and "| naswot |" in comparison and "Seconds per architecture" in comparison
    scores = (out / "synflow" / "scores.csv").read_text()

    second = run_cli(*args)  # everything kept: nothing is scored again
    assert second.returncode == 0, second.stderr
    assert (out / "synflow" / "scores.csv").read_text() == scores
    assert json.loads((out / "synflow" / "ranking.json").read_text())["meta"]["architectures_scored_before"] == 6


def test_supernets_and_proxies_side_by_side(ground_truth, tmp_path):
    run = tmp_path / "spos-digits"
    trained = run_cli("train", "--method", "spos", *TINY_TRAIN, "--out", str(run))
    assert trained.returncode == 0, trained.stderr
    out = tmp_path / "both"
    result = run_cli("rank", "--checkpoint", str(run), "--proxy", "params", "zico", *TINY_PROXY,
                     "--ground-truth", str(ground_truth), "--calibration-images", "32", "--eval-images", "64",
                     "--no-mlflow", "--out", str(out))
    assert result.returncode == 0, result.stderr
    comparison = (out / "comparison.md").read_text()
    assert comparison.startswith("# Supernets and proxies ranking the same 6 architectures")
    for name in ("spos-digits", "params", "zico"):
        assert f"| {name} |" in comparison
        assert (out / name / "ranking.json").is_file()
    truth = [line.split(",")[2] for line in (out / "params" / "ranking.csv").read_text().splitlines()[1:]]
    assert truth == [line.split(",")[2] for line in (out / "spos-digits" / "ranking.csv").read_text().splitlines()[1:]]


def test_proxies_log_to_mlflow(ground_truth, tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/store.db"
    result = run_cli("rank", "--proxy", "params", *TINY_PROXY, "--ground-truth", str(ground_truth),
                     "--tracking-uri", uri, "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    client = MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.run_name for r in runs] == ["rank-proxy-params"]
    assert runs[0].data.params["proxy_C"] == "4" and "kendall_tau" in runs[0].data.metrics
    assert "seconds_per_architecture" in runs[0].data.metrics


def test_an_unknown_proxy_is_one_line_listing_the_accepted(ground_truth, tmp_path):
    one_line_error(run_cli("rank", "--proxy", "synflow", "synflo", *TINY_PROXY, "--ground-truth", str(ground_truth),
                           "--no-mlflow", "--out", str(tmp_path / "out")),
                   "unknown proxy 'synflo'", "accepted: grad_norm, snip, grasp, fisher, zico")
    assert not (tmp_path / "out").exists()


def test_nothing_to_rank_and_too_few_batches_are_refused(ground_truth, tmp_path):
    one_line_error(run_cli("rank", "--dataset", "digits", "--no-mlflow", "--out", str(tmp_path / "out")),
                   "give --checkpoint, --proxy or both")
    one_line_error(run_cli("rank", "--proxy", "zico", *TINY_PROXY, "--proxy-batches", "1", "--ground-truth",
                           str(ground_truth), "--no-mlflow", "--out", str(tmp_path / "out")),
                   "zico needs at least 2 batches")
    assert not (tmp_path / "out").exists()


def test_proxies_on_two_workers_score_what_one_process_scores(ground_truth, tmp_path):
    scores = {}
    for workers in ("1", "2"):
        out = tmp_path / f"workers{workers}"
        result = run_cli("rank", "--proxy", "grad_norm", "naswot", "synflow", *TINY_PROXY, "--workers", workers,
                         "--ground-truth", str(ground_truth), "--no-mlflow", "--out", str(out))
        assert result.returncode == 0, result.stderr
        scores[workers] = {name: [line.split(",")[1] for line in (out / name / "ranking.csv").read_text().splitlines()]
                           for name in ("grad_norm", "naswot", "synflow")}
    assert scores["2"] == scores["1"]
