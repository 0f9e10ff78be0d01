"""The supernet training loop: determinism, exact resume after Ctrl-C, NaN handling, checkpoint checks."""

from __future__ import annotations

import contextlib
import json
import os
import signal

import numpy as np
import pytest
import torch

import methods  # noqa: E402,F401  (registers the built-ins)
from harness.data import load_dataset
from harness.errors import DataFileError, UserError
from harness.oneshot import StepContext, uniform_path
from harness.searcher import SEARCHERS  # noqa: E402
from harness.supernet import Supernet
from harness.training import (
    SupernetTrainer,
    TrainConfig,
    TrainingDiverged,
    cosine_lr,
    load_checkpoint,
)
from methods.darts import DARTS
from methods.fairnas import FairNAS
from methods.greedynas import GreedyNAS, path_losses
from methods.spos import SPOS

#: Every registered one-shot method goes through the same training contract.
ONE_SHOT = [SEARCHERS[name] for name in SEARCHERS if not SEARCHERS.attribute(name, "tabular", True)]
TINY = dict(C=4, N=1, batch_size=16, steps_per_epoch=4, epochs=2, threads=1)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def make_trainer(method, digits, tmp_path, name="run", **overrides):
    config = TrainConfig(**{**TINY, **overrides})
    return SupernetTrainer(method, digits, config, tmp_path / name, progress=False)


def weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


def assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_cosine_schedule_ends_at_lr_min():
    assert cosine_lr(0, 100, 0.025, 0.001) == pytest.approx(0.025)
    assert cosine_lr(100, 100, 0.025, 0.001) == pytest.approx(0.001)
    assert cosine_lr(50, 100, 0.025, 0.001) == pytest.approx(0.013)


