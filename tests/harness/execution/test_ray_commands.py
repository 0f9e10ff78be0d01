"""The commands on Ray, as a user runs them: the same numbers as locally, and a killed worker costs nothing.

Every command joins the folder's Ray instance (``conftest.ray_address``) as it would a cluster;
``tests/harness/execution/test_executors.py`` and the bench start instances of their own."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parents[3]
TINY_TRAIN = ("--dataset", "digits", "--C", "4", "--N", "1", "--epochs", "1", "--steps-per-epoch", "4",
              "--batch-size", "16", "--threads", "1", "--no-mlflow", "--no-progress")
#: Columns measured in wall-clock time: they differ between any two runs.
CLOCK_COLUMNS = {"elapsed_seconds", "seconds", "images_per_second"}

#: A searcher that, on its first attempt at seed 1, writes its process id and hangs until killed.
DIES_ONCE = """
import os
import time
from pathlib import Path

from harness import Searcher, sample_architecture


class DiesOnce(Searcher):
    name = "dies_once"

    def _ask(self):
        mark = Path(MARKS) / f"seed{self.seed}.pid"
        if self.seed == 1 and not mark.exists():
            mark.write_text(str(os.getpid()))
            time.sleep(600)
        return sample_architecture(self.rng)
"""


def cli(*args: str, env: dict | None = None, cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return sorted(({k: v for k, v in row.items() if k not in CLOCK_COLUMNS} for row in csv.DictReader(handle)),
                      key=lambda row: json.dumps(row, sort_keys=True))


def test_compare_on_ray_equals_local(tmp_path, ray_address):
    args = ("compare", "--methods", "random_search", "aging_evolution", "--seeds", "3", "--budget", "25",
            "--workers", "2", "--no-mlflow", "--no-progress")
    cli(*args, "--out", str(tmp_path / "local"))
    cli(*args, "--executor", "ray", "--ray-address", ray_address, "--out", str(tmp_path / "ray"))
    assert rows(tmp_path / "ray" / "trajectories.csv") == rows(tmp_path / "local" / "trajectories.csv")


@pytest.fixture(scope="module")
def supernet(tmp_path_factory, ray_address) -> tuple[Path, Path]:
    """A tiny digits supernet and stand-alone results for 12 architectures (both made by the commands)."""
    folder = tmp_path_factory.mktemp("ray-supernet")
    cli("train", "--method", "spos", *TINY_TRAIN, "--out", str(folder / "spos"))
    code = ("from harness.evaluation.rank import select_architectures\n"
            "for a in select_architectures('sample', 12, 0): print(a.to_string())")
    archs = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    (folder / "archs.txt").write_text(archs.stdout)
    cli("standalone", "--archs-file", str(folder / "archs.txt"), "--dataset", "digits", "--epochs", "1", "--C", "4",
        "--N", "1", "--steps-per-epoch", "2", "--threads", "1", "--workers", "2", "--executor", "ray",
        "--ray-address", ray_address, "--no-progress", "--out", str(folder / "sa"))
    return folder / "spos", folder / "sa" / "standalone.csv"


def test_rank_on_ray_equals_local_and_standalone_on_ray_equals_local(supernet, tmp_path, ray_address):
    checkpoint, truth = supernet
    args = ("rank", "--checkpoint", str(checkpoint), "--ground-truth", str(truth), "--calibration-images", "32",
            "--eval-images", "64", "--threads", "1", "--no-mlflow", "--no-progress")
    cli(*args, "--out", str(tmp_path / "local1"))
    cli(*args, "--workers", "2", "--out", str(tmp_path / "local2"))
    cli(*args, "--workers", "2", "--executor", "ray", "--ray-address", ray_address, "--out", str(tmp_path / "ray"))
    expected = (tmp_path / "local1" / "ranking.csv").read_text()
    assert (tmp_path / "local2" / "ranking.csv").read_text() == expected
    assert (tmp_path / "ray" / "ranking.csv").read_text() == expected
    cli("standalone", "--archs-file", str(truth.parent.parent / "archs.txt"), "--dataset", "digits", "--epochs", "1",
        "--C", "4", "--N", "1", "--steps-per-epoch", "2", "--threads", "1", "--no-progress",
        "--out", str(tmp_path / "sa-local"))
    assert rows(tmp_path / "sa-local" / "standalone.csv") == rows(truth)
    again = cli("standalone", "--archs-file", str(truth.parent.parent / "archs.txt"), "--dataset", "digits",
                "--epochs", "1", "--C", "4", "--N", "1", "--steps-per-epoch", "2", "--threads", "1", "--workers", "2",
                "--executor", "ray", "--ray-address", ray_address, "--no-progress", "--out", str(truth.parent))
    assert "12 of 12 architectures already in" in again.stderr  # a re-run skips what finished


def test_train_several_seeds_on_ray_equals_local(tmp_path, ray_address):
    for executor in ("local", "ray"):
        where = ("--ray-address", ray_address) if executor == "ray" else ()
        cli("train", "--method", "spos", *TINY_TRAIN, "--seeds", "0", "1", "--workers", "2", "--executor", executor,
            *where, "--out", str(tmp_path / executor))
    for seed in (0, 1):
        local = (tmp_path / "local" / f"seed{seed}" / "history.jsonl").read_text().splitlines()
        ray = (tmp_path / "ray" / f"seed{seed}" / "history.jsonl").read_text().splitlines()
        assert [json.loads(line)["train_loss"] for line in ray] == [json.loads(line)["train_loss"] for line in local]


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_worker_killed_mid_run_is_retried_and_nothing_is_lost_or_duplicated(tmp_path, executor, request):
    marks = tmp_path / "marks"
    marks.mkdir()
    # the folder is written into the plug-in: a cluster's workers do not see this process's environment
    (tmp_path / "dies_once.py").write_text(DIES_ONCE.replace("MARKS", repr(str(marks))))
    mark = marks / "seed1.pid"

    def kill_the_stuck_worker():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if mark.exists() and mark.read_text():
                os.kill(int(mark.read_text()), signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_stuck_worker, daemon=True)
    killer.start()
    args = ("compare", "--methods", str(tmp_path / "dies_once.py") + ":DiesOnce", "random_search", "--seeds", "3",
            "--budget", "20", "--workers", "2", "--no-mlflow", "--no-progress")
    where = ("--ray-address", request.getfixturevalue("ray_address")) if executor == "ray" else ()
    cli(*args, "--executor", executor, *where, "--out", str(tmp_path / "killed"))
    killer.join()
    assert mark.exists()  # the worker really was killed mid-run
    cli(*args, "--out", str(tmp_path / "clean"))
    killed, clean = rows(tmp_path / "killed" / "trajectories.csv"), rows(tmp_path / "clean" / "trajectories.csv")
    assert killed == clean and len(killed) == 2 * 3 * 20
