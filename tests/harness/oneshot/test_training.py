"""The supernet training loop: determinism, exact resume after Ctrl-C / SIGTERM, NaN handling, checkpoints."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.cli import main
from harness.errors import DataFileError, UserError
from harness.evaluation.rank import ground_truth_for
from harness.oneshot.method import StepContext, uniform_path
from harness.oneshot.supernet import Supernet
from harness.oneshot.training import (
    SupernetTrainer,
    TrainConfig,
    TrainingDiverged,
    cosine_lr,
    load_checkpoint,
)
from harness.reporting.tracking import BaseTracker
from harness.search.benchmark_specs import table_accuracy
from harness.search.searcher import SEARCHERS  # noqa: E402
from harness.space import Architecture
from harness.testing import assert_same_weights, strict_json, weights
from methods.darts import DARTS
from methods.fairnas import FairNAS
from methods.greedynas import GreedyNAS, path_losses
from methods.spos import SPOS
from surrogates.analog_table import load_analog_benchmark

ROOT = Path(__file__).resolve().parents[3]

#: Every registered one-shot method goes through the same training contract.
ONE_SHOT = [SEARCHERS[name] for name in SEARCHERS if not SEARCHERS.attribute(name, "tabular", True)]
TINY = dict(C=4, N=1, batch_size=16, steps_per_epoch=4, epochs=2, threads=1)


def make_trainer(method, digits, tmp_path, name="run", **overrides):
    config = TrainConfig(**{**TINY, **overrides})
    return SupernetTrainer(method, digits, config, tmp_path / name, progress=False)


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
    assert_same_weights(runs[0], runs[1])
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
    assert_same_weights(weights(reference), weights(resumed))
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
    before = {k: v for k, v in weights(model).items() if "running" in k}
    images, labels = next(digits.batches("valid", 16, None, augment=False, shuffle=False))
    rng = np.random.default_rng(0)
    path_losses(model, [uniform_path(rng) for _ in range(4)], images, labels, contextlib.nullcontext)
    after = {k: v for k, v in model.state_dict().items() if "running" in k}
    assert_same_weights(before, after)


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
        assert_same_weights(before, {k: p.detach() for k, p in trainer.model.named_parameters()})
        assert grads[order].shape == (6, 5)
        assert torch.count_nonzero(grads[order][:, 1:]) > 0
    assert not torch.allclose(grads[1], grads[2])


def test_darts_reports_its_derived_architecture_each_epoch(digits, tmp_path):
    trainer = make_trainer(DARTS(seed=0), digits, tmp_path, epochs=2)
    outcome = trainer.train()
    assert all("derived_arch" in row and row["derived_arch"].startswith("|") for row in outcome.history)
    # the digits have no accuracy table: the figure is recorded as unknown, not as a wrong number
    assert [row["derived_table_accuracy"] for row in outcome.history] == [None, None]
    lines = (tmp_path / "run" / "history.jsonl").read_text().splitlines()
    assert [strict_json(line)["derived_table_accuracy"] for line in lines] == [None, None]


class RecordingTracker(BaseTracker):
    """Keeps what the trainer logs; ``on_start`` runs when the trainer opens its tracking run."""

    enabled = True

    def __init__(self, on_start=None):
        self.on_start, self.metrics, self.status = on_start, [], None

    def start_parent(self, name, params=None):
        if self.on_start is not None:
            self.on_start()

    def log_metrics(self, metrics, step=0):
        self.metrics.append(dict(metrics))

    def end(self, status="FINISHED"):
        self.status = status


def test_table_accuracy_is_the_cifar10_tables_and_none_elsewhere(digits):
    table = load_analog_benchmark()
    truth = ground_truth_for(dataclasses.replace(digits, name="cifar10"), None)  # what 'nas-harness rank' uses
    for index in (0, 1234, 15624):
        arch = Architecture.from_index(index)
        assert table_accuracy(arch.to_string(), "cifar10") == table.test_accuracy[index] == truth.values[arch]
    assert table_accuracy(arch.to_string(), "digits") is None
    assert table_accuracy(arch.to_string(), "fashion-mnist") is None


def test_darts_records_its_derived_architectures_table_accuracy_on_cifar10(digits, tmp_path):
    as_cifar10 = dataclasses.replace(digits, name="cifar10")  # ten classes too; only the name picks the table
    tracker = RecordingTracker()
    trainer = SupernetTrainer(DARTS(seed=0), as_cifar10, TrainConfig(**TINY), tmp_path / "run", tracker=tracker,
                              progress=False)
    history = trainer.train().history
    table = load_analog_benchmark()
    for row, logged in zip(history, tracker.metrics, strict=True):
        expected = table.test_accuracy[Architecture.from_string(row["derived_arch"]).index]
        assert row["derived_table_accuracy"] == logged["derived_table_accuracy"] == expected


def test_history_is_strict_json_with_null_for_undefined_figures(digits, tmp_path):
    def monitor(model, epoch, last=False):
        return {"monitor_kendall_tau": float("nan"), "monitor_spearman": float("inf"), "monitor_archs": 3}

    trainer = SupernetTrainer(SPOS(seed=0), digits, TrainConfig(**TINY), tmp_path / "run", progress=False,
                              monitor=monitor)
    trainer.train()
    rows = [strict_json(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert [(row["monitor_kendall_tau"], row["monitor_spearman"], row["monitor_archs"]) for row in rows] == [
        (None, None, 3), (None, None, 3)]


# -- stopping: SIGINT / SIGTERM however the process was started -----------------------------


@contextlib.contextmanager
def sigint_ignored():
    """SIGINT as a 'nohup ... &' job started by a script inherits it: ignored (so Python installs no handler)."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_stop_requested_while_a_run_starts_is_not_lost(digits, tmp_path):
    tracker = RecordingTracker(on_start=lambda: os.kill(os.getpid(), signal.SIGINT))
    trainer = SupernetTrainer(SPOS(seed=0), digits, TrainConfig(**TINY), tmp_path / "run", tracker=tracker,
                              progress=False)
    with sigint_ignored(), pytest.raises(KeyboardInterrupt, match=r"^SIGINT: interrupted after 0 of 2 epochs;"):
        trainer.train()  # the signal came while the run started (here: while its tracking run opened)
    assert tracker.status == "KILLED"
    assert load_checkpoint(tmp_path / "run")["epoch"] == 0
    assert make_trainer(SPOS(seed=0), digits, tmp_path).train(resume=True).epochs_done == 2


