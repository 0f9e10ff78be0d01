"""Plug-ins as a user runs them: a file outside the repository, named by its path, with --hp and the
run's budget, shown by its own name; and each mistake refused in one line before any run starts."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN = '''
from harness import Searcher, mutate_architecture, sample_architecture


class Climber(Searcher):
    """Mutates the best cell so far; wants the run's query budget, as Nevergrad's optimizers do."""

    name = "climber"

    def __init__(self, seed=0, budget=None, restarts=0):
        super().__init__(seed)
        if not isinstance(budget, int):
            raise ValueError(f"the harness should pass the run's budget, got {budget!r}")
        self.budget, self.restarts = budget, restarts

    def hyperparameters(self):
        return {"restarts": self.restarts}

    def _ask(self):
        if len(self.history) < 5:
            return sample_architecture(self.rng)
        return mutate_architecture(self.best(), self.rng)
'''

SAME_NAME = '''
from harness import Searcher, sample_architecture


class Impostor(Searcher):
    name = "{name}"

    def _ask(self):
        return sample_architecture(self.rng)
'''


@pytest.fixture
def user(tmp_path: Path) -> Path:
    """A user's folder outside the repository: plugins/ holds their files, work/ is where they run."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "climber.py").write_text(PLUGIN)
    (tmp_path / "plugins" / "broken.py").write_text("from harness import Searcher\nclass Broken(Searcher:\n")
    (tmp_path / "plugins" / "random_again.py").write_text(SAME_NAME.format(name="random_search"))
    (tmp_path / "plugins" / "climber_again.py").write_text(SAME_NAME.format(name="climber"))
    (tmp_path / "work").mkdir()
    return tmp_path


def run_in(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """``nas-harness ARGS`` run from ``folder``, with no PYTHONPATH."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=folder, capture_output=True,
                          text=True, timeout=300, env=env)


COMMON = ("--seeds", "3", "--budget", "20", "--no-mlflow", "--no-progress")
CLIMBER = "../plugins/climber.py:Climber"


def test_a_plugin_file_runs_beside_a_builtin_with_hyperparameters_and_the_budget(user: Path) -> None:
    work = user / "work"
    results = {}
    for workers in ("2", "1"):
        done = run_in(work, "compare", "--methods", "aging_evolution", CLIMBER, "--hp", f"{CLIMBER}:restarts=2",
                      "--hp", "aging_evolution:population_size=5", *COMMON, "--workers", workers,
                      "--out", f"out{workers}")
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
        results[workers] = json.loads((work / f"out{workers}" / "summary.json").read_text())
    methods = results["2"]["methods"]
    assert list(methods) == ["aging_evolution", "climber"]  # the class's own name, not the path
    assert methods["climber"]["spec"] == CLIMBER and methods["aging_evolution"]["spec"] == "aging_evolution"
    assert methods["climber"]["hyperparameters"] == {"budget": 20, "restarts": 2}
    assert methods["aging_evolution"]["hyperparameters"] == {"population_size": 5, "sample_size": 3}
    assert methods["climber"]["n_runs"] == 3
    one = results["1"]["methods"]
    for name in methods:  # a worker process finds the file again: the same runs whatever the worker count
        assert methods[name]["final_incumbent_test"] == one[name]["final_incumbent_test"]
    with open(work / "out2" / "trajectories.csv", newline="") as handle:
        assert {row["method"] for row in csv.DictReader(handle)} == {"aging_evolution", "climber"}
    assert f"climber = `{CLIMBER}`" in (work / "out2" / "report.md").read_text()


@pytest.mark.parametrize(("args", "fragment"), [
    (["--methods", "../plugins/missing.py:Climber"], "no file {root}/plugins/missing.py"),
    (["--methods", "../plugins/climber.py:Nope"], "plugins/climber.py defines no 'Nope' (it defines Climber)"),
    (["--methods", "../plugins/broken.py:Broken"], "importing {root}/plugins/broken.py raised SyntaxError"),
    (["--methods", CLIMBER, "--hp", "restarts=2"], "expected METHOD:KEY=VALUE"),
    (["--methods", CLIMBER, "--hp", "aging_evolution:population_size=5"],
     "--hp for 'aging_evolution', not a method of this comparison (methods: ../plugins/climber.py:Climber)"),
    (["--methods", CLIMBER, "--hp", f"{CLIMBER}:colour=1"], "unexpected keyword argument 'colour'"),
    (["--methods", CLIMBER, "--hp", f"{CLIMBER}:budget=10"],
     "budget=10 given as a hyper-parameter, but the harness passes"),
    (["--methods", CLIMBER, "--hp", f"{CLIMBER}:restarts=1", "--hp", f"{CLIMBER}:restarts=2"], "given twice"),
    (["--methods", "random_search", "../plugins/random_again.py:Impostor"],
     "calls itself 'random_search' (its name attribute), the name of another method"),
    (["--methods", CLIMBER, "../plugins/climber_again.py:Impostor"], "would both be shown as 'climber'"),
], ids=["missing-file", "missing-class", "import-fails", "hp-form", "hp-stray-method", "hp-rejected",
        "budget-conflict", "hp-twice", "builtin-name", "same-name"])
def test_plugin_mistakes_are_one_line_exit_2_before_any_run(user: Path, args: list[str], fragment: str) -> None:
    done = run_in(user / "work", "compare", *args, *COMMON, "--workers", "2", "--out", "out")
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("nas-harness: error: ")
    assert fragment.format(root=user) in lines[0]
    assert not (user / "work" / "out" / "trajectories.csv").exists()

