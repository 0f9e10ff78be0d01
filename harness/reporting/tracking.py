"""Experiment tracking behind a small interface, so method code never imports mlflow.

A comparison is one MLflow *parent* run; every (method, seed) run is a *child* run with
its parameters, its trajectory as step metrics (sent in batches, which is what keeps 60
runs of 150 queries to a few seconds) and its trajectory CSV as an artifact. The report
and plots are artifacts of the parent. Tracking is an observer: if the store cannot be
written or MLflow raises, a ``Tracker`` says so in one line on stderr, stops tracking and
lets the comparison finish. ``NullTracker`` (``--no-mlflow``) does nothing and never
imports mlflow.

Default store: ``sqlite:///<project root or cwd>/results/mlflow.db`` with artifacts in
``results/mlartifacts`` next to it; ``$MLFLOW_TRACKING_URI`` or an explicit URI overrides.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.filelock import locked
from harness.search.run import RunRecord

logger = logging.getLogger("nas_harness.tracking")

DEFAULT_EXPERIMENT = "nas-harness"
PACKAGE = "nas-harness"
#: Metrics logged per query of a child run, as MLflow step metrics (step = query number).
STEP_METRICS = ("incumbent_test", "incumbent_val", "val_accuracy")
TRAJECTORY_ARTIFACT = "trajectory.csv"

# MLflow's own limits on one log_batch call.
_MAX_METRICS_PER_BATCH = 1000
_MAX_PARAMS_PER_BATCH = 100
_MAX_PARAM_VALUE = 6000
# Loggers whose INFO lines (table creation, alembic migrations) are start-up noise.
_NOISY_LOGGERS = ("alembic", "alembic.runtime.migration", "mlflow.store.db.utils")

_PROJECT_ROOT = Path(__file__).resolve().parents[2]


# -- where things go ------------------------------------------------------------------------------
def results_root() -> Path:
    """The project checkout when working inside it, else the current directory."""
    cwd = Path.cwd().resolve()
    if (_PROJECT_ROOT / "pyproject.toml").is_file() and cwd.is_relative_to(_PROJECT_ROOT):
        return _PROJECT_ROOT
    return cwd


def default_tracking_uri() -> str:
    """``$MLFLOW_TRACKING_URI`` if set, else the sqlite store under ``results/``."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{(results_root() / 'results' / 'mlflow.db').as_posix()}"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other stores or in-memory sqlite)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].split("?", 1)[0]
    if not path or path == ":memory:":
        return None
    return Path(path)


def default_artifact_location(uri: str) -> str | None:
    """``mlartifacts/`` beside a sqlite database (as a file URI); None lets other stores decide."""
    db = sqlite_path(uri)
    if db is None:
        return None
    return (db.resolve().parent / "mlartifacts").as_uri()


#: The stores ``nas-harness ui`` browses, in the words its refusals use.
UI_STORES = ("sqlite:///PATH/TO/mlflow.db (a store a compare, train or rank wrote), http(s)://HOST:PORT (a "
             "tracking server), or a postgresql:// or mysql:// database")
#: MLflow refuses its old folder store (``file://``, or a bare path) unless told otherwise; the harness writes sqlite.
_UI_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql")


def check_ui_store(uri: str | None = None) -> str:
    """The store ``uri`` (default: ``default_tracking_uri()``) when there is one to browse; else a UserError.

    The UI only reads, so a store that does not exist is refused rather than created empty,
    and a bare path (MLflow would take it for a folder of runs) is refused as not a URI.
    """
    uri = uri or default_tracking_uri()
    scheme = uri.split("://", 1)[0].lower().split("+", 1)[0] if "://" in uri else ""
    if not scheme:
        raise UserError(f"--tracking-uri {uri} is not a store URI; accepted: {UI_STORES}")
    if scheme == "file":
        raise UserError(f"--tracking-uri {uri}: MLflow no longer serves folder (file://) stores; accepted: {UI_STORES}")
    if scheme not in _UI_SCHEMES:
        raise UserError(f"--tracking-uri {uri}: unknown kind of store {scheme!r}; accepted: {UI_STORES}")
    if scheme == "sqlite":
        db = sqlite_path(uri)
        if db is None:
            raise UserError(f"--tracking-uri {uri} names no database file (an in-memory store holds nothing to "
                            f"browse); accepted: {UI_STORES}")
        if not db.exists():
            raise UserError(f"no tracking store at {db}; run a compare first, or pass --tracking-uri")
        if not db.is_file() or not os.access(db, os.R_OK):
            raise UserError(f"the tracking store {db} is not a readable file; pass --tracking-uri")
    return uri


