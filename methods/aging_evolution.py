"""Aging (regularized) evolution, Real et al., "Regularized Evolution for Image Classifier
Architecture Search", AAAI 2019, Algorithm 1.

The first ``population_size`` architectures are uniform samples. After that each ask
draws ``sample_size`` members of the population uniformly *with* replacement (as the
paper's and NAS-Bench-201's reference code do), mutates the one with the highest
validation accuracy on one edge (``harness.space.mutate_architecture``), and each tell
appends the child and removes the *oldest* member, whatever its accuracy.

Defaults: population 10, sample size 3, the project's anchor settings. They are also the
settings of NAS-Bench-201's released REA runs: its reproduction commands call
``scripts-search/NAS-Bench-201-algos/R-EA.sh cifar10 3 -1`` (sample size 3, which
passes ``--ea_population 10``), and NATS-Bench's ``exps/NATS-algos/run-all.sh`` uses
``--ea_population 10 --ea_sample_size 3`` (D-X-Y/AutoDL-Projects).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from harness import Searcher, register_searcher
from harness.space import Architecture, mutate_architecture, sample_architecture


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


@register_searcher("aging_evolution")
class AgingEvolution(Searcher):
    """Tournament selection of size ``sample_size`` in a population of ``population_size``; oldest dies."""

    def __init__(self, seed: int = 0, population_size: int = 10, sample_size: int = 3) -> None:
        super().__init__(seed)
        self.population_size = _positive_int("population_size", population_size)
        self.sample_size = _positive_int("sample_size", sample_size)
        if self.sample_size > self.population_size:
            raise ValueError(
                f"sample_size ({sample_size}) cannot exceed population_size ({population_size})"
            )
        #: (architecture, validation accuracy), oldest on the left.
        self.population: deque[tuple[Architecture, float]] = deque()

    def hyperparameters(self) -> dict[str, Any]:
        return {"population_size": self.population_size, "sample_size": self.sample_size}

    def _ask(self) -> Architecture:
        if len(self.population) < self.population_size:
            return sample_architecture(self.rng)
        picks = self.rng.integers(len(self.population), size=self.sample_size)
        parent, parent_reward = self.population[int(picks[0])]
        for i in picks[1:]:
            arch, reward = self.population[int(i)]
            if reward > parent_reward:
                parent, parent_reward = arch, reward
        return mutate_architecture(parent, self.rng)

    def _tell(self, arch: Architecture, reward: float) -> None:
        self.population.append((arch, reward))
        if len(self.population) > self.population_size:
            self.population.popleft()

    def _state_dict(self) -> dict[str, Any]:
        return {"population": [(arch.ops, reward) for arch, reward in self.population]}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self.population = deque((Architecture(tuple(ops)), float(r)) for ops, r in state["population"])
