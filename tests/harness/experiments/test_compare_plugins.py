"""run_compare with a plug-in named by its file: what MLflow is given for it (name, spec, budget)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UserError
from harness.experiments.compare import CompareSettings, method_labels, run_compare
from harness.reporting import tracking
from harness.reporting.tracking import NullTracker, run_params

PLUGIN = '''
from harness import Searcher, sample_architecture


class Sampler(Searcher):
    name = "sampler"

    def __init__(self, seed=0, budget=None):
        super().__init__(seed)
        self.budget = budget

    def _ask(self):
        return sample_architecture(self.rng)
'''


class Recording(NullTracker):
    """Keeps what each child run would be logged with."""

    def __init__(self) -> None:
        self.children: list[tuple[str, dict]] = []

    def log_child_run(self, record, extra=None) -> None:
        self.children.append((f"{record.method}-seed{record.seed}", run_params(record, extra)))


def test_mlflow_names_a_plugin_run_by_its_class_name_and_keeps_its_path(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "sampler.py").write_text(PLUGIN)
    spec = f"{tmp_path}/sampler.py:Sampler"
    recorder = Recording()
    monkeypatch.setattr(tracking, "make_tracker", lambda *args, **kwargs: recorder)
    outcome = run_compare(CompareSettings(methods=["random_search", spec], seeds=[0, 1], budget=12, workers=1,
                                          out_dir=tmp_path / "out", progress=False))
    assert [r.method for r in outcome.records] == ["random_search", "random_search", "sampler", "sampler"]
    logged = dict(recorder.children)
    assert set(logged) == {"random_search-seed0", "random_search-seed1", "sampler-seed0", "sampler-seed1"}
    assert logged["sampler-seed1"]["method"] == "sampler" and logged["sampler-seed1"]["method_spec"] == spec
    assert logged["sampler-seed1"]["hp.budget"] == "12"
    assert logged["random_search-seed0"]["method_spec"] == "random_search"
    assert "hp.budget" not in logged["random_search-seed0"]  # it does not take the budget


def test_display_names_must_differ(tmp_path: Path) -> None:
    (tmp_path / "sampler.py").write_text(PLUGIN)
    (tmp_path / "again.py").write_text(PLUGIN)
    assert method_labels(["random_search", f"{tmp_path}/sampler.py:Sampler"]) == {
        "random_search": "random_search", f"{tmp_path}/sampler.py:Sampler": "sampler"}
    with pytest.raises(UserError, match="would both be shown as 'sampler'"):
        method_labels([f"{tmp_path}/sampler.py:Sampler", f"{tmp_path}/again.py:Sampler"])
