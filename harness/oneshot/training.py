"""The supernet training loop: one loop for every one-shot method, with checkpoints and resume.

Defaults are NB201's one-shot settings: SGD with Nesterov momentum 0.9, learning rate
0.025 annealed by a cosine (per step) to 0.001, weight decay 5e-4, batch 64, gradient
norm clipped at 5. Supernet weights train on the ``train`` split only; a method that needs
validation batches (DARTS' architecture step, GreedyNAS' path scoring) gets them from the
``valid`` split through ``StepContext.valid_batch``.

Reproducibility: the weights are initialised from ``config.seed`` with an explicit
generator, the batches of epoch ``e`` come from a generator seeded by ``(seed, e)``, and the
method draws from its own seeded generator. So the same seed and thread count give the
same weights, and a checkpoint (model, optimiser, method state, position in the epoch)
resumes to exactly the result of an uninterrupted run.

Checkpoints (``RUN_DIR/checkpoint.pt``) are written atomically after every epoch and when
the run is interrupted; they hold only tensors and plain Python values and are loaded with
``torch.load(weights_only=True)``. A loss that is not finite stops the run with a
``TrainingDiverged`` error and leaves the last good checkpoint in place. Every finished
epoch is appended to ``RUN_DIR/history.jsonl`` (strict JSON: an undefined figure is null);
an epoch that reports a ``derived_arch`` (DARTS) also gets ``derived_table_accuracy``, its
accuracy in the CIFAR-10 table (null on other datasets, which have no table).

Interruption: SIGINT (Ctrl-C) or SIGTERM, from the moment ``train`` is called and however
the process was started (a ``nohup ... &`` job inherits SIGINT as ignored; the handlers are
installed explicitly), stops the run at the next step boundary with a checkpoint and raises
``KeyboardInterrupt`` saying how to resume. A stop requested during the ranking monitor
abandons that check at once (the epoch's row then has no monitor figures). A second signal
stops at once, keeping the last checkpoint written.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from harness import jsonsafe
from harness.errors import DataFileError, RunFailed, UserError
from harness.interrupts import signal_name, stop_signals_to
from harness.oneshot.averaging import WeightAverage
from harness.oneshot.data import Dataset
from harness.oneshot.loss_meter import LossMeter, check_every_for
from harness.oneshot.method import StepContext, SupernetMethod
from harness.oneshot.precision import autocast_factory, check_precision
from harness.oneshot.supernet import Supernet
from harness.search.benchmark_specs import table_accuracy

CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_NAME = "history.jsonl"
CHECKPOINT_FORMAT = 1


class TrainingDiverged(RunFailed):
    """The training loss stopped being finite; the last good checkpoint is kept."""


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a supernet training run (NB201's one-shot settings by default)."""

    epochs: int = 100
    batch_size: int = 64
    lr: float = 0.025
    lr_min: float = 0.001
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    grad_clip: float | None = 5.0
    C: int = 16
    N: int = 5
    bn_running_stats: bool = True
    seed: int = 0
    threads: int | None = None
    #: Cap on steps per epoch (None: the whole training split); for short runs and tests.
    steps_per_epoch: int | None = None
    #: Keep a copy of the weights every k epochs under ``snapshots/`` (0: never).
    snapshot_every: int = 0
    channels_last: bool = True
    device: str = "auto"
    #: Keep an exponential moving average of the weights with this decay per step (0: off);
    #: ``rank`` then scores with the average (``harness.oneshot.averaging``), and the monitor checks
    #: both: its ``monitor_*`` figures are the average's, ``monitor_last_weights_*`` the trained weights'.
    ema_decay: float = 0.0
    #: "auto" (bfloat16 autocast on CUDA, float32 on the CPU), "fp32" or "bf16" (``harness.oneshot.precision``).
    precision: str = "auto"

    def __post_init__(self) -> None:
        check_common_settings(self)
        if not 0.0 <= self.ema_decay < 1.0:
            raise UserError(f"ema_decay must be in [0, 1) (0: no weight average), got {self.ema_decay}")
        if self.grad_clip is not None and not 0 < self.grad_clip <= FLOAT32_MAX:
            raise UserError(f"grad_clip must be a positive gradient norm, or None for no clipping "
                            f"(--grad-clip 0), got {self.grad_clip}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    #: Settings that change the supernet's shape; a checkpoint must agree on them.
    SHAPE_KEYS = ("C", "N", "bn_running_stats")
    #: Settings that change the trajectory; resuming with other values would not continue the same run.
    SCHEDULE_KEYS = ("epochs", "batch_size", "lr", "lr_min", "momentum", "nesterov", "weight_decay", "grad_clip",
                     "seed", "steps_per_epoch", "ema_decay", "precision")


# -- pieces ---------------------------------------------------------------------------------


#: The largest float32: a learning rate (or another optimiser setting) above it cannot be used at all.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_common_settings(config: Any) -> None:
    """The checks every training config shares (sizes, learning rates, step cap, seed, device)."""
    positive = {"epochs": config.epochs, "batch_size": config.batch_size, "C": config.C, "N": config.N}
    for name, value in positive.items():
        if not isinstance(value, int) or value < 1:
            raise UserError(f"{name} must be a positive integer, got {value!r}")
    for name in ("lr", "lr_min", "momentum", "weight_decay"):  # the optimiser holds them as float32
        value, low = getattr(config, name), "positive" if name == "lr" else "non-negative"
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= FLOAT32_MAX
                or (name == "lr" and value == 0)):
            raise UserError(f"{name} must be a {low} number float32 can hold (at most {FLOAT32_MAX:.3g}), "
                            f"got {value!r}")
    if not (config.lr > 0 and 0 <= config.lr_min <= config.lr):
        raise UserError(f"need lr > 0 and 0 <= lr_min <= lr (the cosine goes from lr down to lr_min), "
                        f"got lr={config.lr}, lr_min={config.lr_min}")
    if config.steps_per_epoch is not None and config.steps_per_epoch < 1:
        raise UserError(f"steps_per_epoch must be positive, got {config.steps_per_epoch}")
    if config.threads is not None and config.threads < 1:
        raise UserError(f"threads must be positive, got {config.threads}")
    if config.seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {config.seed}")
    if config.device not in ("auto", "cpu", "cuda"):
        raise UserError(f"unknown device {config.device!r}; accepted: auto, cpu, cuda")
    check_precision(config.precision)