def test_a_stop_during_the_monitor_abandons_the_check_and_the_run_resumes_exactly(digits, tmp_path):
    reference = make_trainer(SPOS(seed=3), digits, tmp_path, "reference", seed=3)
    reference.train()
    checks = []

    def slow_monitor(model, epoch, last=False):  # like RankingMonitor on CIFAR-10: a minute of scoring
        checks.append(epoch)
        with torch.no_grad():
            for buffer in model.buffers():  # changed, and not put back when the check is abandoned
                buffer.add_(1)
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.05)
        checks.append("finished")
        return {"monitor_kendall_tau": 0.5}

    trainer = SupernetTrainer(SPOS(seed=3), digits, TrainConfig(**TINY, seed=3), tmp_path / "run", progress=False,
                              monitor=slow_monitor)
    start = time.monotonic()
    with sigint_ignored(), pytest.raises(KeyboardInterrupt, match=r"^SIGTERM: interrupted after 1 of 2 epochs;"):
        trainer.train()
    assert time.monotonic() - start < 5 and checks == [1]
    rows = [strict_json(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [1] and "monitor_kendall_tau" not in rows[0]
    resumed = make_trainer(SPOS(seed=3), digits, tmp_path, "run", seed=3)
    assert resumed.train(resume=True).epochs_done == 2
    assert_same_weights(weights(reference), weights(resumed))


def test_cli_stops_on_a_signal_before_training_even_with_sigint_inherited_ignored(monkeypatch, capsys, tmp_path):
    import harness.oneshot.data

    load = harness.oneshot.data.load_dataset

    def load_and_get_interrupted(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the data loads
        return load(*args, **kwargs)

    monkeypatch.setattr(harness.oneshot.data, "load_dataset", load_and_get_interrupted)
    with sigint_ignored():
        code = main(["train", "--method", "spos", "--dataset", "digits", "--C", "4", "--N", "1", "--epochs", "1",
                     "--steps-per-epoch", "2", "--threads", "1", "--out", str(tmp_path / "run"), "--no-mlflow",
                     "--no-progress"])
    assert code == 130
    err = capsys.readouterr().err
    assert err.startswith("nas-harness: interrupted: stopped by SIGINT; continue with the same command and --resume")
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def _start_like_nohup(args, log):
    """``nohup nas-harness ... &`` from bash, as a script or an agent starts a long run; returns (bash, its pid)."""
    shell = subprocess.Popen(["bash", "-c", 'nohup "$@" >"$0" 2>&1 & echo $!; wait $!', str(log), *args],
                             cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    return shell, int(shell.stdout.readline())


def _history_lines(run):
    path = run / "history.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.mark.skipif(not (shutil.which("bash") and shutil.which("nohup")), reason="needs bash and nohup")
def test_sigterm_then_sigint_stop_a_background_cli_run_with_a_resumable_checkpoint(tmp_path):
    run = tmp_path / "run"
    command = [sys.executable, "-m", "harness.cli", "train", "--method", "spos", "--dataset", "digits",
               "--C", "4", "--N", "1", "--epochs", "50", "--threads", "1", "--device", "cpu", "--out", str(run),
               "--no-mlflow", "--no-progress"]
    epochs = 0
    for sig, extra in ((signal.SIGTERM, []), (signal.SIGINT, ["--resume"])):
        shell, pid = _start_like_nohup(command + extra, tmp_path / f"{sig.name}.log")
        try:
            deadline = time.monotonic() + 60
            while _history_lines(run) <= epochs and time.monotonic() < deadline and shell.poll() is None:
                time.sleep(0.05)
            assert shell.poll() is None, (tmp_path / f"{sig.name}.log").read_text()
            os.kill(pid, sig)
            sent = time.monotonic()
            code = shell.wait(timeout=10)
        finally:
            if shell.poll() is None:
                os.kill(pid, signal.SIGKILL)
                shell.wait()
        assert time.monotonic() - sent < 5
        lines = (tmp_path / f"{sig.name}.log").read_text().strip().splitlines()
        assert code == 130, lines
        assert len(lines) == 1 and lines[0].startswith(f"nas-harness: interrupted: {sig.name}: interrupted after ")
        assert lines[0].endswith("continue with the same command and --resume")
        saved = load_checkpoint(run)
        assert epochs < saved["epoch"] < 50
        epochs = saved["epoch"]


def test_weight_average_follows_the_documented_update_and_swaps_back():
    from harness.oneshot.averaging import WeightAverage

    model = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0]]))
    average = WeightAverage(model, decay=0.5)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 6.0]]))
    average.update(model)  # first update: decay min(0.5, 1/10) = 0.1, so the average moves 90% of the way
    assert torch.allclose(average.average[0], torch.tensor([[2.8, 5.6]]))
    average.update(model)  # second: min(0.5, 2/11)
    assert torch.allclose(average.average[0], torch.tensor([[2.8, 5.6]]) + (9 / 11) * torch.tensor([[0.2, 0.4]]))
    with pytest.raises(RuntimeError), average.swapped_in(model):
        assert torch.equal(model.weight, average.average[0])
        raise RuntimeError("scoring failed")
    assert torch.equal(model.weight, torch.tensor([[3.0, 6.0]]))
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(model, decay=1.0)


