"""The GPU path: resident data, batches equal to the CPU's, no host synchronisation in a step.

Skipped without CUDA (CI runs on CPUs); bench/gpu_check.sh runs them on a lent GPU.
"""

from __future__ import annotations

import pytest
import torch

from harness.oneshot.loss_meter import LossMeter
from harness.oneshot.method import StepContext
from harness.oneshot.precision import autocast_factory
from harness.oneshot.training import SupernetTrainer, TrainConfig, epoch_generator
from methods.spos import SPOS

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
CUDA = torch.device("cuda")


def test_resident_batches_equal_the_cpu_batches(digits):
    resident = digits.to(CUDA)
    assert resident.train_x.device.type == "cuda" and digits.train_x.device.type == "cpu"
    on_cpu = digits.batches("train", 32, epoch_generator(0, 0, 0), augment=True, mean=None, std=None)
    on_gpu = resident.batches("train", 32, epoch_generator(0, 0, 0), augment=True, mean=None, std=None)
    for (x_cpu, y_cpu), (x_gpu, y_gpu) in zip(on_cpu, on_gpu, strict=True):
        assert x_gpu.device.type == "cuda"
        assert torch.equal(x_cpu, x_gpu.cpu()) and torch.equal(y_cpu, y_gpu.cpu())


def test_a_spos_step_never_waits_for_the_host(digits):
    config = TrainConfig(C=8, N=1, batch_size=64, steps_per_epoch=4, epochs=1, device="cuda", threads=1)
    trainer = SupernetTrainer(SPOS(seed=0), digits, config, "/nonexistent-never-written", progress=False)
    batches = trainer.dataset.batches("train", 64, epoch_generator(0, 0, 0), augment=True, channels_last=True,
                                      device=CUDA)
    context = StepContext(trainer.model, trainer.optimizer, trainer.valid, 0.05, 5.0,
                          autocast_factory("auto", CUDA))
    meter = LossMeter()
    images, labels = next(batches)
    meter.add(trainer.method.train_step(context, images, labels))  # warm-up: allocations, cuDNN choices
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            images, labels = next(batches)
            meter.add(trainer.method.train_step(context, images, labels))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert meter.check().finite


def test_training_on_the_gpu_matches_the_cpu_closely(digits, tmp_path):
    losses = {}
    for device in ("cpu", "cuda"):
        config = TrainConfig(C=4, N=1, batch_size=32, steps_per_epoch=10, epochs=2, device=device,
                             precision="fp32", threads=1, seed=1)
        outcome = SupernetTrainer(SPOS(seed=1), digits, config, tmp_path / device, progress=False).train()
        losses[device] = [row["train_loss"] for row in outcome.history]
    assert losses["cuda"] == pytest.approx(losses["cpu"], rel=2e-3)