@pytest.mark.parametrize("cls", ONE_SHOT, ids=lambda cls: cls.name)
def test_same_seed_same_weights_other_seed_other(cls, digits, tmp_path):
    runs = []
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        trainer = make_trainer(cls(seed=seed), digits, tmp_path, name, seed=seed, epochs=1)
        outcome = trainer.train()
        assert outcome.epochs_done == 1
        runs.append(weights(trainer))
    assert_same(runs[0], runs[1])
    assert any(not torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


@pytest.mark.parametrize("cls", ONE_SHOT, ids=lambda cls: cls.name)
def test_ctrl_c_then_resume_equals_an_uninterrupted_run(cls, digits, tmp_path):
    reference = make_trainer(cls(seed=3), digits, tmp_path, "reference", seed=3)
    reference.train()

    method = cls(seed=3)
    original_step = method.train_step
    calls = {"n": 0}

    def interrupting_step(ctx, images, labels):
        calls["n"] += 1
        if calls["n"] == 6:  # mid-way through the second epoch
            os.kill(os.getpid(), signal.SIGINT)
        return original_step(ctx, images, labels)

    method.train_step = interrupting_step
    interrupted = make_trainer(method, digits, tmp_path, "resumed", seed=3)
    with pytest.raises(KeyboardInterrupt, match="--resume"):
        interrupted.train()
    saved = load_checkpoint(tmp_path / "resumed")
    assert (saved["epoch"], saved["step_in_epoch"]) == (1, 2)

    resumed = make_trainer(cls(seed=3), digits, tmp_path, "resumed", seed=3)
    outcome = resumed.train(resume=True)
    assert outcome.epochs_done == 2
    assert_same(weights(reference), weights(resumed))
    assert [r["train_loss"] for r in reference.history] == [r["train_loss"] for r in resumed.history]
    lines = (tmp_path / "resumed" / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(digits, tmp_path):
    method = SPOS(seed=0)
    original_step = method.train_step
    calls = {"n": 0}

    def step(ctx, images, labels):
        calls["n"] += 1
        loss = original_step(ctx, images, labels)
        return float("nan") if calls["n"] == 6 else loss

    method.train_step = step
    trainer = make_trainer(method, digits, tmp_path)
    with pytest.raises(TrainingDiverged, match="epoch 2, step 2"):
        trainer.train()
    assert load_checkpoint(tmp_path / "run")["epoch"] == 1


def test_existing_run_needs_resume_and_mismatched_checkpoints_are_refused(digits, tmp_path):
    make_trainer(SPOS(seed=0), digits, tmp_path, epochs=1).train()
    with pytest.raises(UserError, match="--resume"):
        make_trainer(SPOS(seed=0), digits, tmp_path, epochs=1).train()
    with pytest.raises(UserError, match="method 'spos' vs 'fairnas'"):
        make_trainer(FairNAS(seed=0), digits, tmp_path, epochs=2).train(resume=True)
    with pytest.raises(UserError, match="C 4 vs 8"):
        make_trainer(SPOS(seed=0), digits, tmp_path, epochs=2, C=8).train(resume=True)


def test_corrupt_checkpoint_is_a_one_line_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(DataFileError, match="corrupt") as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)
    with pytest.raises(DataFileError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing")


def _context(trainer, valid=None):
    return StepContext(trainer.model, trainer.optimizer, valid or trainer.valid, 0.01, None,
                       trainer._autocast, progress=0.5)


def test_fairnas_trains_each_op_of_each_edge_exactly_once_per_step(digits, tmp_path, monkeypatch):
    from methods import fairnas

    method = FairNAS(seed=0)
    trainer = make_trainer(method, digits, tmp_path)
    trained, steps = [], []
    original = fairnas.path_loss
    monkeypatch.setattr(fairnas, "path_loss", lambda ctx, x, y, arch: trained.append(arch) or original(ctx, x, y, arch))
    original_step = trainer.optimizer.step
    monkeypatch.setattr(trainer.optimizer, "step", lambda *a, **k: steps.append(len(trained)) or original_step(*a, **k))
    images, labels = next(digits.batches("train", 16, torch.Generator().manual_seed(0), augment=False))
    for step in range(3):
        method.train_step(_context(trainer), images, labels)
        paths = trained[5 * step: 5 * step + 5]
        for edge in range(6):
            assert sorted(arch.ops[edge] for arch in paths) == [0, 1, 2, 3, 4]
    assert steps == [5, 10, 15]  # one weight update per 5 accumulated paths


def test_greedynas_trains_the_best_k_of_m_by_valid_loss(digits, tmp_path):
    method = GreedyNAS(seed=0, paths_sampled=6, paths_trained=2)
    trainer = make_trainer(method, digits, tmp_path)
    trainer.valid.start_epoch(0)
    from methods import greedynas

    recorded = {}
    original = greedynas.path_losses

    def spy(model, paths, images, labels, autocast):
        losses = original(model, paths, images, labels, autocast)
        recorded["paths"], recorded["losses"] = paths, losses
        return losses

    greedynas.path_losses = spy
    try:
        images, labels = next(digits.batches("train", 16, torch.Generator().manual_seed(0), augment=False))
        method.train_step(_context(trainer), images, labels)
    finally:
        greedynas.path_losses = original
    ranked = sorted(range(6), key=lambda i: (recorded["losses"][i], i))
    assert method.last_trained == [recorded["paths"][i] for i in ranked[:2]]
    assert sorted(method.pool) == sorted((-recorded["losses"][i], recorded["paths"][i].ops) for i in ranked[:2])


def test_greedynas_scoring_leaves_batchnorm_statistics_alone(digits):
    model = Supernet(C=4, N=1, num_classes=10, in_channels=1)
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    images, labels = next(digits.batches("valid", 16, None, augment=False, shuffle=False))
    rng = np.random.default_rng(0)
    path_losses(model, [uniform_path(rng) for _ in range(4)], images, labels, contextlib.nullcontext)
    after = {k: v for k, v in model.state_dict().items() if "running" in k}
    assert_same(before, after)


def test_darts_architecture_weights_get_gradients_and_second_order_differs(digits, tmp_path):
    grads = {}
    for order in (1, 2):
        method = DARTS(seed=0, order=order)
        trainer = make_trainer(method, digits, tmp_path, f"darts{order}")
        trainer.valid.start_epoch(0)
        images, labels = next(digits.batches("train", 16, torch.Generator().manual_seed(0), augment=False))
        valid = next(digits.batches("valid", 16, torch.Generator().manual_seed(1), augment=False))
        before = {k: p.detach().clone() for k, p in trainer.model.named_parameters()}
        grads[order] = method.arch_gradient(_context(trainer), (images, labels), valid)
        # the unrolled step leaves the weights as they were
        assert_same(before, {k: p.detach() for k, p in trainer.model.named_parameters()})
        assert grads[order].shape == (6, 5)
        assert torch.count_nonzero(grads[order][:, 1:]) > 0
    assert not torch.allclose(grads[1], grads[2])


def test_darts_reports_its_derived_architecture_each_epoch(digits, tmp_path):
    trainer = make_trainer(DARTS(seed=0), digits, tmp_path, epochs=2)
    outcome = trainer.train()
    assert all("derived_arch" in row and row["derived_arch"].startswith("|") for row in outcome.history)
