"""Ranking quality while a supernet trains: Kendall tau on a fixed sample every few epochs.

The monitor scores the same architectures at every check (``harness.oneshot.scoring``, with BN
recalibration) and compares them with their ground truth, so a run's history shows tau
against epochs. It restores the supernet's BatchNorm buffers afterwards, so monitoring
never changes what the run trains.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from harness.oneshot.data import Dataset
from harness.oneshot.scoring import ScoringConfig, SupernetScorer
from harness.space import Architecture


class RankingMonitor:
    """Call with (model, epoch); returns figures to log on the epochs it checks, else {}."""

    def __init__(self, dataset: Dataset, archs: list[Architecture], truth: np.ndarray, every: int,
                 scoring: ScoringConfig | None = None) -> None:
        if every < 1:
            raise ValueError(f"every must be a positive number of epochs, got {every}")
        self.dataset, self.archs, self.truth, self.every = dataset, archs, np.asarray(truth, float), every
        self.scoring = scoring or ScoringConfig(calibration_images=320, eval_images=500)

    def __call__(self, model: torch.nn.Module, epoch: int, last: bool = False) -> dict[str, Any]:
        if epoch % self.every and not last:
            return {}
        buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
        was_training = model.training
        start = time.perf_counter()
        try:
            scores = SupernetScorer(model, self.dataset, self.scoring).score_many(self.archs)
        finally:
            with torch.no_grad():
                for name, buffer in model.named_buffers():
                    buffer.copy_(buffers[name])
            model.train(was_training)
        return {
            "monitor_kendall_tau": float(kendalltau(scores[:, 0], self.truth).statistic),
            "monitor_kendall_tau_by_loss": float(kendalltau(-scores[:, 1], self.truth).statistic),
            "monitor_kendall_tau_by_probability": float(kendalltau(scores[:, 2], self.truth).statistic),
            "monitor_spearman": float(spearmanr(scores[:, 0], self.truth).statistic),
            "monitor_archs": len(self.archs),
            "monitor_seconds": time.perf_counter() - start,
        }
