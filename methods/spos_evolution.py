"""The evolutionary search of SPOS (Guo et al., "Single Path One-Shot Neural Architecture
Search with Uniform Sampling", ECCV 2020, section 3.4), on any benchmark.

Generation 0 is ``population_size`` distinct uniform samples (or given ``initial``
candidates first, as GreedyNAS seeds it from its pool). Every later generation has
``population_size`` new candidates made from the ``top_k`` best architectures evaluated so
far: half by mutation (each edge re-drawn with probability ``mutation_prob``) and half by
crossover (each edge taken from one of two distinct parents), never an architecture
already evaluated or pending. The SPOS paper's settings are the defaults: population 50,
top 10 parents, 25 mutations and 25 crossovers per generation, mutation probability 0.1,
20 generations (a budget of 50 + 20 x 50 = 1,050 evaluations).

Asks may run ahead of tells: a generation is bred from what has been told when its
first member is asked.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from harness import Searcher, register_searcher
from harness.space import NUM_ARCHITECTURES, NUM_EDGES, NUM_OPS, Architecture, sample_architecture

_MAX_TRIES = 100


@register_searcher("spos_evolution")
class SposEvolution(Searcher):
    """SPOS' evolutionary search: top-k parents, crossover and per-edge mutation, no repeats."""

    def __init__(self, seed: int = 0, population_size: int = 50, top_k: int = 10, mutation_prob: float = 0.1,
                 generations: int = 20, initial: list[Architecture] | None = None) -> None:
        super().__init__(seed)
        for name, value in (("population_size", population_size), ("top_k", top_k), ("generations", generations)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if top_k < 2:
            raise ValueError(f"top_k must be at least 2 (crossover needs two parents), got {top_k}")
        if not 0.0 < mutation_prob <= 1.0:
            raise ValueError(f"mutation_prob must be in (0, 1], got {mutation_prob!r}")
        self.population_size, self.top_k = population_size, top_k
        self.mutation_prob, self.generations = float(mutation_prob), generations
        self.queue: deque[Architecture] = deque(initial or [])
        self.seen: set[Architecture] = set(self.queue)
        self.generation = 0

    def hyperparameters(self) -> dict[str, Any]:
        return {"population_size": self.population_size, "top_k": self.top_k,
                "mutation_prob": self.mutation_prob, "generations": self.generations,
                "budget": self.population_size * (self.generations + 1)}

    @property
    def budget(self) -> int:
        return self.population_size * (self.generations + 1)

    def _fresh(self, make) -> Architecture:
        for _ in range(_MAX_TRIES):
            arch = make()
            if arch not in self.seen:
                return arch
        if len(self.seen) >= NUM_ARCHITECTURES:
            return make()  # the whole space has been seen: repeats are unavoidable
        while True:
            arch = sample_architecture(self.rng)
            if arch not in self.seen:
                return arch

    def _breed(self) -> list[Architecture]:
        """One generation: population_size new candidates (initial samples for generation 0)."""
        told = sorted(self.history, key=lambda item: -item[1])
        parents = list(dict.fromkeys(arch for arch, _ in told))[: self.top_k]
        children: list[Architecture] = []

        def add(make) -> None:
            child = self._fresh(make)
            self.seen.add(child)
            children.append(child)

        if len(parents) < 2:  # generation 0, or nothing told yet
            for _ in range(self.population_size):
                add(lambda: sample_architecture(self.rng))
            return children
        n_mutations = self.population_size // 2
        for _ in range(n_mutations):
            add(lambda: self._mutate(parents[int(self.rng.integers(len(parents)))]))
        for _ in range(self.population_size - n_mutations):
            add(lambda: self._crossover(parents))
        return children

    def _mutate(self, parent: Architecture) -> Architecture:
        ops = np.array(parent.ops)
        flip = self.rng.random(NUM_EDGES) < self.mutation_prob
        ops[flip] = self.rng.integers(0, NUM_OPS, int(flip.sum()))
        return Architecture(tuple(int(o) for o in ops))

    def _crossover(self, parents: list[Architecture]) -> Architecture:
        a, b = self.rng.choice(len(parents), size=2, replace=False)
        take_first = self.rng.random(NUM_EDGES) < 0.5
        ops = np.where(take_first, parents[int(a)].ops, parents[int(b)].ops)
        return Architecture(tuple(int(o) for o in ops))

    def _ask(self) -> Architecture:
        if not self.queue:
            self.queue.extend(self._breed())
            self.generation += 1
        return self.queue.popleft()

    def _state_dict(self) -> dict[str, Any]:
        return {"queue": [a.ops for a in self.queue], "seen": sorted(a.ops for a in self.seen),
                "generation": self.generation}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self.queue = deque(Architecture(tuple(ops)) for ops in state["queue"])
        self.seen = {Architecture(tuple(ops)) for ops in state["seen"]}
        self.generation = int(state["generation"])
