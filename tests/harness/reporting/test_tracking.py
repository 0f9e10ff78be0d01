import contextlib
import io
import logging
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harness.reporting import tracking
from harness.reporting.report import ReportMetadata, write_report
from harness.reporting.tracking import NullTracker, Tracker, make_tracker, ui_command
from harness.search.benchmark import TabularBenchmark
from harness.search.run import RunRecord, run_search
from harness.search.searcher import Searcher
from harness.space import NUM_ARCHITECTURES, Architecture

REPO = Path(__file__).resolve().parents[3]
BUDGET = 12


class SweepSearcher(Searcher):
    """Tries cells at random strides; enough to make distinct, deterministic trajectories."""

    name = "sweep"

    def hyperparameters(self):
        return {"stride": 7, "options": {"a": 1}}

    def _ask(self) -> Architecture:
        return Architecture.from_index(int(self.rng.integers(NUM_ARCHITECTURES)))


def make_records() -> tuple[TabularBenchmark, list[RunRecord]]:
    index = np.arange(NUM_ARCHITECTURES)
    test = 70.0 + 25.0 * ((index * 7919) % NUM_ARCHITECTURES) / NUM_ARCHITECTURES
    val = test - ((index * 31) % 7) / 10.0
    benchmark = TabularBenchmark("toy", val, test, "toy val", "toy test")
    return benchmark, [run_search(SweepSearcher(seed=s), benchmark, BUDGET) for s in (0, 1)]


@pytest.fixture(scope="session")
def template_store(tmp_path_factory):
    """A store with MLflow's schema created once (migrations take seconds); tests copy it."""
    folder = tmp_path_factory.mktemp("template")
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        tracker = Tracker(uri=f"sqlite:///{folder}/mlflow.db", experiment="template")
        tracker.start_parent("template")
        tracker.end()
    assert tracker.enabled, tracker.error
    return folder / "mlflow.db", stderr.getvalue()


@pytest.fixture
def store(template_store, tmp_path):
    shutil.copy(template_store[0], tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path}/mlflow.db"


def test_store_creation_is_quiet(template_store):
    _, stderr = template_store
    assert "Creating initial MLflow database tables" not in stderr
    assert "Context impl" not in stderr and "Running upgrade" not in stderr


def test_parent_child_runs_params_metrics_artifacts(store, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)
    benchmark, records = make_records()
    tracker = Tracker(uri=store)
    tracker.start_parent("compare", {"methods": ["sweep"], "budget": BUDGET})
    for record in records:
        tracker.log_child_run(record, {"reward_metric": benchmark.reward_metric})
    files = write_report(
        records, ReportMetadata.from_benchmark(benchmark, BUDGET), tmp_path / "report", n_boot=100
    )
    tracker.log_artifacts(files.all_paths())
    tracker.log_metrics({"sweep.mean": files.summary["methods"]["sweep"]["mean"]})
    parent_id = tracker.parent_run_id
    tracker.end()
    assert tracker.enabled, tracker.error

    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name(tracking.DEFAULT_EXPERIMENT)
    assert experiment.artifact_location == (tmp_path / "mlartifacts").as_uri()
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 3
    parent = client.get_run(parent_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["budget"] == str(BUDGET)
    assert parent.data.params["methods"] == '["sweep"]'
    assert parent.data.metrics["sweep.mean"] == pytest.approx(files.summary["methods"]["sweep"]["mean"])
    parent_artifacts = {a.path for a in client.list_artifacts(parent_id)}
    assert {
        "summary.json",
        "report.md",
        "trajectories.csv",
        "incumbent.png",
        "regret.png",
    } <= parent_artifacts

    children = sorted(
        (r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_id),
        key=lambda r: int(r.data.params["seed"]),
    )
    assert len(children) == 2
    for child, record in zip(children, records, strict=True):
        params = child.data.params
        assert child.info.status == "FINISHED"
        assert child.info.run_name == f"sweep-seed{record.seed}"
        assert params["method"] == "sweep" and params["seed"] == str(record.seed)
        assert params["benchmark"] == "toy" and params["budget"] == str(BUDGET)
        assert params["hp.stride"] == "7" and params["hp.options"] == '{"a": 1}'
        assert params["reward_metric"] == "toy val"
        assert params["package_version"] and params["git_commit"]
        for key in tracking.STEP_METRICS:
            history = sorted(client.get_metric_history(child.info.run_id, key), key=lambda m: m.step)
            assert [m.step for m in history] == list(range(1, BUDGET + 1))
            assert [m.value for m in history] == pytest.approx([getattr(row, key) for row in record.rows])
        assert [a.path for a in client.list_artifacts(child.info.run_id)] == [tracking.TRAJECTORY_ARTIFACT]
    assert not (tmp_path / "mlruns").exists()


def test_unwritable_store_warns_once_and_the_run_completes(tmp_path, caplog):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    tracker = Tracker(uri=f"sqlite:///{blocker}/mlflow.db")
    _, records = make_records()
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="nas_harness.tracking"):
        tracker.start_parent("compare", {"budget": BUDGET})
        for record in records:
            tracker.log_child_run(record)
        tracker.log_artifacts([blocker])
        tracker.end()
    assert time.perf_counter() - start < 5.0
    warnings = [r for r in caplog.records if r.name == "nas_harness.tracking"]
    assert len(warnings) == 1
    assert "MLflow tracking disabled" in warnings[0].getMessage()
    assert "\n" not in warnings[0].getMessage()
    assert not tracker.enabled and tracker.error


