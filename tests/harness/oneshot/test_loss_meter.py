"""Losses added on their device: the same figures as Python floats, non-finite losses still caught."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harness.oneshot.loss_meter import LossMeter, check_every_for, sum_in_float64
from harness.oneshot.training import SupernetTrainer, TrainConfig, TrainingDiverged, load_checkpoint
from methods.spos import SPOS


def _float32_losses(n: int, seed: int = 0) -> list[torch.Tensor]:
    values = np.random.default_rng(seed).uniform(0.1, 3.0, n).astype(np.float32)
    return [torch.tensor(v) for v in values]


def test_tensor_losses_add_up_to_exactly_the_python_float_sum():
    losses = _float32_losses(500)
    expected = 0.0
    for loss in losses:
        expected += float(loss)
    meter = LossMeter()
    for loss in losses:
        meter.add(loss)
    assert meter.total == expected  # bit for bit: float32 is exact in float64, both add in float64
    assert meter.mean == expected / 500
    assert float(sum_in_float64(losses)) == expected
    assert sum_in_float64([0.5, 0.25]) == 0.75


def test_floats_and_tensors_mix_and_a_checkpoint_resumes_the_sum():
    meter = LossMeter()
    meter.add(1.5)
    meter.add(torch.tensor(2.25))
    total, count = meter.state()
    assert (total, count) == (3.75, 2)
    resumed = LossMeter(total, count)
    resumed.add(torch.tensor(0.25))
    assert resumed.state() == [4.0, 3]
    with pytest.raises(ValueError, match="one number"):
        meter.add(torch.ones(2))


def test_a_non_finite_loss_inside_a_read_window_is_caught_and_its_steps_named():
    meter = LossMeter()
    for value in (1.0, float("nan"), 2.0, 3.0):  # the NaN is not the last loss of the window
        meter.add(torch.tensor(value))
    assert meter.due(4) and not meter.due(5)
    check = meter.check()
    assert not check.finite and check.steps == (1, 4) and check.last == 3.0
    assert check.divergence(2) == "became non-finite at epoch 2, one of steps 1-4"
    meter.add(torch.tensor(math.inf))
    check = meter.check()
    assert check.steps == (5, 5) and check.divergence(1) == "became inf at epoch 1, step 5"


def test_the_cpu_reads_every_step_and_a_gpu_every_few():
    assert check_every_for(torch.device("cpu")) == 1
    assert check_every_for(torch.device("cuda")) > 1


def _trainer(digits, tmp_path, name, check_every):
    config = TrainConfig(C=4, N=1, batch_size=16, steps_per_epoch=5, epochs=2, threads=1, seed=2)
    trainer = SupernetTrainer(SPOS(seed=2), digits, config, tmp_path / name, progress=False)
    trainer.check_loss_every = check_every  # as on a GPU: read the losses every few steps
    return trainer


def test_reading_the_loss_every_few_steps_changes_no_figure(digits, tmp_path):
    every_step = _trainer(digits, tmp_path, "a", 1).train()
    every_three = _trainer(digits, tmp_path, "b", 3).train()
    assert [r["train_loss"] for r in every_step.history] == [r["train_loss"] for r in every_three.history]


def test_divergence_between_reads_is_caught_before_the_epoch_is_saved(digits, tmp_path):
    trainer = _trainer(digits, tmp_path, "run", 3)
    original, calls = trainer.method.train_step, {"n": 0}

    def step(ctx, images, labels):
        calls["n"] += 1
        loss = original(ctx, images, labels)
        return torch.full_like(loss, math.nan) if calls["n"] == 7 else loss  # epoch 2, step 2

    trainer.method.train_step = step
    with pytest.raises(TrainingDiverged, match=r"non-finite at epoch 2, one of steps 1-3"):
        trainer.train()
    assert load_checkpoint(tmp_path / "run")["epoch"] == 1  # the last good epoch, untouched
