"""Score architectures with inherited supernet weights, and a supernet as a Benchmark.

An architecture is scored on a fixed, seeded subset of the *valid* split, in eval mode after its BatchNorm statistics were recalibrated on a
fixed set of *training* batches (``harness.oneshot.supernet.recalibrate_batchnorm``). Both sets are
drawn once per scorer, so every architecture is scored on the same images. The test split
is never touched. Recalibration is on by default; with ``recalibrate=False`` the running
statistics the supernet accumulated while training are used as they are (or, for a
supernet without running statistics, the batch statistics of each valid batch).

Three figures are measured per architecture (``FIGURES``): the accuracy (%), the mean
cross-entropy, and the mean softmax probability of the true class (%). Which one ranks
architectures is ``ScoringConfig.score``; ``percent_score`` puts each on the 0-100 scale
of an accuracy (the loss as ``100 * exp(-loss)``, the geometric mean of the true-class
probabilities, which orders architectures exactly as the loss does), and that is the
reward a search stage on the supernet sees, so a search and ``rank`` use one signal.

The default score is the probability. On 500 architectures of the 100-epoch SPOS supernet
(a sample other than ``rank``'s; ``results/bench/scoring-spos-c16n1-e100-seed7.md``), over
200 random draws of 1,000 valid images it gave Kendall tau 0.490 +- 0.032 where the loss
gave 0.321 +- 0.058 and the accuracy 0.360 +- 0.069: the loss is dominated by a few
confidently wrong images, the accuracy moves in steps of 1/n, and the probability is
bounded and continuous.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from harness.errors import UserError
from harness.oneshot.augment import normalize
from harness.oneshot.averaging import with_average
from harness.oneshot.data import Dataset
from harness.oneshot.precision import autocast_factory, check_precision
from harness.oneshot.supernet import Supernet, recalibrate_batchnorm
from harness.oneshot.training import TrainConfig, load_checkpoint, resolve_device
from harness.search.benchmark import Result
from harness.space import Architecture

#: Valid images each architecture is scored on when no number is given (fewer on a smaller split).
DEFAULT_EVAL_IMAGES = 1000


@dataclass(frozen=True)
class ScoringConfig:
    """How many images each architecture is recalibrated and evaluated on."""

    calibration_images: int = 640
    #: None: ``DEFAULT_EVAL_IMAGES``, or the whole valid split when it is smaller (``for_dataset``).
    eval_images: int | None = None
    batch_size: int = 250
    recalibrate: bool = True
    seed: int = 0
    score: str = "probability"
    #: "auto" (bfloat16 autocast on CUDA, float32 on the CPU), "fp32" or "bf16" (``harness.oneshot.precision``);
    #: BatchNorm statistics are recalibrated under the same precision.
    precision: str = "auto"
    #: Where the supernet scores: "cpu" or "cuda" ("auto": CUDA when there is one). Part of what a kept
    #: score depends on: a GPU's sums differ from the CPU's in the last bits.
    device: str = "cpu"

    DEVICES = ("auto", "cpu", "cuda")
    SCORES = {"loss": "negative mean cross-entropy on the valid images",
              "accuracy": "accuracy (%) on the valid images",
              "probability": "mean softmax probability (%) of the true class on the valid images"}

    def __post_init__(self) -> None:
        if self.score not in self.SCORES:
            raise ValueError(f"score must be one of {sorted(self.SCORES)}, got {self.score!r}")
        check_precision(self.precision)
        if self.device not in self.DEVICES:
            raise UserError(f"unknown scoring device {self.device!r}; accepted: {', '.join(self.DEVICES)}")

    def resolved(self) -> ScoringConfig:
        """This config with ``device`` "auto" settled on this machine ("cuda" or "cpu")."""
        return dataclasses.replace(self, device=resolve_device(self.device).type)

    def for_dataset(self, dataset: Dataset) -> ScoringConfig:
        """This config with its image counts settled for ``dataset``, before any scoring.

        An ``eval_images`` left None becomes ``DEFAULT_EVAL_IMAGES`` or the whole valid split
        when that is smaller; a count given larger than its split (valid, or train for the
        recalibration images) is a UserError naming the split's size, rather than a count that
        is capped without a word while reports state the number asked for.
        """
        valid, train = len(dataset.split("valid")[1]), len(dataset.split("train")[1])
        for option, count, split, size in (("--eval-images", self.eval_images, "valid", valid),
                                           ("--calibration-images", self.calibration_images if self.recalibrate
                                            else 0, "train", train)):
            if count is not None and count > size:
                raise UserError(f"{option} {count} is more than the {size:,} images of the {dataset.name} "
                                f"{split} split; give at most {size}")
        if self.eval_images is not None:
            return self
        return dataclasses.replace(self, eval_images=min(DEFAULT_EVAL_IMAGES, valid))

    def ranking_score(self, figures: np.ndarray) -> np.ndarray:
        """The figure that ranks architectures (higher is better) from ``score_many``'s (n, 3) output."""
        values = np.asarray(figures, dtype=float)
        return -values[..., 1] if self.score == "loss" else values[..., FIGURES.index(self.score)]

    def percent_score(self, figures: np.ndarray) -> np.ndarray:
        """``ranking_score`` mapped monotonically onto 0-100 (the loss as ``100 * exp(-loss)``)."""
        values = np.asarray(figures, dtype=float)
        return 100.0 * np.exp(-values[..., 1]) if self.score == "loss" else self.ranking_score(values)


