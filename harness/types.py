"""Value types shared by searchers, benchmarks and the run loop."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Result:
    """What a benchmark says about one architecture.

    ``val_accuracy`` is the search signal (the only figure a searcher is given);
    ``test_accuracy`` is for reports only. ``cost_seconds`` is the training time the
    benchmark charges for the query (0 when it has none). ``extras`` holds any further
    metrics the benchmark offers (never shown to searchers).
    """

    val_accuracy: float
    test_accuracy: float
    cost_seconds: float = 0.0
    extras: Mapping[str, float] = field(default_factory=dict)