def check_port_free(port: int, host: str = "127.0.0.1") -> None:
    """A UserError when nothing could listen on ``host``:``port`` (another server holds it), before a server starts."""
    import errno
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no conflict
        try:
            sock.bind((host, int(port)))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UserError(f"port {port} on {host} is already in use; pick another with --port") from None
            raise UserError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port") from None


def ui_command(uri: str | None = None, port: int = 5000) -> list[str]:
    """The command line that serves the MLflow UI for ``uri`` on 127.0.0.1:``port``."""
    uri = uri or default_tracking_uri()
    executable = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or shutil.which("mlflow")
    program = [executable] if executable else [sys.executable, "-m", "mlflow"]
    return [*program, "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(int(port))]


# -- provenance ----------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def package_version() -> str:
    """The installed nas-harness version, or 'unknown' when running from an uninstalled tree."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown"


@lru_cache(maxsize=1)
def git_state() -> tuple[str, bool | None]:
    """(commit of HEAD, whether tracked files differ from it) of the project checkout, or ('unknown', None)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=_PROJECT_ROOT, capture_output=True, text=True, timeout=5, check=True
        )
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return ("unknown", None)
    try:
        dirty: bool | None = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        dirty = None
    return (commit or "unknown", dirty)


def provenance() -> dict[str, str]:
    """Parameters every run carries: package version and git commit."""
    commit, dirty = git_state()
    return {
        "package_version": package_version(),
        "git_commit": commit,
        "git_dirty": "unknown" if dirty is None else str(dirty).lower(),
    }


def _param_value(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, (Mapping, list, tuple)):
        text = json.dumps(value, sort_keys=True, default=str)
    else:
        text = str(value)
    return text if len(text) <= _MAX_PARAM_VALUE else text[: _MAX_PARAM_VALUE - 3] + "..."


def _param_key(key: str) -> str:
    allowed = set("_-./ ")
    return "".join(c if c.isalnum() or c in allowed else "_" for c in str(key))[:250]


