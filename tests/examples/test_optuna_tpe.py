"""examples/optuna_tpe.py: Optuna's TPE as a plug-in searcher meets the contract and runs beside the built-ins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("optuna")  # in the dev extra, so `make test` runs these

from examples.optuna_tpe import OptunaTPE  # noqa: E402
from harness.search.searcher import get_searcher  # noqa: E402
from harness.testing import check_fresh_process, check_searcher, drive  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "optuna_tpe.py"


def test_optuna_tpe_meets_the_contract() -> None:
    report = check_searcher(OptunaTPE)
    assert report.passed


def test_loaded_by_its_file_it_is_found_again_in_a_fresh_process() -> None:
    cls = get_searcher(f"{EXAMPLE}:OptunaTPE")
    assert cls is not OptunaTPE and cls.name == "optuna_tpe"
    check_fresh_process(cls)


def test_startup_trials_are_a_hyperparameter_and_a_resumed_state_is_independent() -> None:
    searcher = OptunaTPE(seed=4, n_startup_trials=5)
    assert searcher.hyperparameters()["n_startup_trials"] == 5
    drive(searcher, 12)
    state = searcher.state_dict()
    first, second = OptunaTPE(seed=0), OptunaTPE(seed=0)
    first.load_state_dict(state)
    drive(first, 5)  # must not change the state the second one loads
    second.load_state_dict(state)
    assert len(second.study.trials) == 12 and len(first.study.trials) == 17


def test_compare_runs_it_by_file_beside_the_builtins(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "compare", "--methods", "aging_evolution", f"{EXAMPLE}:OptunaTPE",
         "--hp", f"{EXAMPLE}:OptunaTPE:n_startup_trials=5", "--seeds", "2", "--budget", "25", "--workers", "2",
         "--no-mlflow", "--no-progress", "--out", str(tmp_path / "out")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    methods = json.loads((tmp_path / "out" / "summary.json").read_text())["methods"]
    assert list(methods) == ["aging_evolution", "optuna_tpe"]
    assert methods["optuna_tpe"]["spec"] == f"{EXAMPLE}:OptunaTPE"
    assert methods["optuna_tpe"]["hyperparameters"]["n_startup_trials"] == 5
    assert methods["optuna_tpe"]["n_runs"] == 2