def initialise_weights(model: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default initialisation of every conv and linear layer, drawn from ``generator``."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
                if module.bias is not None:
                    fan_in = module.weight[0].numel()
                    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                    nn.init.uniform_(module.bias, -bound, bound, generator=generator)


def cosine_lr(step: int, total_steps: int, lr: float, lr_min: float) -> float:
    """Cosine annealing from ``lr`` at step 0 to ``lr_min`` at ``total_steps``."""
    progress = min(max(step / max(total_steps, 1), 0.0), 1.0)
    return lr_min + 0.5 * (lr - lr_min) * (1.0 + math.cos(math.pi * progress))


def epoch_generator(seed: int, epoch: int, stream: int) -> torch.Generator:
    """The generator of one data stream (0: train batches, 1: valid batches) in one epoch."""
    sequence = np.random.SeedSequence([seed, epoch, stream])
    return torch.Generator().manual_seed(int(sequence.generate_state(1, dtype=np.uint64)[0] >> 1))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' was asked for but no CUDA device is available; use --device cpu")
    return torch.device(name)


def atomic_save(payload: Any, path: Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; a UserError says what is wrong with it."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    if not path.is_file():
        raise DataFileError(f"no checkpoint at {path}; expected a {CHECKPOINT_NAME} written by 'nas-harness train'")
    try:
        # TorchVersion (a str subclass) is admitted for checkpoints that stored torch.__version__ as is.
        with torch.serialization.safe_globals([torch.torch_version.TorchVersion]):
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, not a torch file, foreign pickle
        raise DataFileError(f"checkpoint {path} is corrupt or not a nas-harness checkpoint "
                            f"({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise DataFileError(f"checkpoint {path} is not a nas-harness checkpoint (format {CHECKPOINT_FORMAT})")
    missing = [k for k in ("config", "method", "model", "dataset") if k not in payload]
    if missing:
        raise DataFileError(f"checkpoint {path} is incomplete: missing {', '.join(missing)}")
    return payload


def check_run_folder(run_dir: str | os.PathLike, resume: bool) -> None:
    """Refuse a new run over a checkpoint, and a resume without one (before any work is done)."""
    checkpoint = Path(run_dir) / CHECKPOINT_NAME
    if checkpoint.exists() and not resume:
        raise UserError(f"{checkpoint} exists; pass --resume to continue it or choose another --out")
    if resume and not checkpoint.exists():
        raise UserError(f"--resume: there is no checkpoint to continue in {Path(run_dir)} "
                        f"(no {CHECKPOINT_NAME}); drop --resume to start a new run there")


def kept_checkpoint_note(checkpoint: Path) -> str:
    """What a diverged run leaves behind, truthfully: the last checkpoint, or none yet."""
    if checkpoint.exists():
        return f"the last good checkpoint is kept at {checkpoint}"
    return "no checkpoint was written: the run diverged before its first epoch ended"


def check_compatible(payload: dict[str, Any], method: str, config: TrainConfig, dataset: str,
                     where: str, keys: tuple[str, ...] = TrainConfig.SHAPE_KEYS) -> None:
    """Refuse a checkpoint from another method, dataset or configuration (``keys``), naming the mismatch."""
    saved = TrainConfig.from_dict(payload["config"])
    differences = [f"method {payload['method']!r} vs {method!r}"] if payload["method"] != method else []
    if payload["dataset"] != dataset:
        differences.append(f"dataset {payload['dataset']!r} vs {dataset!r}")
    for key in keys:
        if getattr(saved, key) != getattr(config, key):
            differences.append(f"{key} {getattr(saved, key)!r} vs {getattr(config, key)!r}")
    if differences:
        raise UserError(f"checkpoint {where} was written for another configuration: {'; '.join(differences)} "
                        f"(checkpoint vs this run)")


def build_supernet(config: TrainConfig, dataset: Dataset) -> Supernet:
    channels = dataset.image_shape[0]
    return Supernet(C=config.C, N=config.N, num_classes=dataset.num_classes, in_channels=channels,
                    affine=False, track_running_stats=config.bn_running_stats)


@dataclass
class TrainOutcome:
    """What a finished (or interrupted) run leaves: where, how far, and the per-epoch history."""

    run_dir: Path
    epochs_done: int
    history: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False

    @property
    def checkpoint(self) -> Path:
        return self.run_dir / CHECKPOINT_NAME


class _Abandon(KeyboardInterrupt):
    """A stop requested during work that is dropped rather than finished (the ranking monitor)."""


class _StopFlag:
    """Turns SIGINT / SIGTERM into a flag checked between steps (the step in flight completes).

    Inside ``abandonable()`` a request raises ``_Abandon`` at once instead, for long work that can
    be dropped. A second request always raises ``KeyboardInterrupt`` at once.
    """

    def __init__(self) -> None:
        self.raised: int | None = None
        self._abandonable = False

    def _handle(self, signum: int, frame: Any) -> None:  # noqa: ARG002
        if self.raised is not None:
            raise KeyboardInterrupt(f"stopped at once by a second {signal_name(signum)}; "
                                    f"the last checkpoint written is kept (continue with --resume)")
        self.raised = signum
        if self._abandonable:
            self._abandonable = False
            raise _Abandon

    @contextlib.contextmanager
    def installed(self) -> Iterator[_StopFlag]:
        with stop_signals_to(self._handle):
            yield self

    @contextlib.contextmanager
    def abandonable(self) -> Iterator[None]:
        self._abandonable = True
        try:
            if self.raised is not None:
                raise _Abandon
            yield
        finally:
            self._abandonable = False


class _ValidStream:
    """Endless valid batches for a method, reproducible from (seed, epoch) and a counter."""

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, device: torch.device,
                 channels_last: bool) -> None:
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.device, self.channels_last = device, channels_last
        self.epoch, self.used = 0, 0
        self._iterator: Iterator | None = None
        self._pass = 0

    def start_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.used, self._pass, self._iterator = epoch, 0, 0, None
        for _ in range(skip):
            self()

    def _new_pass(self) -> Iterator:
        generator = epoch_generator(self.seed, self.epoch * 1000 + self._pass, 1)
        self._pass += 1
        return self.dataset.batches("valid", self.batch_size, generator, augment=False,
                                    channels_last=self.channels_last, device=self.device)

    def __call__(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._iterator is None:
            self._iterator = self._new_pass()
        try:
            batch = next(self._iterator)
        except StopIteration:
            self._iterator = self._new_pass()
            batch = next(self._iterator)
        self.used += 1
        return batch


# -- the trainer ---------------------------------------------------------------------------


class SupernetTrainer:
    """Trains ``method``'s supernet on ``dataset`` under ``config``, checkpointing into ``run_dir``."""

    def __init__(self, method: SupernetMethod, dataset: Dataset, config: TrainConfig, run_dir: str | os.PathLike,
                 tracker: Any = None, progress: bool = True, method_kwargs: dict[str, Any] | None = None,
                 monitor: Any = None) -> None:
        self.method, self.dataset, self.config = method, dataset, config
        #: The keyword arguments the method was built with (besides the seed), so it can be rebuilt.
        self.method_kwargs = dict(method_kwargs or {})
        #: Optional ``monitor(model, epoch, last=...) -> dict`` (``harness.oneshot.monitor.RankingMonitor``).
        self.monitor = monitor
        self.run_dir = Path(run_dir)
        self.tracker = tracker
        self.progress = progress
        self.device = resolve_device(config.device)
        # Resident on the device: batches are cut, augmented and normalised there (no copy per step on a GPU).
        self.dataset = dataset = dataset.to(self.device)
        self._autocast = autocast_factory(config.precision, self.device)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.model = build_supernet(config, dataset)
        initialise_weights(self.model, torch.Generator().manual_seed(config.seed))
        self.model.to(self.device)
        if config.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.method.setup(self.model)
        self.average = WeightAverage(self.model, config.ema_decay) if config.ema_decay else None
        self.optimizer = torch.optim.SGD(
            self.weight_parameters(), lr=config.lr, momentum=config.momentum,
            nesterov=config.nesterov, weight_decay=config.weight_decay,
        )
        n_train = len(dataset.train_y)
        full = n_train // config.batch_size
        if full < 1:
            raise UserError(f"batch size {config.batch_size} exceeds the {n_train} training images")
        self.steps_per_epoch = min(full, config.steps_per_epoch or full)
        self.valid = _ValidStream(dataset, config.batch_size, config.seed, self.device, config.channels_last)
        self.epoch, self.step_in_epoch = 0, 0
        self.history: list[dict[str, Any]] = []
        self.elapsed_seconds = 0.0
        self.cpu_seconds = 0.0
        self.tracking_run_id: str | None = None
        self._epoch_loss = LossMeter()
        #: Steps between host reads of the loss (``harness.oneshot.loss_meter``): 1 on the CPU.
        self.check_loss_every = check_every_for(self.device)

    def weight_parameters(self) -> list[nn.Parameter]:
        """The supernet weights (what SGD trains); architecture parameters live in the method."""
        return list(self.model.parameters())

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / CHECKPOINT_NAME

    # -- checkpoints --------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "config": asdict(self.config),
            "model_config": self.model.config,
            "method": self.method.name,
            "method_hyperparameters": self.method.hyperparameters(),
            "method_kwargs": self.method_kwargs,
            "dataset": self.dataset.name,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "epoch_loss": self._epoch_loss.state(),
            "valid_used": self.valid.used,
            "model": self.model.state_dict(),
            **self._average_entries(),
            "optimizer": self.optimizer.state_dict(),
            "method_state": self.method.state_dict(),
            "history": self.history,
            "elapsed_seconds": self.elapsed_seconds,
            "cpu_seconds": self.cpu_seconds,
            "tracking_run_id": self.tracking_run_id,
            "torch_version": str(torch.__version__),
        }

    def _average_entries(self) -> dict[str, Any]:
        """The weight average's state (``rank`` scores with it), when the run keeps one."""
        return {} if self.average is None else {"weight_average": self.average.state_dict()}

    def save_checkpoint(self) -> Path:
        atomic_save(self.state(), self.checkpoint_path)
        return self.checkpoint_path

    def resume(self) -> bool:
        """Load ``run_dir``'s checkpoint if there is one; False when starting fresh."""
        if not self.checkpoint_path.exists():
            return False
        payload = load_checkpoint(self.checkpoint_path)
        check_compatible(payload, self.method.name, self.config, self.dataset.name, str(self.checkpoint_path),
                         TrainConfig.SHAPE_KEYS + TrainConfig.SCHEDULE_KEYS)
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.method.load_state_dict(payload["method_state"])
        if self.average is not None:
            self.average.load_state_dict(payload["weight_average"])
        self.epoch, self.step_in_epoch = int(payload["epoch"]), int(payload["step_in_epoch"])
        self._epoch_loss = LossMeter(float(payload["epoch_loss"][0]), int(payload["epoch_loss"][1]))
        self.history = list(payload["history"])
        self.elapsed_seconds = float(payload["elapsed_seconds"])
        self.cpu_seconds = float(payload["cpu_seconds"])
        self.tracking_run_id = payload.get("tracking_run_id")
        self._resume_valid_used = int(payload["valid_used"])
        return True

    def _save_snapshot(self) -> None:
        every = self.config.snapshot_every
        if every and self.epoch % every == 0:
            atomic_save({"format": CHECKPOINT_FORMAT, "config": asdict(self.config), "method": self.method.name,
                         "dataset": self.dataset.name, "epoch": self.epoch, "model": self.model.state_dict(),
                         **self._average_entries(),
                         "method_state": self.method.state_dict()},
                        self.run_dir / "snapshots" / f"epoch_{self.epoch:04d}.pt")

    def _append_history(self, row: dict[str, Any]) -> None:
        self.history.append(row)
        with open(self.run_dir / HISTORY_NAME, "a") as handle:
            handle.write(jsonsafe.dumps(row) + "\n")

    # -- the loop -----------------------------------------------------------------------
    def train(self, resume: bool = False) -> TrainOutcome:
        """Run (or continue, with ``resume``) until ``config.epochs``; returns the outcome.

        Raises ``KeyboardInterrupt`` after saving a checkpoint when interrupted, and
        ``TrainingDiverged`` (checkpoint untouched) when the loss stops being finite.
        """
        check_run_folder(self.run_dir, resume)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._resume_valid_used = 0
        stop = _StopFlag()
        with stop.installed():  # before the resume and tracking start, so no request is lost
            if resume:
                self.resume()
            total_steps = self.config.epochs * self.steps_per_epoch
            self._start_tracking()
            status = "FAILED"
            try:
                while self.epoch < self.config.epochs:
                    if not self._run_epoch(total_steps, stop):
                        self.save_checkpoint()
                        status = "KILLED"
                        where = f"after {self.epoch} of {self.config.epochs} epochs" + (
                            f" and {self.step_in_epoch} steps" if self.step_in_epoch else "")
                        raise KeyboardInterrupt(
                            f"{signal_name(stop.raised)}: interrupted {where}; checkpoint saved at "
                            f"{self.checkpoint_path}; continue with the same command and --resume")
                status = "FINISHED"
            finally:
                self._end_tracking(status)
        return TrainOutcome(self.run_dir, self.epoch, self.history)

    def _run_epoch(self, total_steps: int, stop: _StopFlag) -> bool:
        """Train the rest of the current epoch; False when a stop was requested mid-way."""
        cfg = self.config
        generator = epoch_generator(cfg.seed, self.epoch, 0)
        batches = self.dataset.batches("train", cfg.batch_size, generator, augment=True,
                                       channels_last=cfg.channels_last, device=self.device)
        skip = self.step_in_epoch
        for _ in range(skip):  # reproduce the data stream up to where the checkpoint left it
            next(batches)
        self.valid.start_epoch(self.epoch, skip=self._resume_valid_used if skip else 0)
        self._resume_valid_used = 0
        if skip == 0:
            self._epoch_loss = LossMeter()
        bar = self._progress_bar()
        wall, cpu = time.perf_counter(), time.process_time()
        images_seen = 0
        try:
            for images, labels in batches:
                if self.step_in_epoch >= self.steps_per_epoch:
                    break
                if stop.raised is not None:
                    return False
                global_step = self.epoch * self.steps_per_epoch + self.step_in_epoch
                lr = cosine_lr(global_step, total_steps, cfg.lr, cfg.lr_min)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                context = StepContext(self.model, self.optimizer, self.valid, lr, cfg.grad_clip, self._autocast,
                                      progress=global_step / total_steps)
                self._epoch_loss.add(self.method.train_step(context, images, labels))
                if self.average is not None:
                    self.average.update(self.model)
                self.step_in_epoch += 1
                images_seen += len(labels)
                if self._epoch_loss.due(self.check_loss_every) or self.step_in_epoch >= self.steps_per_epoch:
                    self._check_loss(bar, images_seen, wall)
                if bar is not None:
                    bar.update(1)
            self._check_loss(bar, images_seen, wall)  # an epoch the data cut short is checked too
        finally:
            self.elapsed_seconds += time.perf_counter() - wall
            self.cpu_seconds += time.process_time() - cpu
            if bar is not None:
                bar.close()
        epoch_seconds = time.perf_counter() - wall
        context = StepContext(self.model, self.optimizer, self.valid, lr, cfg.grad_clip, self._autocast,
                              progress=(self.epoch + 1) / self.config.epochs)
        extra = self.method.end_epoch(context, self.epoch)
        if "derived_arch" in extra:
            extra["derived_table_accuracy"] = table_accuracy(extra["derived_arch"], self.dataset.name)
        self.epoch += 1
        self.step_in_epoch = 0
        finished = True
        if self.monitor is not None:
            try:
                extra.update(self._run_monitor(stop))
            except _Abandon:
                finished = False
        row = {
            "epoch": self.epoch,
            "train_loss": self._epoch_loss.mean,
            "lr": lr,
            "images_per_second": images_seen / max(epoch_seconds, 1e-9),
            "epoch_seconds": epoch_seconds,
            "elapsed_seconds": self.elapsed_seconds,
            "cpu_seconds": self.cpu_seconds,
            "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            **extra,
        }
        self._append_history(row)
        self._save_snapshot()
        self.save_checkpoint()
        self._log_epoch(row)
        return finished

    def _check_loss(self, bar: Any, images_seen: int, wall: float) -> None:
        """Read the losses added since the last read; TrainingDiverged when one was not finite."""
        if not self._epoch_loss.due(1):
            return
        check = self._epoch_loss.check()
        if not check.finite:
            raise TrainingDiverged(
                f"training loss {check.divergence(self.epoch + 1)}; {kept_checkpoint_note(self.checkpoint_path)} "
                f"(try a lower --lr or a gradient clip)")
        if bar is not None:
            rate = images_seen / max(time.perf_counter() - wall, 1e-9)
            bar.set_postfix(loss=f"{check.last:.3f}", img_s=f"{rate:.0f}", refresh=False)

    def _run_monitor(self, stop: _StopFlag) -> dict[str, Any]:
        """The monitor's figures for the epoch just finished; a stop request abandons the check at once."""
        buffers = {name: buffer.clone() for name, buffer in self.model.named_buffers()}
        was_training = self.model.training
        last = self.epoch == self.config.epochs
        try:
            with stop.abandonable():
                if self.average is None:
                    return self.monitor(self.model, self.epoch, last=last)
                # the average is what rank scores; the trained weights' figures show what averaging changed
                figures = {f"monitor_last_weights_{key.removeprefix('monitor_')}": value
                           for key, value in self.monitor(self.model, self.epoch, last=last).items()}
                with self.average.swapped_in(self.model):
                    return {**self.monitor(self.model, self.epoch, last=last), **figures}
        except _Abandon:  # the monitor may not have restored what it changed
            with torch.no_grad():
                for name, buffer in self.model.named_buffers():
                    buffer.copy_(buffers[name])
            self.model.train(was_training)
            raise

    def _progress_bar(self):
        if not self.progress:
            return None
        from tqdm import tqdm

        return tqdm(total=self.steps_per_epoch, initial=self.step_in_epoch, file=sys.stderr, leave=False,
                    desc=f"{self.method.name} epoch {self.epoch + 1}/{self.config.epochs}", unit="step")

    # -- tracking -----------------------------------------------------------------------
    def _start_tracking(self) -> None:
        if self.tracker is None or not getattr(self.tracker, "enabled", False):
            return
        params = {"method": self.method.name, "dataset": self.dataset.name, **asdict(self.config),
                  **{f"hp.{k}": v for k, v in self.method.hyperparameters().items()}}
        if self.tracking_run_id and hasattr(self.tracker, "resume_parent"):
            self.tracker.resume_parent(self.tracking_run_id)
        else:
            self.tracker.start_parent(f"train-{self.method.name}", params)
        self.tracking_run_id = self.tracker.parent_run_id

    def _log_epoch(self, row: dict[str, Any]) -> None:
        if self.tracker is None:
            return
        numeric = {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and k != "epoch"}
        self.tracker.log_metrics(numeric, step=int(row["epoch"]))

    def _end_tracking(self, status: str) -> None:
        if self.tracker is not None:
            if (self.run_dir / HISTORY_NAME).exists():
                self.tracker.log_artifacts([self.run_dir / HISTORY_NAME])
            self.tracker.end(status)
