"""What a search is scored against: the ``Result`` of one query and the ``Benchmark`` that answers it.

A benchmark keeps the figure a searcher may see (``val_accuracy``, the reward) apart from
the figure a report shows (``test_accuracy``); ``TabularBenchmark`` is the common case of a
table with one row per architecture.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from harness.space import NUM_ARCHITECTURES, Architecture


@dataclass(frozen=True)
class Result:
    """What a benchmark says about one architecture.

    ``val_accuracy`` is the search signal (the only figure a searcher is given);
    ``test_accuracy`` is for reports only. ``cost_seconds`` is the training time the
    benchmark charges for the query (0 when it has none, NaN when it is unknown for this
    architecture). ``extras`` holds any further metrics the benchmark offers (never shown
    to searchers).
    """

    val_accuracy: float
    test_accuracy: float
    cost_seconds: float = 0.0
    extras: Mapping[str, float] = field(default_factory=dict)


@runtime_checkable
class Benchmark(Protocol):
    """Answers queries with a ``Result`` whose validation and test figures are separate.

    ``reward_metric`` names what fills ``val_accuracy`` (what searchers optimise) and
    ``report_metric`` what fills ``test_accuracy`` (what reports show); every report
    prints both.

    A benchmark whose answers are random (e.g. one trained seed of an architecture drawn
    per query, as NAS-Bench-201's own searches do) may also have ``for_run(seed) ->
    Benchmark``: the benchmark one run with that seed queries, drawing from a generator
    seeded by it, so a run's draws depend on its seed only (never on the worker or the
    order of runs). ``run_search`` calls it through ``benchmark_for_run`` before the first
    query; a benchmark without it is used as it is.
    """

    name: str
    reward_metric: str
    report_metric: str

    def query(self, arch: Architecture) -> Result: ...


def benchmark_for_run(benchmark: Benchmark, seed: int) -> Benchmark:
    """The benchmark a run with ``seed`` queries: ``benchmark.for_run(seed)`` when it has one, else itself."""
    for_run = getattr(benchmark, "for_run", None)
    return benchmark if for_run is None else for_run(int(seed))


class TabularBenchmark:
    """A benchmark backed by arrays indexed by ``Architecture.index`` (15,625 rows)."""

    def __init__(
        self,
        name: str,
        val_accuracy: np.ndarray,
        test_accuracy: np.ndarray,
        reward_metric: str,
        report_metric: str,
        cost_seconds: np.ndarray | None = None,
        extras: Mapping[str, np.ndarray] | None = None,
        dataset: str | None = None,
    ) -> None:
        for label, array in (("val_accuracy", val_accuracy), ("test_accuracy", test_accuracy)):
            if array.shape != (NUM_ARCHITECTURES,):
                raise ValueError(f"{label} must have shape ({NUM_ARCHITECTURES},), got {array.shape}")
        self.name = name
        self.val_accuracy = np.asarray(val_accuracy, dtype=np.float64)
        self.test_accuracy = np.asarray(test_accuracy, dtype=np.float64)
        self.cost_seconds = (
            np.zeros(NUM_ARCHITECTURES) if cost_seconds is None else np.asarray(cost_seconds, float)
        )
        self.extras = dict(extras or {})
        self.reward_metric = reward_metric
        self.report_metric = report_metric
        #: The image dataset the table's figures were trained on (e.g. "cifar10"), when it is one.
        self.dataset = dataset

    def query(self, arch: Architecture) -> Result:
        i = arch.index
        return Result(
            val_accuracy=float(self.val_accuracy[i]),
            test_accuracy=float(self.test_accuracy[i]),
            cost_seconds=float(self.cost_seconds[i]),
            extras={k: float(v[i]) for k, v in self.extras.items()},
        )

    def query_indices(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised lookup: (validation, test) accuracies of the given architecture indices."""
        return self.val_accuracy[indices], self.test_accuracy[indices]

    @property
    def test_optimum(self) -> float:
        """Best test accuracy in the table (the reference for regret)."""
        return float(self.test_accuracy.max())

    @property
    def optimum_by_val(self) -> Architecture:
        return Architecture.from_index(int(np.argmax(self.val_accuracy)))
