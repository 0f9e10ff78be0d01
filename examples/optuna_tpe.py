"""Optuna's TPE sampler as a searcher: one categorical parameter per edge, through Optuna's ask/tell.

Needs optuna (``pip install 'nas-harness[optuna]'``). Run it beside the built-ins by its file,
no PYTHONPATH needed (docs/plugins.md):

    nas-harness compare --methods aging_evolution random_search examples/optuna_tpe.py:OptunaTPE
"""

from __future__ import annotations

import copy
from typing import Any

import optuna
from optuna.distributions import CategoricalDistribution

from harness import Architecture, Searcher
from harness.space import NUM_EDGES, NUM_OPS

optuna.logging.set_verbosity(optuna.logging.WARNING)  # no log line per trial


class OptunaTPE(Searcher):
    """Tree-structured Parzen Estimator (Bergstra et al., NeurIPS 2011) over the six edges' ops.

    The first ``n_startup_trials`` cells are uniform samples; after that each edge's op is
    drawn from the ratio of two Parzen estimators fitted to the better and the worse cells
    told so far (Optuna's defaults: independent per edge, 24 candidates per ask).
    """

    name = "optuna_tpe"

    def __init__(self, seed: int = 0, n_startup_trials: int = 10) -> None:
        super().__init__(seed)
        self.n_startup_trials = n_startup_trials
        sampler = optuna.samplers.TPESampler(seed=int(self.rng.integers(2**31)), n_startup_trials=n_startup_trials)
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self.distributions = {f"edge{i}": CategoricalDistribution(list(range(NUM_OPS))) for i in range(NUM_EDGES)}
        #: Optuna trial numbers of the architectures asked and not yet told, oldest first.
        self.trials: dict[Architecture, list[int]] = {}

    def hyperparameters(self) -> dict[str, Any]:
        return {"n_startup_trials": self.n_startup_trials, "optuna": optuna.__version__}

    def _ask(self) -> Architecture:
        trial = self.study.ask(self.distributions)
        arch = Architecture(tuple(int(trial.params[f"edge{i}"]) for i in range(NUM_EDGES)))
        self.trials.setdefault(arch, []).append(trial.number)
        return arch

    def _tell(self, arch: Architecture, reward: float) -> None:
        numbers = self.trials[arch]
        self.study.tell(numbers.pop(0), reward)
        if not numbers:
            del self.trials[arch]

    def _state_dict(self) -> dict[str, Any]:
        # The study (its trials and the sampler's random state) is kept as it is: state is
        # deep-copied and pickled, so it need not be JSON.
        return {"study": self.study, "trials": [(arch.ops, numbers) for arch, numbers in self.trials.items()]}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self.study = copy.deepcopy(state["study"])  # a copy: the caller may load the same state again
        self.trials = {Architecture(tuple(ops)): list(numbers) for ops, numbers in state["trials"]}