#: The columns of ``SupernetScorer.score_many``: accuracy (%), mean cross-entropy, mean
#: true-class probability (%).
FIGURES = ("accuracy", "loss", "probability")


class SupernetScorer:
    """Scores architectures on one supernet with fixed calibration and evaluation images."""

    def __init__(self, model: Supernet, dataset: Dataset, config: ScoringConfig | None = None,
                 channels_last: bool = True) -> None:
        config = (config or ScoringConfig()).for_dataset(dataset)
        self.model, self.dataset, self.config = model, dataset, config
        device = next(model.parameters()).device
        self.autocast = autocast_factory(config.precision, device)
        rng = np.random.default_rng(config.seed)
        train_x, _ = dataset.split("train")
        valid_x, valid_y = dataset.split("valid")
        calib = rng.choice(len(train_x), size=min(config.calibration_images, len(train_x)), replace=False)
        evals = np.sort(rng.choice(len(valid_x), size=min(config.eval_images, len(valid_x)), replace=False))

        def prepare(x: torch.Tensor) -> torch.Tensor:
            return normalize(x, dataset.mean, dataset.std, channels_last=channels_last).to(device)

        step = config.batch_size
        self.calibration_batches = [prepare(train_x[torch.as_tensor(calib[i:i + step])])
                                    for i in range(0, len(calib), step)]
        self.eval_batches = [(prepare(valid_x[torch.as_tensor(evals[i:i + step])]),
                              valid_y[torch.as_tensor(evals[i:i + step])].to(device))
                             for i in range(0, len(evals), step)]
        self.n_eval = int(len(evals))
        self.seconds = 0.0
        self.scored = 0

    @torch.inference_mode()
    def per_image(self, arch: Architecture) -> tuple[np.ndarray, np.ndarray]:
        """Whether ``arch`` classifies each evaluation image correctly, and its cross-entropy on each."""
        self.model.eval()
        correct, losses = [], []
        for images, labels in self.eval_batches:
            with self.autocast():
                logits = self.model(images, arch).float()
            correct.append((logits.argmax(1) == labels).cpu())
            losses.append(F.cross_entropy(logits, labels, reduction="none").cpu())
        return torch.cat(correct).numpy(), torch.cat(losses).double().numpy()

    def evaluate(self, arch: Architecture) -> tuple[float, float, float]:
        """``FIGURES`` of ``arch`` on the evaluation images: accuracy (%), mean loss, mean probability (%)."""
        correct, losses = self.per_image(arch)
        return 100.0 * float(correct.mean()), float(losses.mean()), 100.0 * float(np.exp(-losses).mean())

    def recalibrate(self, arch: Architecture) -> None:
        """Recompute ``arch``'s BatchNorm statistics on the calibration images (when configured)."""
        if self.config.recalibrate:
            with torch.inference_mode(False), self.autocast():
                recalibrate_batchnorm(self.model, arch, self.calibration_batches)

    def score(self, arch: Architecture) -> tuple[float, float, float]:
        """Recalibrate (when configured) and evaluate one architecture: its ``FIGURES``."""
        start = time.perf_counter()
        self.recalibrate(arch)
        result = self.evaluate(arch)
        self.seconds += time.perf_counter() - start
        self.scored += 1
        return result

    def score_many(self, archs: Sequence[Architecture], progress=None) -> np.ndarray:
        """(n, 3): the ``FIGURES`` of each architecture; ``progress`` is called once per architecture."""
        out = np.empty((len(archs), len(FIGURES)))
        for i, arch in enumerate(archs):
            out[i] = self.score(arch)
            if progress is not None:
                progress(i + 1)
        return out


