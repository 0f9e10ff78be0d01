"""Score architectures with inherited supernet weights, and a supernet as a Benchmark.

An architecture is scored on a fixed, seeded subset of the *valid* split, in eval mode after its BatchNorm statistics were recalibrated on a
fixed set of *training* batches (``harness.supernet.recalibrate_batchnorm``). Both sets are
drawn once per scorer, so every architecture is scored on the same images. The test split
is never touched. Recalibration is on by default; with ``recalibrate=False`` the running
statistics the supernet accumulated while training are used as they are (or, for a
supernet without running statistics, the batch statistics of each valid batch).

Both the accuracy (%) and the mean cross-entropy are measured; which one ranks
architectures is ``ScoringConfig.score``. The default is the loss (the score is then the
negative mean cross-entropy, higher is better): on the same images it is a continuous
figure where accuracy moves in steps of 1/n, and it ranked better at every check of our
CIFAR-10 supernets (results/supernets/*/history.jsonl: ``monitor_kendall_tau_by_loss``
against ``monitor_kendall_tau``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from harness.augment import normalize
from harness.data import Dataset
from harness.precision import autocast_factory, check_precision
from harness.space import Architecture
from harness.supernet import Supernet, recalibrate_batchnorm
from harness.types import Result


@dataclass(frozen=True)
class ScoringConfig:
    """How many images each architecture is recalibrated and evaluated on."""

    calibration_images: int = 640
    eval_images: int = 1000
    batch_size: int = 250
    recalibrate: bool = True
    seed: int = 0
    score: str = "loss"
    #: "auto" (bfloat16 autocast on CUDA, float32 on the CPU), "fp32" or "bf16" (``harness.precision``);
    #: BatchNorm statistics are recalibrated under the same precision.
    precision: str = "auto"

    SCORES = {"loss": "negative mean cross-entropy on the valid images",
              "accuracy": "accuracy (%) on the valid images"}

    def __post_init__(self) -> None:
        if self.score not in self.SCORES:
            raise ValueError(f"score must be one of {sorted(self.SCORES)}, got {self.score!r}")
        check_precision(self.precision)

    def ranking_score(self, accuracy_and_loss: np.ndarray) -> np.ndarray:
        """The figure that ranks architectures (higher is better) from ``score_many``'s (n, 2) output."""
        values = np.asarray(accuracy_and_loss, dtype=float)
        return values[..., 0] if self.score == "accuracy" else -values[..., 1]


class SupernetScorer:
    """Scores architectures on one supernet with fixed calibration and evaluation images."""

    def __init__(self, model: Supernet, dataset: Dataset, config: ScoringConfig | None = None,
                 channels_last: bool = True) -> None:
        config = config or ScoringConfig()
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

    def evaluate(self, arch: Architecture) -> tuple[float, float]:
        """(accuracy in %, mean cross-entropy) of ``arch`` on the evaluation images."""
        correct, losses = self.per_image(arch)
        return 100.0 * float(correct.mean()), float(losses.mean())

    def recalibrate(self, arch: Architecture) -> None:
        """Recompute ``arch``'s BatchNorm statistics on the calibration images (when configured)."""
        if self.config.recalibrate:
            with torch.inference_mode(False), self.autocast():
                recalibrate_batchnorm(self.model, arch, self.calibration_batches)

    def score(self, arch: Architecture) -> tuple[float, float]:
        """Recalibrate (when configured) and evaluate one architecture: (accuracy %, loss)."""
        start = time.perf_counter()
        self.recalibrate(arch)
        result = self.evaluate(arch)
        self.seconds += time.perf_counter() - start
        self.scored += 1
        return result

    def score_many(self, archs: Sequence[Architecture], progress=None) -> np.ndarray:
        """(n, 2): accuracy and loss of each architecture; ``progress`` is called once per architecture."""
        out = np.empty((len(archs), 2))
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
        self.reward_metric = (f"supernet accuracy on {scorer.n_eval} valid images "
                              f"({'after BN recalibration on ' + str(scorer.config.calibration_images) + ' train images' if scorer.config.recalibrate else 'no BN recalibration'})")
        self.report_metric = reference.report_metric if reference is not None else "none (no reference table)"
        self._cache: dict[Architecture, tuple[float, float]] = {}

    def query(self, arch: Architecture) -> Result:
        start = time.perf_counter()
        if arch not in self._cache:
            self._cache[arch] = self.scorer.score(arch)
        accuracy, loss = self._cache[arch]
        test = float(self.reference.query(arch).test_accuracy) if self.reference is not None else float("nan")
        return Result(val_accuracy=accuracy, test_accuracy=test, cost_seconds=time.perf_counter() - start,
                      extras={"supernet_loss": loss})