def run_params(record: RunRecord, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """A child run's parameters: method, seed, benchmark, budget, ``hp.*``, provenance, extras."""
    params: dict[str, Any] = {
        "method": record.method,
        "seed": record.seed,
        "benchmark": record.benchmark,
        "budget": record.budget,
        "queries_done": len(record.rows),
    }
    params.update({f"hp.{name}": value for name, value in record.hyperparameters.items()})
    params.update(provenance())
    params.update(extra or {})
    return {_param_key(k): _param_value(v) for k, v in params.items()}


# -- the interface --------------------------------------------------------------------------------
class BaseTracker:
    """What the harness calls; every method is a no-op here. Usable as a context manager."""

    enabled: bool = False
    #: The store runs go to (None when nothing is tracked).
    uri: str | None = None

    def start_parent(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        """Open the run that groups a comparison's runs."""

    def log_child_run(self, record: RunRecord, params: Mapping[str, Any] | None = None) -> None:
        """Log one finished run under the parent."""

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Log figures on the parent (``step``: e.g. the epoch of a training run)."""

    def resume_parent(self, run_id: str) -> None:
        """Reopen an earlier parent run (a resumed training run logs into the same run)."""

    def parent_exists(self, run_id: str) -> bool:
        """Whether ``run_id`` is a run of this tracker's experiment in its store (so it can be resumed)."""
        return False

    def logged_children(self) -> set[tuple[str, int]]:
        """(method, seed) of every child run already logged under the current parent."""
        return set()

    def log_artifacts(self, paths: Iterable[str | Path], artifact_path: str | None = None) -> None:
        """Attach files or folders (report, plots) to the parent."""

    def end(self, status: str = "FINISHED") -> None:
        """Close the parent run with ``status`` (FINISHED, FAILED or KILLED)."""

    @property
    def parent_run_id(self) -> str | None:
        return None

    def __enter__(self) -> BaseTracker:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.end("FINISHED")
        else:
            self.end("KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED")


class NullTracker(BaseTracker):
    """Tracks nothing (``--no-mlflow``); never imports mlflow."""


#: The longest error line a tracking warning shows whole; a longer one is cut at a word boundary.
_MAX_DETAIL = 1000


def _shorten(line: str, limit: int = _MAX_DETAIL) -> str:
    """``line`` whole when it fits in ``limit`` characters, else cut before the word that crosses it, with '...'."""
    if len(line) <= limit:
        return line
    cut = line.rfind(" ", 0, limit - 3)
    return line[: cut if cut > 0 else limit - 3].rstrip() + " ..."


@contextlib.contextmanager
def _quiet_startup() -> Iterator[None]:
    """Hide INFO chatter of store creation and schema migration; warnings and errors still show."""
    saved = {name: logging.getLogger(name).level for name in _NOISY_LOGGERS}
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            # SQLAlchemy deprecation raised from inside MLflow's store; nothing a user can act on.
            warnings.filterwarnings(
                "ignore", message=r".*noload.*loader strategy", category=DeprecationWarning
            )
            yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


class Tracker(BaseTracker):
    """Logs to MLflow through ``MlflowClient`` (no global active run), degrading to a warning.

    Nothing is imported or opened until the first call, so building one is free.
    """

    def __init__(
        self,
        uri: str | None = None,
        experiment: str = DEFAULT_EXPERIMENT,
        artifact_location: str | None = None,
    ) -> None:
        self.uri = uri or default_tracking_uri()
        self.experiment = experiment
        self.artifact_location = artifact_location or default_artifact_location(self.uri)
        self.enabled = True
        self.error: str | None = None
        self._client: Any = None
        self._experiment_id: str | None = None
        self._parent_id: str | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None

    # -- failure handling -------------------------------------------------------------------
    def _disable(self, exc: BaseException) -> None:
        lines = str(exc).strip().splitlines()
        detail = _shorten(lines[0]) if lines else ""
        self.error = f"{type(exc).__name__}: {detail}"
        self.enabled = False
        logger.warning("MLflow tracking disabled (%s); %s; the run continues untracked", self.uri, self.error)

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except Exception as exc:  # tracking must never stop a comparison
            self._disable(exc)

    # -- setup --------------------------------------------------------------------------------------
    def _check_sqlite_store(self) -> None:
        """Fail fast on an unusable sqlite path (MLflow itself retries for minutes)."""
        db = sqlite_path(self.uri)
        if db is None:
            return
        db.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(db.parent, os.W_OK | os.X_OK) or (db.exists() and not os.access(db, os.W_OK)):
            raise PermissionError(f"cannot write the tracking database {db}")
        if db.exists() and not db.is_file():
            raise IsADirectoryError(f"the tracking database {db} is not a file")

    def _ensure_client(self) -> bool:
        if not self.enabled:
            return False
        if self._client is not None:
            return True
        with self._guard():
            self._check_sqlite_store()
            db = sqlite_path(self.uri)
            # Two processes creating the same new sqlite store race on its schema migration
            # ("duplicate column name"): the first to take the lock creates it.
            with _quiet_startup(), locked(db.with_name(db.name + ".lock")) if db is not None else contextlib.nullcontext():
                from mlflow import MlflowClient

                client = MlflowClient(tracking_uri=self.uri)
                found = client.get_experiment_by_name(self.experiment)
                if found is None:
                    experiment_id = client.create_experiment(
                        self.experiment, artifact_location=self.artifact_location
                    )
                else:
                    experiment_id = found.experiment_id
            self._client, self._experiment_id = client, experiment_id
        return self._client is not None

    def _log_batch(self, run_id: str, params: Mapping[str, str], metrics: list[Any]) -> None:
        from mlflow.entities import Param

        param_list = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(param_list), _MAX_PARAMS_PER_BATCH):
            chunk = param_list[i : i + _MAX_PARAMS_PER_BATCH]
            # The first metric chunk rides along with the first parameter chunk.
            first = metrics[: _MAX_METRICS_PER_BATCH - len(chunk)] if i == 0 else []
            self._client.log_batch(run_id, metrics=first, params=chunk)
            if i == 0:
                metrics = metrics[len(first) :]
        for i in range(0, len(metrics), _MAX_METRICS_PER_BATCH):
            self._client.log_batch(run_id, metrics=metrics[i : i + _MAX_METRICS_PER_BATCH])

    def _scratch_dir(self) -> Path:
        if self._scratch is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="nas-harness-tracking-")
        return Path(self._scratch.name)

    # -- the interface ------------------------------------------------------------------------------
    @property
    def parent_run_id(self) -> str | None:
        return self._parent_id

    def start_parent(self, name: str, params: Mapping[str, Any] | None = None) -> None:
        if not self._ensure_client():
            return
        with self._guard():
            run = self._client.create_run(self._experiment_id, run_name=name)
            self._parent_id = run.info.run_id
            merged = {**provenance(), **(params or {})}
            self._log_batch(self._parent_id, {_param_key(k): _param_value(v) for k, v in merged.items()}, [])

    def log_child_run(self, record: RunRecord, params: Mapping[str, Any] | None = None) -> None:
        if not self._ensure_client():
            return
        with self._guard():
            from mlflow.entities import Metric

            start_ms = int(time.time() * 1000)
            tags = {"mlflow.parentRunId": self._parent_id} if self._parent_id else None
            run = self._client.create_run(
                self._experiment_id,
                start_time=start_ms,
                tags=tags,
                run_name=f"{record.method}-seed{record.seed}",
            )
            run_id = run.info.run_id
            metrics = [
                Metric(key, float(getattr(row, key)), start_ms + int(row.elapsed_seconds * 1000), row.query)
                for row in record.rows
                for key in STEP_METRICS
            ]
            self._log_batch(run_id, run_params(record, params), metrics)
            from harness.reporting.report import write_trajectories_csv

            folder = self._scratch_dir() / run_id
            folder.mkdir()
            csv_path = write_trajectories_csv([record], folder / TRAJECTORY_ARTIFACT)
            self._client.log_artifact(run_id, str(csv_path))
            shutil.rmtree(folder, ignore_errors=True)
            complete = record.complete
            self._client.set_terminated(run_id, "FINISHED" if complete else "KILLED")

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        if not self._ensure_client() or self._parent_id is None:
            return
        with self._guard():
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            entries = [Metric(_param_key(k), float(v), now, int(step)) for k, v in metrics.items()]
            self._log_batch(self._parent_id, {}, entries)

    def resume_parent(self, run_id: str) -> None:
        if not self._ensure_client():
            return
        with self._guard():
            self._client.update_run(run_id, status="RUNNING")
            self._parent_id = run_id

    def parent_exists(self, run_id: str) -> bool:
        if not self._ensure_client():
            return False
        try:
            run = self._client.get_run(run_id)
        except Exception:  # not in this store: a new parent is started instead
            return False
        return run.info.experiment_id == self._experiment_id and run.info.lifecycle_stage == "active"

    def logged_children(self) -> set[tuple[str, int]]:
        if not self._ensure_client() or self._parent_id is None:
            return set()
        found: set[tuple[str, int]] = set()
        with self._guard():
            token = None
            while True:
                page = self._client.search_runs([self._experiment_id], max_results=1000, page_token=token,
                                                filter_string=f"tags.mlflow.parentRunId = '{self._parent_id}'")
                for run in page:
                    params = run.data.params
                    if "method" in params and "seed" in params:
                        found.add((params["method"], int(params["seed"])))
                token = page.token
                if not token:
                    break
        return found

    def log_artifacts(self, paths: Iterable[str | Path], artifact_path: str | None = None) -> None:
        if not self._ensure_client() or self._parent_id is None:
            return
        with self._guard():
            for path in map(Path, paths):
                if path.is_dir():
                    self._client.log_artifacts(self._parent_id, str(path), artifact_path)
                elif path.is_file():
                    self._client.log_artifact(self._parent_id, str(path), artifact_path)

    def end(self, status: str = "FINISHED") -> None:
        if self._parent_id is not None and self.enabled and self._client is not None:
            with self._guard():
                self._client.set_terminated(self._parent_id, status)
        self._parent_id = None
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None


def make_tracker(
    uri: str | None = None, enabled: bool = True, experiment: str = DEFAULT_EXPERIMENT
) -> BaseTracker:
    """A ``Tracker`` for ``uri`` (default store when None), or a ``NullTracker`` when disabled."""
    return Tracker(uri=uri, experiment=experiment) if enabled else NullTracker()