class SupernetBenchmark:
    """A trained supernet as a Benchmark: reward = supernet score, report = the reference's test figure.

    ``reference`` is a tabular benchmark (e.g. the embedded CIFAR-10 table) for the test
    figure, or None (then ``test_accuracy`` is NaN). Scores are cached per architecture, and
    ``cost_seconds`` is the time the score took.
    """

    def __init__(self, scorer: SupernetScorer, name: str, reference=None) -> None:
        self.scorer = scorer
        self.name = name
        self.reference = reference
        config = scorer.config
        calibration = (f"after BN recalibration on {config.calibration_images} train images" if config.recalibrate
                       else "no BN recalibration")
        reward = {"loss": "100 * exp(-mean cross-entropy)", "accuracy": "accuracy (%)",
                  "probability": "mean true-class probability (%)"}[config.score]
        self.reward_metric = f"supernet {reward} on {scorer.n_eval} valid images ({calibration})"
        self.report_metric = reference.report_metric if reference is not None else "none (no reference table)"
        self._cache: dict[Architecture, tuple[float, float, float]] = {}

    def query(self, arch: Architecture) -> Result:
        start = time.perf_counter()
        if arch not in self._cache:
            self._cache[arch] = self.scorer.score(arch)
        figures = self._cache[arch]
        test = float(self.reference.query(arch).test_accuracy) if self.reference is not None else float("nan")
        return Result(val_accuracy=float(self.scorer.config.percent_score(np.array(figures))), test_accuracy=test,
                      cost_seconds=time.perf_counter() - start,
                      extras={f"supernet_{name}": value for name, value in zip(FIGURES, figures, strict=True)})


# -- the supernet a checkpoint holds, ready to score ------------------------------------------------
#: Which weights of a checkpoint score architectures: its weight average when the run kept
#: one (``train --ema-decay``), else the trained weights; or the trained weights always.
WEIGHT_CHOICES = ("average", "last")


def scored_weights(payload: dict[str, Any], weights: str = "average") -> tuple[str, dict[str, Any]]:
    """('average' or 'last', the state dict) that ``weights`` picks from a checkpoint."""
    if weights not in WEIGHT_CHOICES:
        raise UserError(f"unknown weights {weights!r}; accepted: {', '.join(WEIGHT_CHOICES)}")
    if weights == "average" and "weight_average" in payload:
        return "average", with_average(payload["model"], payload["weight_average"])
    return "last", payload["model"]


def supernet_from_checkpoint(path: str | Path, dataset: Dataset, weights: str = "average",
                             device: str = "cpu") -> tuple[Supernet, dict[str, Any]]:
    """The supernet a checkpoint (run folder, checkpoint.pt or snapshot) holds, on ``device``, and the checkpoint.

    ``weights`` picks its weight average when it has one ("average", the default) or the
    trained weights ("last"); the checkpoint's ``"scored_weights"`` entry says which was loaded.
    """
    payload = load_checkpoint(path)
    if payload["dataset"] != dataset.name:
        raise UserError(f"checkpoint {path} was trained on {payload['dataset']!r}, not {dataset.name!r}; "
                        f"pass --dataset {payload['dataset']}")
    config = TrainConfig.from_dict(payload["config"])
    model = Supernet(C=config.C, N=config.N, num_classes=dataset.num_classes, in_channels=dataset.image_shape[0],
                     affine=False, track_running_stats=config.bn_running_stats)
    payload["scored_weights"], state = scored_weights(payload, weights)
    try:
        model.load_state_dict(state)
    except RuntimeError:
        raise UserError(f"checkpoint {path} does not fit a C={config.C}, N={config.N} supernet for "
                        f"{dataset.name} (it was written by another configuration)") from None
    return model.to(device=resolve_device(device), memory_format=torch.channels_last), payload
