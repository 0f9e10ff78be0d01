"""Stand-alone training of one NB201 architecture from scratch: the ground truth a supernet is ranked against.

Defaults are NB201's protocol for its 200-epoch results: SGD with Nesterov momentum 0.9,
learning rate 0.1 annealed by a cosine (per step) to 0, weight decay 5e-4, batch 256, on
the ``train`` split with the dataset's augmentation; the network is ``TinyNetwork`` with
affine BatchNorms that keep running statistics. At the end the network is evaluated (eval
mode, no augmentation, float32) on the ``valid`` and ``test`` splits. The training steps run
under the configured ``precision`` (``harness.oneshot.precision``), as the supernet loop's do: by
default bfloat16 autocast on CUDA and float32 on the CPU.

The run reuses the supernet loop's pieces (``harness.oneshot.training``): weights initialised from
``config.seed`` with an explicit generator, the batches of epoch ``e`` drawn from a
generator seeded by ``(seed, e)``, an atomic ``RUN_DIR/checkpoint.pt`` after every epoch and
on Ctrl-C / SIGTERM (at the next step boundary), ``torch.load(weights_only=True)``-loadable.
So a resumed run ends with exactly the weights and accuracies of an uninterrupted one.

Finished results are appended to a CSV (``RESULTS_HEADER``) that ``nas-harness rank
--ground-truth`` reads, so supernets can be ranked on a dataset that has no table. Each row
records the protocol it was trained under (``PROTOCOL_COLUMNS``, besides dataset, epochs and
seed), and a file holds one protocol: a run with other settings is refused before it trains.
Files written before those columns existed (``LEGACY_RESULTS_HEADER``) are still read.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from harness.errors import UserError
from harness.oneshot.data import Dataset
from harness.oneshot.loss_meter import LossMeter, check_every_for
from harness.oneshot.network import TinyNetwork, count_parameters
from harness.oneshot.precision import autocast_factory, uses_bf16
from harness.oneshot.training import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_NAME,
    HISTORY_NAME,
    TrainingDiverged,
    _StopFlag,
    atomic_save,
    check_common_settings,
    cosine_lr,
    epoch_generator,
    initialise_weights,
    kept_checkpoint_note,
    load_checkpoint,
    resolve_device,
)
from harness.space import Architecture, as_architecture, parse_architecture

METHOD_NAME = "standalone"
RESULT_NAME = "result.json"
#: The header of results files written before the protocol columns: still read (and appended to), but
#: their rows say only the dataset, epochs and seed they were trained with.
LEGACY_RESULTS_HEADER = ("arch", "valid_accuracy", "test_accuracy", "dataset", "epochs", "seed", "seconds")
#: Every setting besides dataset, epochs and seed that changes a stand-alone result (``result_protocol``):
#: ``steps_per_epoch`` is the number of steps each epoch actually ran, ``precision`` the arithmetic used
#: (``fp32`` or ``bf16``, "auto" resolved on the device that trained).
PROTOCOL_COLUMNS = ("batch_size", "lr", "lr_min", "momentum", "nesterov", "weight_decay", "C", "N",
                    "steps_per_epoch", "precision")
RESULTS_HEADER = (*LEGACY_RESULTS_HEADER, *PROTOCOL_COLUMNS)
#: The columns that must agree between the rows of one results file (one ground truth, one protocol).
PROTOCOL_KEYS = ("dataset", "epochs", "seed", *PROTOCOL_COLUMNS)


@dataclass(frozen=True)
class StandaloneConfig:
    """Every setting of a stand-alone run (NB201's 200-epoch protocol by default)."""

    epochs: int = 200
    batch_size: int = 256
    lr: float = 0.1
    lr_min: float = 0.0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    C: int = 16
    N: int = 5
    seed: int = 0
    threads: int | None = None
    #: Cap on steps per epoch (None: the whole training split); for short runs and tests.
    steps_per_epoch: int | None = None
    #: Valid accuracy every k epochs in the history (0: only at the end).
    eval_every: int = 0
    channels_last: bool = True
    device: str = "auto"
    #: "auto" (bfloat16 autocast on CUDA, float32 on the CPU), "fp32" or "bf16" (``harness.oneshot.precision``).
    precision: str = "auto"

    def __post_init__(self) -> None:
        check_common_settings(self)
        if self.momentum < 0 or self.weight_decay < 0:
            raise UserError(f"momentum and weight_decay must be non-negative, got {self.momentum}, "
                            f"{self.weight_decay}")
        if self.eval_every < 0:
            raise UserError(f"eval_every must be non-negative, got {self.eval_every}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StandaloneConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    #: Settings a checkpoint must agree on to be continued (shape and trajectory).
    RESUME_KEYS = ("C", "N", "epochs", "batch_size", "lr", "lr_min", "momentum", "nesterov", "weight_decay",
                   "seed", "steps_per_epoch", "precision")


class StandaloneTrainer:
    """Trains ``TinyNetwork(arch)`` on ``dataset`` under ``config``, checkpointing into ``run_dir``."""

    def __init__(self, arch: Architecture | str, dataset: Dataset, config: StandaloneConfig,
                 run_dir: str | os.PathLike, progress: bool = True) -> None:
        self.arch = as_architecture(arch)
        self.dataset, self.config = dataset, config
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.device = resolve_device(config.device)
        # Resident on the device: batches are cut, augmented and normalised there (no copy per step on a GPU).
        self.dataset = dataset = dataset.to(self.device)
        self._autocast = autocast_factory(config.precision, self.device)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.model = TinyNetwork(self.arch, C=config.C, N=config.N, num_classes=dataset.num_classes,
                                 in_channels=dataset.image_shape[0])
        initialise_weights(self.model, torch.Generator().manual_seed(config.seed))
        self.model.to(self.device)
        if config.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=config.lr, momentum=config.momentum,
                                         nesterov=config.nesterov, weight_decay=config.weight_decay)
        n_train = len(dataset.train_y)
        full = n_train // config.batch_size
        if full < 1:
            raise UserError(f"batch size {config.batch_size} exceeds the {n_train} training images")
        self.steps_per_epoch = min(full, config.steps_per_epoch or full)
        self.epoch, self.step_in_epoch = 0, 0
        self.history: list[dict[str, Any]] = []
        self.elapsed_seconds = 0.0
        self._epoch_loss = LossMeter()
        #: Steps between host reads of the loss (``harness.oneshot.loss_meter``): 1 on the CPU.
        self.check_loss_every = check_every_for(self.device)

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / CHECKPOINT_NAME

    # -- checkpoints --------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "method": METHOD_NAME,
            "arch": self.arch.to_string(),
            "config": asdict(self.config),
            "model_config": {"arch": self.arch.to_string(), "C": self.config.C, "N": self.config.N,
                             "num_classes": self.dataset.num_classes, "in_channels": self.dataset.image_shape[0]},
            "dataset": self.dataset.name,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "epoch_loss": self._epoch_loss.state(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "history": self.history,
            "elapsed_seconds": self.elapsed_seconds,
            "torch_version": str(torch.__version__),
        }

    def save_checkpoint(self) -> Path:
        atomic_save(self.state(), self.checkpoint_path)
        return self.checkpoint_path

    def resume(self) -> bool:
        """Load ``run_dir``'s checkpoint if there is one; False when starting fresh."""
        if not self.checkpoint_path.exists():
            return False
        payload = load_checkpoint(self.checkpoint_path)
        self._check_compatible(payload)
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.epoch, self.step_in_epoch = int(payload["epoch"]), int(payload["step_in_epoch"])
        self._epoch_loss = LossMeter(float(payload["epoch_loss"][0]), int(payload["epoch_loss"][1]))
        self.history = list(payload["history"])
        self.elapsed_seconds = float(payload["elapsed_seconds"])
        return True

    def _check_compatible(self, payload: dict[str, Any]) -> None:
        where = self.checkpoint_path
        if payload["method"] != METHOD_NAME:
            raise UserError(f"checkpoint {where} is a {payload['method']!r} supernet run, not a stand-alone run")
        differences = []
        if payload.get("arch") != self.arch.to_string():
            differences.append(f"arch {payload.get('arch')!r} vs {self.arch.to_string()!r}")
        if payload["dataset"] != self.dataset.name:
            differences.append(f"dataset {payload['dataset']!r} vs {self.dataset.name!r}")
        saved = StandaloneConfig.from_dict(payload["config"])
        for key in StandaloneConfig.RESUME_KEYS:
            if getattr(saved, key) != getattr(self.config, key):
                differences.append(f"{key} {getattr(saved, key)!r} vs {getattr(self.config, key)!r}")
        if differences:
            raise UserError(f"checkpoint {where} was written for another configuration: {'; '.join(differences)} "
                            f"(checkpoint vs this run)")

    # -- training and evaluation --------------------------------------------------------
    def train(self, resume: bool = False) -> dict[str, Any]:
        """Train (or continue, with ``resume``) to ``config.epochs``, evaluate, and return the result.

        Raises ``KeyboardInterrupt`` after saving a checkpoint when interrupted, and
        ``TrainingDiverged`` (checkpoint untouched) when the loss stops being finite.
        """
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.checkpoint_path.exists() and not resume:
            raise UserError(f"{self.checkpoint_path} exists; pass --resume to continue it or choose another --out")
        if resume:
            self.resume()
        stop = _StopFlag()
        with stop.installed():
            while self.epoch < self.config.epochs:
                if not self._run_epoch(stop):
                    self.save_checkpoint()
                    raise KeyboardInterrupt(
                        f"interrupted {self.arch.to_string()} at epoch {self.epoch + 1}, step {self.step_in_epoch}; "
                        f"checkpoint saved at {self.checkpoint_path}; continue with --resume")
        wall = time.perf_counter()
        valid, test = self.evaluate("valid"), self.evaluate("test")
        seconds = self.elapsed_seconds + time.perf_counter() - wall
        result = {
            "arch": self.arch.to_string(),
            "dataset": self.dataset.name,
            "valid_accuracy": valid,
            "test_accuracy": test,
            "train_loss": self.history[-1]["train_loss"] if self.history else None,
            "epochs": self.epoch,
            "seed": self.config.seed,
            "seconds": seconds,
            "params": count_parameters(self.model) / 1e6,
            "config": asdict(self.config),
            "protocol": result_protocol(self.config, self.dataset, self.device),
        }
        # The folder's name, said in the file: this project's index, not NB201's official one.
        (self.run_dir / RESULT_NAME).write_text(json.dumps({**result, "harness_index": self.arch.index}, indent=1)
                                                + "\n")
        return result

    def _step(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            loss = F.cross_entropy(self.model(images), labels)
        loss.backward()
        self.optimizer.step()
        return loss.detach()  # read on the host only every few steps (LossMeter)

    def _check_loss(self, bar: Any) -> None:
        """Read the losses added since the last read; TrainingDiverged when one was not finite."""
        if not self._epoch_loss.due(1):
            return
        check = self._epoch_loss.check()
        if not check.finite:
            raise TrainingDiverged(
                f"training loss of {self.arch.to_string()} {check.divergence(self.epoch + 1)}; "
                f"{kept_checkpoint_note(self.checkpoint_path)} (try a lower --lr)")
        if bar is not None:
            bar.set_postfix(loss=f"{check.last:.3f}", refresh=False)

    def _run_epoch(self, stop: _StopFlag) -> bool:
        """Train the rest of the current epoch; False when a stop was requested mid-way."""
        cfg = self.config
        total_steps = cfg.epochs * self.steps_per_epoch
        batches = self.dataset.batches("train", cfg.batch_size, epoch_generator(cfg.seed, self.epoch, 0),
                                       augment=True, channels_last=cfg.channels_last, device=self.device)
        for _ in range(self.step_in_epoch):  # reproduce the data stream up to where the checkpoint left it
            next(batches)
        if self.step_in_epoch == 0:
            self._epoch_loss = LossMeter()
        self.model.train()
        bar = self._progress_bar()
        wall = time.perf_counter()
        lr = cfg.lr
        try:
            for images, labels in batches:
                if self.step_in_epoch >= self.steps_per_epoch:
                    break
                if stop.raised is not None:
                    return False
                lr = cosine_lr(self.epoch * self.steps_per_epoch + self.step_in_epoch, total_steps, cfg.lr,
                               cfg.lr_min)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                self._epoch_loss.add(self._step(images, labels))
                self.step_in_epoch += 1
                if self._epoch_loss.due(self.check_loss_every) or self.step_in_epoch >= self.steps_per_epoch:
                    self._check_loss(bar)
                if bar is not None:
                    bar.update(1)
            self._check_loss(bar)  # an epoch the data cut short is checked too
        finally:
            self.elapsed_seconds += time.perf_counter() - wall
            if bar is not None:
                bar.close()
        self.epoch += 1
        self.step_in_epoch = 0
        row = {"epoch": self.epoch, "train_loss": self._epoch_loss.mean, "lr": lr,
               "elapsed_seconds": self.elapsed_seconds}
        if cfg.eval_every and self.epoch % cfg.eval_every == 0:
            row["valid_accuracy"] = self.evaluate("valid")
        self.history.append(row)
        with open(self.run_dir / HISTORY_NAME, "a") as handle:
            handle.write(json.dumps(row) + "\n")
        self.save_checkpoint()
        return True

    @torch.no_grad()
    def evaluate(self, split: str) -> float:
        """Top-1 accuracy (%) on a whole split: eval mode (running BN statistics), no augmentation, float32."""
        was_training = self.model.training
        self.model.eval()
        correct, total = torch.zeros((), dtype=torch.long, device=self.device), 0
        try:
            for images, labels in self.dataset.batches(split, self.config.batch_size, None, augment=False,
                                                       shuffle=False, drop_last=False,
                                                       channels_last=self.config.channels_last, device=self.device):
                correct += (self.model(images).argmax(1) == labels).sum()
                total += len(labels)
        finally:
            self.model.train(was_training)
        return 100.0 * int(correct) / max(total, 1)

    def _progress_bar(self):
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=self.steps_per_epoch, initial=self.step_in_epoch, file=sys.stderr, leave=False,
                    desc=f"harness index {self.arch.index} epoch {self.epoch + 1}/{self.config.epochs}", unit="step")


def train_standalone(arch: Architecture | str, dataset: Dataset, config: StandaloneConfig,
                     run_dir: str | os.PathLike, progress: bool = True, resume: bool = False) -> dict[str, Any]:
    """Train ``arch`` from scratch on ``dataset``'s train split; its valid and test accuracy and run facts.

    The dict holds ``arch`` (string), ``dataset``, ``valid_accuracy`` and ``test_accuracy`` (%),
    ``train_loss`` (last epoch), ``epochs``, ``seed``, ``seconds``, ``params`` (millions),
    ``config`` and ``protocol`` (``result_protocol``). ``resume`` continues ``run_dir``'s
    checkpoint; without it an existing one is refused.
    """
    return StandaloneTrainer(arch, dataset, config, run_dir, progress=progress).train(resume=resume)


def result_protocol(config: StandaloneConfig, dataset: Dataset, device: torch.device | None = None) -> dict[str, Any]:
    """The settings besides dataset, epochs and seed that a result of ``config`` on ``dataset`` depends on.

    Keys are ``PROTOCOL_COLUMNS``; ``steps_per_epoch`` is the number of steps an epoch runs (a cap
    above the split's batches changes nothing) and ``precision`` the arithmetic on ``device``
    (default: the one ``config.device`` resolves to), so "auto" on a GPU and on a CPU differ.
    """
    device = device if device is not None else resolve_device(config.device)
    full = len(dataset.train_y) // config.batch_size
    return {"batch_size": config.batch_size, "lr": float(config.lr), "lr_min": float(config.lr_min),
            "momentum": float(config.momentum), "nesterov": bool(config.nesterov),
            "weight_decay": float(config.weight_decay), "C": config.C, "N": config.N,
            "steps_per_epoch": min(full, config.steps_per_epoch or full),
            "precision": "bf16" if uses_bf16(config.precision, device) else "fp32"}


# -- the results file ------------------------------------------------------------------------


def _format(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def protocol_text(value: Any) -> str:
    """A protocol setting as the results file writes it (floats exactly, e.g. ``0.0005``; None as empty)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _header(path: Path) -> tuple[str, ...] | None:
    """The header of a results file (None when it does not exist or is empty); a UserError for another file's."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    with open(path, newline="") as handle:
        header = tuple(next(csv.reader(handle), ()))
    if header not in (RESULTS_HEADER, LEGACY_RESULTS_HEADER):
        raise UserError(f"{path} is not a stand-alone results file: its header is {','.join(header)!r}, "
                        f"expected {','.join(RESULTS_HEADER)!r}")
    return header


def records_protocol(path: str | os.PathLike) -> bool:
    """Whether a results file records each row's protocol (True too for a file not written yet)."""
    return _header(Path(path)) != LEGACY_RESULTS_HEADER


def read_results(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a results file (empty when it does not exist); a UserError for another file's header.

    Rows of a file written before the protocol columns have only the ``LEGACY_RESULTS_HEADER`` keys.
    """
    path = Path(path)
    header = _header(path)
    if header is None:
        return []
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        return [dict(zip(header, row, strict=False)) for row in reader if row]


def append_result(path: str | os.PathLike, row: dict[str, Any]) -> None:
    """Append one result (a dict with the ``LEGACY_RESULTS_HEADER`` keys and ``protocol``, a dict with the
    ``PROTOCOL_COLUMNS`` keys, as ``train_standalone`` returns; others ignored) to a results CSV.

    The file is created with its header when absent; each row goes out in a single write and
    is flushed, so an interrupted run leaves whole rows only. A file written before the
    protocol columns gets rows in its own format.
    """
    path = Path(path)
    protocol = row.get("protocol") or {}
    missing = [key for key in LEGACY_RESULTS_HEADER if key not in row]
    missing += [f"protocol[{key!r}]" for key in PROTOCOL_COLUMNS if key not in protocol]
    if missing:
        raise ValueError(f"a result row needs {', '.join(missing)}")
    header = _header(path)  # refuses a file with another header
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header is None:
        header = RESULTS_HEADER
        writer.writerow(header)
    cells = [_format(row[key]) for key in LEGACY_RESULTS_HEADER]
    if header == RESULTS_HEADER:
        cells += [protocol_text(protocol[key]) for key in PROTOCOL_COLUMNS]
    writer.writerow(cells)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="") as handle:
        handle.write(buffer.getvalue())
        handle.flush()
        os.fsync(handle.fileno())


def protocol_of(record: Mapping[str, Any]) -> dict[str, str]:
    """The ``PROTOCOL_KEYS`` a result records, as text: a results-file row, or a result dict / result.json
    (whose protocol is nested under ``protocol``). Settings it does not record are left out."""
    values = {key: record[key] for key in PROTOCOL_KEYS if key in record}
    nested = record.get("protocol")
    if isinstance(nested, Mapping):
        values.update({key: nested[key] for key in PROTOCOL_COLUMNS if key in nested})
    return {key: protocol_text(value) for key, value in values.items() if value not in (None, "")}


def protocol_differences(theirs: Mapping[str, str], ours: Mapping[str, str]) -> list[str]:
    """``"key A vs B"`` for every setting both record with different values, in ``PROTOCOL_KEYS`` order."""
    return [f"{key} {theirs[key]} vs {ours[key]}" for key in PROTOCOL_KEYS
            if key in theirs and key in ours and theirs[key] != ours[key]]


def finished_architectures(path: str | os.PathLike, dataset: str, epochs: int, seed: int,
                           protocol: Mapping[str, Any] | None = None) -> set[Architecture]:
    """Architectures already in a results file; a UserError when its rows come from another protocol.

    One file holds one ground truth: rows for another dataset, epoch count or seed, or (with
    ``protocol``, ``result_protocol``'s dict) trained with other settings, would make ``rank``
    compare unlike accuracies, so they are refused rather than mixed. Rows of a file written
    before the protocol columns can be checked on dataset, epochs and seed only.
    """
    ours = protocol_of({"dataset": dataset, "epochs": epochs, "seed": seed, "protocol": protocol or {}})
    finished = set()
    for number, row in enumerate(read_results(path), start=2):
        differences = protocol_differences(protocol_of(row), ours)
        if differences:
            raise UserError(f"{path}, line {number}: a result trained with other settings: "
                            f"{', '.join(differences)} (file vs this run, which is {dataset}, {epochs} epochs, "
                            f"seed {seed}); one results file holds one protocol: pass another --out or --results")
        try:
            finished.add(parse_architecture(row["arch"]))
        except UserError as exc:
            raise UserError(f"{path}, line {number}: {exc}") from None
    return finished


def read_architectures(path: str | os.PathLike) -> list[Architecture]:
    """Architecture strings from a text file, one a line; blank lines and ``#`` comments are skipped."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise UserError(f"cannot read architectures file {path}: {exc.strerror or exc}") from None
    archs = []
    for number, line in enumerate(lines, start=1):
        text = line.split("#", 1)[0].strip()
        if text:
            try:
                archs.append(parse_architecture(text))
            except UserError as exc:
                raise UserError(f"{path}, line {number}: {exc}") from None
    return archs


def run_dir_for(out: str | os.PathLike, arch: Architecture) -> Path:
    """The run folder of ``arch`` under ``out``, named by ``arch.index``: this project's base-5 index
    (ops as base-5 digits in ``EDGES`` order), not NB201's official index."""
    return Path(out) / str(arch.index)

