"""An interrupted ranking keeps what it scored, and the same call scores only the rest, to the same figures."""

from __future__ import annotations

import numpy as np
import pytest

from harness.evaluation.rank import SCORES_FILE, rank_checkpoint, select_architectures
from harness.oneshot.scoring import ScoringConfig, SupernetScorer
from harness.oneshot.training import SupernetTrainer, TrainConfig
from methods.spos import SPOS

SCORING = ScoringConfig(calibration_images=32, eval_images=64, batch_size=32)


@pytest.fixture(scope="module")
def checkpoint(digits, tmp_path_factory):
    run = tmp_path_factory.mktemp("rank-resume") / "spos"
    config = TrainConfig(C=4, N=1, batch_size=16, steps_per_epoch=3, epochs=1, threads=1)
    SupernetTrainer(SPOS(seed=0), digits, config, run, progress=False).train()
    return run


def rank(checkpoint, digits, out, archs):
    truth = np.linspace(10.0, 90.0, len(archs))
    meta = {"chance": 10.0, "dataset": digits.name}
    return rank_checkpoint(checkpoint, digits, archs, truth, SCORING, out, meta, progress=False, bootstrap=0)


def test_an_interrupted_ranking_resumes_where_it_stopped(checkpoint, digits, tmp_path, monkeypatch):
    archs = select_architectures("sample", 60, seed=1)
    whole = rank(checkpoint, digits, tmp_path / "whole", archs)
    original = SupernetScorer.score_many
    calls = {"scored": 0}

    def interrupted_after_two_blocks(self, block, progress=None):
        if calls["scored"] >= 50:
            raise KeyboardInterrupt("stopped by SIGINT")
        calls["scored"] += len(block)
        return original(self, block, progress)

    monkeypatch.setattr(SupernetScorer, "score_many", interrupted_after_two_blocks)
    with pytest.raises(KeyboardInterrupt, match="50 of 60 architectures are scored and kept in"):
        rank(checkpoint, digits, tmp_path / "cut", archs)
    assert len((tmp_path / "cut" / SCORES_FILE).read_text().splitlines()) == 1 + 50
    calls["scored"] = -10_000  # let it finish, and count what it scores
    resumed = rank(checkpoint, digits, tmp_path / "cut", archs)
    assert calls["scored"] == -10_000 + 10  # only the 10 left
    assert resumed == whole
    assert (tmp_path / "cut" / "ranking.csv").read_text() == (tmp_path / "whole" / "ranking.csv").read_text()


def test_the_cost_per_architecture_is_measured_on_what_was_scored(checkpoint, digits, tmp_path, monkeypatch):
    import json

    archs = select_architectures("sample", 20, seed=4)
    rank(checkpoint, digits, tmp_path, archs)
    first = json.loads((tmp_path / "ranking.json").read_text())["meta"]
    assert first["seconds_per_architecture"] == pytest.approx(first["scoring_seconds"] / 20) and first["workers"] == 1
    # every score kept: nothing is timed, and the figure of the ranking that made them stays
    monkeypatch.setattr(SupernetScorer, "score_many", lambda *a, **k: pytest.fail("kept scores were not reused"))
    rank(checkpoint, digits, tmp_path, archs)
    again = json.loads((tmp_path / "ranking.json").read_text())["meta"]
    assert again["architectures_scored_before"] == 20
    assert again["seconds_per_architecture"] == first["seconds_per_architecture"]


def test_kept_scores_of_other_settings_are_not_reused(checkpoint, digits, tmp_path):
    archs = select_architectures("sample", 10, seed=2)
    rank(checkpoint, digits, tmp_path, archs)
    other = ScoringConfig(calibration_images=32, eval_images=32, batch_size=32)
    truth = np.linspace(10.0, 90.0, len(archs))
    rank_checkpoint(checkpoint, digits, archs, truth, other, tmp_path, {"chance": 10.0}, progress=False, bootstrap=0)
    key = (tmp_path / "scores.key.json").read_text()
    assert '"eval_images": 32' in key and len((tmp_path / SCORES_FILE).read_text().splitlines()) == 11


def test_scores_kept_before_the_device_was_recorded_still_resume(checkpoint, digits, tmp_path, monkeypatch):
    import json

    archs = select_architectures("sample", 30, seed=3)
    whole = rank(checkpoint, digits, tmp_path / "whole", archs)
    key_path = tmp_path / "whole" / "scores.key.json"
    key = json.loads(key_path.read_text())
    assert key["scoring"]["device"] == "cpu"
    del key["scoring"]["device"]  # as a ranking of an earlier version wrote it
    key_path.write_text(json.dumps(key))
    monkeypatch.setattr(SupernetScorer, "score_many", lambda *a, **k: pytest.fail("kept scores were not reused"))
    assert rank(checkpoint, digits, tmp_path / "whole", archs) == whole


def test_scoring_on_a_gpu_is_refused_on_several_workers(checkpoint, digits, tmp_path):
    from harness.errors import UserError
    from harness.execution.executors import ExecutionSettings

    archs = select_architectures("sample", 5, seed=4)
    gpu = ScoringConfig(calibration_images=32, eval_images=64, batch_size=32, device="cuda")
    with pytest.raises(UserError, match="cuda|CUDA"):
        rank_checkpoint(checkpoint, digits, archs, np.linspace(10, 90, 5), gpu, tmp_path, {"chance": 10.0},
                        progress=False, bootstrap=0, execution=ExecutionSettings("local", workers=2))