def test_warning_is_one_line_on_stderr(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    script = (
        "from harness.reporting.tracking import Tracker\n"
        f"t = Tracker(uri='sqlite:///{blocker}/mlflow.db')\n"
        "t.start_parent('x'); t.end(); print('completed')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == "completed"
    assert len(done.stderr.strip().splitlines()) == 1
    assert "MLflow tracking disabled" in done.stderr


def test_mlflow_error_midway_degrades_to_a_warning(store, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    _, records = make_records()
    tracker = Tracker(uri=store)
    tracker.start_parent("compare")

    def broken(*args, **kwargs):
        raise RuntimeError("database is on fire\nsecond line")

    monkeypatch.setattr(tracker._client, "log_batch", broken)
    with caplog.at_level(logging.WARNING, logger="nas_harness.tracking"):
        for record in records:
            tracker.log_child_run(record)
        tracker.end()
    warnings = [r.getMessage() for r in caplog.records if r.name == "nas_harness.tracking"]
    assert len(warnings) == 1 and "RuntimeError: database is on fire" in warnings[0]
    assert not tracker.enabled


def test_context_manager_marks_a_failed_comparison(store, tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ZeroDivisionError):
        with Tracker(uri=store) as tracker:
            tracker.start_parent("compare")
            parent_id = tracker.parent_run_id
            raise ZeroDivisionError("the comparison failed")
    assert MlflowClient(tracking_uri=store).get_run(parent_id).info.status == "FAILED"


def test_null_tracker_never_imports_mlflow():
    script = (
        "import sys\n"
        "from harness.reporting.tracking import make_tracker\n"
        "t = make_tracker(enabled=False)\n"
        "t.start_parent('x', {}); t.log_child_run(None); t.log_artifacts(['.']); t.end()\n"
        "assert 'mlflow' not in sys.modules, 'mlflow imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert isinstance(make_tracker(enabled=False), NullTracker)
    assert isinstance(make_tracker("sqlite:///x.db", enabled=False), NullTracker)
    assert make_tracker("sqlite:///x.db").uri == "sqlite:///x.db"


def test_default_uri_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(REPO)
    assert tracking.default_tracking_uri() == f"sqlite:///{REPO / 'results' / 'mlflow.db'}"
    assert tracking.default_artifact_location(tracking.default_tracking_uri()) == (
        (REPO / "results" / "mlartifacts").as_uri()
    )
    monkeypatch.chdir(tmp_path)
    assert tracking.default_tracking_uri() == f"sqlite:///{tmp_path.resolve() / 'results' / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5001")
    assert tracking.default_tracking_uri() == "http://127.0.0.1:5001"
    assert Tracker().uri == "http://127.0.0.1:5001"
    assert Tracker(uri="sqlite:////tmp/other.db").uri == "sqlite:////tmp/other.db"
    assert tracking.default_artifact_location("http://127.0.0.1:5001") is None


def test_ui_command():
    command = ui_command("sqlite:////tmp/x.db", 5123)
    assert command[-7:] == [
        "ui",
        "--backend-store-uri",
        "sqlite:////tmp/x.db",
        "--host",
        "127.0.0.1",
        "--port",
        "5123",
    ]
    assert "mlflow" in " ".join(command[:-7])


def test_provenance_params():
    values = tracking.provenance()
    assert set(values) == {"package_version", "git_commit", "git_dirty"}
    assert values["git_commit"] == "unknown" or len(values["git_commit"]) == 40


def test_a_long_mlflow_error_keeps_its_first_line_readable(caplog):
    url = "https://mlflow.org/docs/latest/self-hosting/migrate-from-file-store"
    first = f"The filesystem tracking backend is in maintenance mode; {'x ' * 150}See {url} for migration guidance."
    tracker = Tracker(uri="sqlite:////tmp/unused.db")
    with caplog.at_level(logging.WARNING, logger="nas_harness.tracking"):
        tracker._disable(RuntimeError(f"{first}\nsecond line"))
    assert url in tracker.error and "second line" not in tracker.error  # whole, where 300 characters cut the URL
    tracker._disable(RuntimeError("word " * 400))
    assert tracker.error.endswith(" ...") and len(tracker.error) < 1100
    assert "wor ..." not in tracker.error  # cut between words


def test_ui_store_and_port_checks(tmp_path, monkeypatch):
    from harness.errors import UserError
    from harness.reporting.tracking import check_port_free, check_ui_store

    store = tmp_path / "mlflow.db"
    store.write_bytes(b"")
    assert check_ui_store(f"sqlite:///{store}") == f"sqlite:///{store}"
    assert check_ui_store("http://127.0.0.1:5001") == "http://127.0.0.1:5001"
    for uri, match in ((str(store), "not a store URI"), (f"sqlite:///{tmp_path}/none.db", "no tracking store at"),
                       (f"sqlite:///{tmp_path}", "not a readable file"), ("sqlite://", "names no database file")):
        with pytest.raises(UserError, match=match):
            check_ui_store(uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store}")
    assert check_ui_store(None) == f"sqlite:///{store}"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(UserError, match="already in use"):
            check_port_free(busy.getsockname()[1])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    check_port_free(free)
