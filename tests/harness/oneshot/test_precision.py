"""bfloat16 autocast as an option of training, stand-alone training and scoring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harness.cli import main
from harness.errors import UserError
from harness.oneshot.precision import autocast_factory, check_precision, cpu_has_native_bf16
from harness.oneshot.scoring import ScoringConfig, SupernetScorer
from harness.oneshot.standalone import StandaloneConfig, StandaloneTrainer
from harness.oneshot.supernet import Supernet
from harness.oneshot.training import SupernetTrainer, TrainConfig
from harness.space import Architecture
from harness.testing import weights
from methods.spos import SPOS

CPU = torch.device("cpu")
needs_bf16 = pytest.mark.skipif(not cpu_has_native_bf16(), reason="this CPU has no native bfloat16")
TINY = dict(C=4, N=1, batch_size=16, steps_per_epoch=3, epochs=1, threads=1)


def _conv_output_dtype(precision: str) -> torch.dtype:
    conv = torch.nn.Conv2d(3, 4, 3)
    with autocast_factory(precision, CPU)():
        return conv(torch.randn(1, 3, 8, 8)).dtype


def test_auto_and_fp32_compute_in_float32_on_the_cpu():
    assert _conv_output_dtype("auto") == torch.float32
    assert _conv_output_dtype("fp32") == torch.float32


@needs_bf16
def test_bf16_autocasts_convolutions_on_the_cpu():
    assert _conv_output_dtype("bf16") == torch.bfloat16


def test_unknown_precision_is_refused_naming_the_choices():
    with pytest.raises(UserError, match="accepted: auto, fp32, bf16"):
        check_precision("fp16")
    with pytest.raises(UserError, match="precision"):
        TrainConfig(precision="half")
    with pytest.raises(UserError, match="precision"):
        StandaloneConfig(precision="half")


def test_bf16_on_a_cpu_without_native_support_is_refused(monkeypatch):
    monkeypatch.setattr("harness.oneshot.precision.cpu_has_native_bf16", lambda: False)
    with pytest.raises(UserError, match="AVX512-BF16"):
        autocast_factory("bf16", CPU)
    autocast_factory("bf16", torch.device("cuda"))  # a GPU computes bfloat16 natively


@needs_bf16
def test_bf16_training_keeps_float32_weights_and_takes_another_path_than_fp32(digits, tmp_path):
    trained = {}
    for precision in ("fp32", "bf16"):
        trainer = SupernetTrainer(SPOS(seed=0), digits, TrainConfig(**TINY, precision=precision),
                                  tmp_path / precision, progress=False)
        outcome = trainer.train()
        assert np.isfinite(outcome.history[-1]["train_loss"])
        trained[precision] = weights(trainer)
    assert all(t.dtype == torch.float32 for t in trained["bf16"].values() if t.is_floating_point())
    difference = max(float((trained["bf16"][k] - trained["fp32"][k]).abs().max())
                     for k in trained["fp32"] if trained["fp32"][k].is_floating_point())
    assert 0 < difference < 0.05


@needs_bf16
def test_a_run_cannot_be_resumed_in_another_precision(digits, tmp_path):
    SupernetTrainer(SPOS(seed=0), digits, TrainConfig(**TINY, precision="bf16"), tmp_path / "run",
                    progress=False).train()
    other = SupernetTrainer(SPOS(seed=0), digits, TrainConfig(**{**TINY, "epochs": 2}, precision="fp32"),
                            tmp_path / "run", progress=False)
    with pytest.raises(UserError, match="precision"):
        other.train(resume=True)


@needs_bf16
def test_bf16_standalone_training_runs_and_reports_float32_evaluation(digits, tmp_path):
    config = StandaloneConfig(C=4, N=1, batch_size=32, steps_per_epoch=3, epochs=1, threads=1, precision="bf16")
    result = StandaloneTrainer("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|none~1|avg_pool_3x3~2|",
                               digits, config, tmp_path / "one", progress=False).train()
    assert 0.0 <= result["test_accuracy"] <= 100.0


@needs_bf16
def test_bf16_scoring_stays_close_to_float32_scoring(digits):
    torch.manual_seed(0)
    model = Supernet(C=4, N=1, num_classes=10, in_channels=1, affine=False).to(memory_format=torch.channels_last)
    archs = [Architecture.from_index(i) for i in (5, 777, 9000, 15000)]
    scores = {precision: SupernetScorer(model, digits, ScoringConfig(calibration_images=64, eval_images=200,
                                                                    batch_size=100, precision=precision))
              .score_many(archs) for precision in ("fp32", "bf16")}
    np.testing.assert_allclose(scores["bf16"][:, 1], scores["fp32"][:, 1], rtol=0.02)
    assert not np.array_equal(scores["bf16"], scores["fp32"])


def test_cli_refuses_an_unknown_precision(capsys):
    assert main(["train", "--method", "spos", "--out", "x", "--precision", "fp16"]) == 2
    error = capsys.readouterr().err
    assert "--precision" in error and "'auto', 'fp32', 'bf16'" in error