def test_weight_average_resumes_exactly_and_rank_scores_with_it(digits, tmp_path):
    from harness.oneshot.scoring import supernet_from_checkpoint

    with pytest.raises(UserError, match="ema_decay"):
        TrainConfig(ema_decay=1.5)
    reference = make_trainer(SPOS(seed=2), digits, tmp_path, "reference", seed=2, ema_decay=0.9)
    reference.train()
    method = SPOS(seed=2)
    original_step, calls = method.train_step, {"n": 0}

    def interrupting_step(ctx, images, labels):
        calls["n"] += 1
        if calls["n"] == 6:
            os.kill(os.getpid(), signal.SIGINT)
        return original_step(ctx, images, labels)

    method.train_step = interrupting_step
    with pytest.raises(KeyboardInterrupt):
        make_trainer(method, digits, tmp_path, "resumed", seed=2, ema_decay=0.9).train()
    resumed = make_trainer(SPOS(seed=2), digits, tmp_path, "resumed", seed=2, ema_decay=0.9)
    resumed.train(resume=True)
    assert_same_weights(weights(reference), weights(resumed))
    averaged = reference.average.averaged_state_dict(reference.model)
    assert_same_weights(averaged, resumed.average.averaged_state_dict(resumed.model))
    assert resumed.average.updates == 2 * TINY["steps_per_epoch"]
    assert any(not torch.equal(averaged[k], weights(reference)[k]) for k in averaged)

    model, payload = supernet_from_checkpoint(tmp_path / "resumed", digits)
    assert payload["scored_weights"] == "average"
    assert_same_weights(weights(model), averaged)
    model, payload = supernet_from_checkpoint(tmp_path / "resumed", digits, weights="last")
    assert payload["scored_weights"] == "last"
    assert_same_weights(weights(model), weights(reference))
    # a run without an average is scored with its trained weights
    plain = make_trainer(SPOS(seed=2), digits, tmp_path, "plain", seed=2, epochs=1)
    plain.train()
    assert supernet_from_checkpoint(tmp_path / "plain", digits)[1]["scored_weights"] == "last"


def test_the_monitor_scores_with_the_weight_average_and_training_goes_on_with_the_trained_weights(digits, tmp_path):
    seen = []

    def monitor(model, epoch, last=False):
        seen.append(weights(model))
        return {"monitor_kendall_tau": float(len(seen))}

    trainer = SupernetTrainer(SPOS(seed=0), digits, TrainConfig(**{**TINY, "epochs": 1, "ema_decay": 0.9}),
                              tmp_path / "run", progress=False, monitor=monitor)
    trainer.train()
    # checked twice: the trained weights first, then the average, whose figures keep the plain names
    assert_same_weights(seen[0], weights(trainer))
    assert_same_weights(seen[1], trainer.average.averaged_state_dict(trainer.model))
    assert any(not torch.equal(seen[1][k], weights(trainer)[k]) for k in seen[1])
    row = trainer.history[-1]
    assert (row["monitor_kendall_tau"], row["monitor_last_weights_kendall_tau"]) == (2.0, 1.0)
    assert_same_weights(weights(trainer), dict(load_checkpoint(tmp_path / "run")["model"]))
