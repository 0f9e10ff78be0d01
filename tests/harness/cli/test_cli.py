"""The command line: outputs, bad inputs (one line, exit 2, no traceback), Ctrl-C, plug-ins."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main

ROOT = Path(__file__).resolve().parents[3]
BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def run_cli(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


def test_query_json(capsys):
    assert main(["query", BEST, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows == [{"arch": BEST, "val_accuracy": pytest.approx(93.988), "test_accuracy": pytest.approx(93.988),
                     "params": pytest.approx(1.288506), "flops": pytest.approx(184.73025)}]


def test_query_text_names_the_metrics(capsys):
    assert main(["query", BEST, BEST.replace("skip_connect", "none")]) == 0
    out = capsys.readouterr().out
    assert "val = analog-nasbench baseline_accuracy" in out
    assert out.count("params") == 2


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["query", "|nor_conv_3x3~0|"], "malformed architecture"),
        (["query", BEST.replace("nor_conv_1x1", "x").replace("skip_connect", "conv_5x5")], "unknown op 'conv_5x5'"),
        (["query", BEST, "--benchmark", "nasbench101"], "unknown benchmark 'nasbench101'; accepted: analog"),
        (["query", BEST, "--benchmark", "nats:/nonexistent/NATS-tss"], "/nonexistent/NATS-tss"),
        (["compare", "--methods", "simulated_annealing"], "unknown searcher 'simulated_annealing'; valid: aging_evolution"),
        (["compare", "--budget", "0"], "expected a positive integer, got 0"),
        (["compare", "--budget", "-5"], "expected a positive integer"),
        (["compare", "--seeds", "0"], "expected a positive integer, got 0"),
        (["compare", "--seeds", "many"], "expected a positive integer, got 'many'"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, fragment):
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert fragment in lines[0]


def test_corrupt_table_file_is_one_line(tmp_path):
    bad = tmp_path / "data.anb"
    bad.write_bytes(b"\x80\x04garbage")
    result = run_cli("query", BEST, "--benchmark", f"analog:{bad}")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "cannot read" in result.stderr


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def test_compare_is_identical_whatever_the_worker_count(tmp_path):
    common = ["compare", "--methods", "random_search", "aging_evolution", "reinforce", "--seeds", "4",
              "--budget", "40", "--no-mlflow", "--no-progress"]
    assert main([*common, "--workers", "1", "--out", str(tmp_path / "one")]) == 0
    assert main([*common, "--workers", "2", "--out", str(tmp_path / "two")]) == 0
    one, two = _summary(tmp_path / "one"), _summary(tmp_path / "two")
    for method in ("random_search", "aging_evolution", "reinforce"):
        assert one["methods"][method]["final_incumbent_test"] == two["methods"][method]["final_incumbent_test"]
    rows = lambda p: sorted(map(tuple, csv.reader(open(p / "trajectories.csv"))))  # noqa: E731
    strip = lambda rs: [r[:-1] for r in rs]  # noqa: E731  (elapsed seconds differ)
    assert strip(rows(tmp_path / "one")) == strip(rows(tmp_path / "two"))
    for name in ("summary.json", "report.md", "trajectories.csv", "incumbent.png", "regret.png"):
        assert (tmp_path / "two" / name).is_file()


def test_compare_logs_to_mlflow(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/store.db"
    assert main(["compare", "--methods", "random_search", "--seeds", "2", "--budget", "10", "--workers", "1",
                 "--tracking-uri", uri, "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    client = MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(runs) == 3 and len(children) == 2
    assert {r.data.params["seed"] for r in children} == {"0", "1"}
    assert all(r.data.params["budget"] == "10" for r in children)


def test_unwritable_store_still_writes_results(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        result = run_cli("compare", "--methods", "random_search", "--seeds", "2", "--budget", "5",
                         "--workers", "1", "--tracking-uri", f"sqlite:///{locked}/sub/store.db",
                         "--out", str(tmp_path / "out"), "--no-progress")
    finally:
        locked.chmod(0o700)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "summary.json").is_file()
    if os.geteuid() != 0:  # root can write anywhere, so no warning is due
        assert "warning" in result.stderr.lower()


BLOCKING_SEARCHER = """
import threading

from harness import Searcher


class Blocking(Searcher):
    \"\"\"Never answers: a run that cannot finish before the test interrupts the comparison.\"\"\"

    def _ask(self):
        threading.Event().wait()
"""


def test_ctrl_c_keeps_finished_runs(tmp_path):
    """The two reinforce_lstm runs finish; the two runs of a searcher that never answers are still
    going when Ctrl-C arrives, so the interruption cannot come too late, however fast the machine."""
    (tmp_path / "blocking.py").write_text(BLOCKING_SEARCHER)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "compare", "--methods", "reinforce_lstm", "blocking:Blocking",
         "--seeds", "2", "--budget", "150", "--workers", "2", "--no-mlflow", "--no-progress", "--out", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    csv_path = out / "trajectories.csv"
    deadline = time.time() + 300  # waits for the two runs to be written, not for a moment to strike
    while not (csv_path.is_file() and csv_path.read_text().count("\n") == 1 + 2 * 150):
        assert proc.poll() is None, proc.communicate()[1]
        assert time.time() < deadline, "the two reinforce_lstm runs were not written"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    summary = _summary(out)
    assert summary["interrupted"] is True
    finished = summary["methods"]["reinforce_lstm"]["final_incumbent_test"]
    assert 2 <= len(finished) < 200
    lines = csv_path.read_text().strip().splitlines()
    assert len(lines) - 1 == 150 * len(finished)
    assert "blocking:Blocking" not in summary["methods"] or not summary["methods"]["blocking:Blocking"]["n_runs"]


PLUGIN_EXAMPLE = "examples/hill_climber.py"


def test_documented_plugin_runs_beside_builtins(tmp_path):
    guide = (ROOT / "docs" / "plugins.md").read_text()
    source = (ROOT / PLUGIN_EXAMPLE).read_text()
    body = source[source.index("from harness import"):]
    assert body.strip() in guide, "docs/plugins.md must show the plug-in searcher exactly as in examples/"
    from examples.hill_climber import HillClimber
    from harness.testing import check_searcher

    check_searcher(HillClimber)
    assert main(["compare", "--methods", "random_search", "examples.hill_climber:HillClimber",
                 "--seeds", "3", "--budget", "30", "--workers", "2", "--no-mlflow", "--no-progress",
                 "--out", str(tmp_path)]) == 0
    assert set(_summary(tmp_path)["methods"]) == {"random_search", "examples.hill_climber:HillClimber"}


def test_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("random_search", "reinforce", "reinforce_lstm", "aging_evolution"):
        assert name in out
