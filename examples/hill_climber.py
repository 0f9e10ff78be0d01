"""A plug-in searcher, as a user would write one: greedy local search with random restarts.

Compare it beside the built-ins with
    nas-harness compare --methods random_search aging_evolution examples.hill_climber:HillClimber
"""

from harness import Architecture, Searcher, neighbours, sample_architecture


class HillClimber(Searcher):
    """Visit the neighbours of the best cell so far; restart at random when they are exhausted."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.best_reward = float("-inf")
        self.frontier: list[Architecture] = []
        self.seen: set[Architecture] = set()

    def _ask(self) -> Architecture:
        while self.frontier:
            arch = self.frontier.pop()
            if arch not in self.seen:
                return arch
        return sample_architecture(self.rng)

    def _tell(self, arch: Architecture, reward: float) -> None:
        self.seen.add(arch)
        if reward > self.best_reward:
            self.best_reward = reward
            self.frontier = neighbours(arch)
            self.rng.shuffle(self.frontier)

    def _state_dict(self) -> dict:
        return {"best_reward": self.best_reward, "frontier": [a.ops for a in self.frontier],
                "seen": sorted(a.ops for a in self.seen)}

    def _load_state_dict(self, state: dict) -> None:
        self.best_reward = state["best_reward"]
        self.frontier = [Architecture(tuple(ops)) for ops in state["frontier"]]
        self.seen = {Architecture(tuple(ops)) for ops in state["seen"]}
