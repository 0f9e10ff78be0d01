"""Predictor-guided search in the manner of BANANAS (White, Neiswanger and Savani, "BANANAS:
Bayesian Optimization with Neural Architectures for Neural Architecture Search", AAAI 2021).

The first ``initial`` asks are distinct uniform samples. After that every ask:

1. fits an ensemble of ``ensemble_size`` predictors on every (architecture, validation
   figure) told so far, the architectures encoded with ``encoding`` (a name in
   ``harness.space.encodings``) and the figures transformed (``transform_rewards``);
2. proposes ``candidates`` architectures never asked before: mutations of the
   ``parents`` best architectures told so far (one or two edges changed, equally often),
   ``random_candidates`` of them uniform samples instead;
3. asks the candidate that maximises the acquisition over the ensemble's mean and
   standard deviation: ``its``, independent Thompson sampling as in the paper (one draw
   per candidate from a normal with the ensemble's mean and deviation), ``ucb`` (mean + 2
   deviations) or ``mean``.

Predictors (``predictor``): ``ridge``, ridge regressions each fitted on a bootstrap
resample of the told cells (the default), or ``mlp``, BANANAS's own kind, small neural
networks differing only in their random initialisation (two hidden layers of 32 units,
100 full-batch Adam epochs; the paper's have 10 layers of 20 units and a mean absolute
error loss). The figures are learned as the normal scores of their ranks, so any scale
works (accuracies, supernet scores) and chance-level cells are not outliers.

Defaults, tuned on the embedded table (``results/predictor-guided/README.md``): 5 initial
samples; 10 bagged ridge regressions on the ``rich`` encoding (effective one-hot, BANANAS's
path encoding and the structure features); 100 candidates from the 5 best, 10 of them
random; independent Thompson sampling. There (20 seeds x 150 queries) they reach 93.57, the
optimum less 0.5, in a median of 13.5 queries, and every seed ends at the optimum; an
``mlp`` ensemble of 5 needed a median of 17.5 queries on ``rich`` and 23 on ``path``.

It never asks an architecture twice. Every random number comes from ``self.rng`` (the
predictors' from a seed drawn from it), and fits run on one thread, so a seed gives one
trajectory whatever the machine. The model is refitted from the history at every ask, so
nothing of it is saved: the state is the set of asked architectures.

Cost per query, on one core: one ensemble fit plus scoring the candidates, about 6 ms with
the default ridge ensemble (mean over 150 queries; 6.5 ms with 150 cells told), against
50 ms (75 ms with 150 told) for an ``mlp`` ensemble of 5; nothing for the first
``initial`` asks. One architecture is proposed per fit (the paper proposes 10).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from harness import Searcher, register_searcher
from harness.space import NUM_ARCHITECTURES, NUM_EDGES, NUM_OPS, Architecture, ops_matrix
from harness.space.encodings import ENCODINGS

PREDICTORS = ("ridge", "mlp")
ACQUISITIONS = ("its", "ucb", "mean")
#: Deviations above the mean that ``ucb`` adds.
UCB_BETA = 2.0
#: L2 penalty of each ridge regression (fitted to the rank-transformed figures).
RIDGE_ALPHA = 1.0
#: The ``mlp`` predictor's networks: hidden units per layer, full-batch epochs, Adam settings.
MLP_HIDDEN, MLP_EPOCHS, MLP_LEARNING_RATE, MLP_WEIGHT_DECAY = 32, 100, 0.01, 1e-4
#: Mutation draws per wanted candidate before giving up (the neighbourhood may be exhausted).
_TRIES_PER_CANDIDATE = 20


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@lru_cache(maxsize=4)
def _encoded_space(encoding: str) -> np.ndarray:
    """Every architecture of the space encoded once (row i: ``Architecture.from_index(i)``)."""
    return ENCODINGS[encoding](ops_matrix())


@lru_cache(maxsize=1)
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _one_thread():
    """BLAS on one thread while a predictor fits: the same figures on any machine, and no oversubscription."""
    return _blas_controller().limit(limits=1, user_api="blas")


def transform_rewards(rewards: np.ndarray) -> np.ndarray:
    """Rewards as the predictors learn them: the normal scores of their ranks (ties share a mean rank).

    ``Phi^-1((rank - 1/2) / n)``: the same whatever the rewards' scale and offset (accuracies,
    supernet scores), with the order kept and outliers tamed (chance-level cells are just the
    lowest ranks), so a least-squares fit spends itself on telling the good cells apart.
    """
    from scipy.special import ndtri
    from scipy.stats import rankdata

    y = np.asarray(rewards, dtype=np.float64)
    return ndtri((rankdata(y) - 0.5) / len(y))


class RidgeEnsemble:
    """``members`` ridge regressions (intercept unpenalised), each on a bootstrap resample of the rows."""

    def __init__(self, members: int, seed: int, alpha: float = RIDGE_ALPHA) -> None:
        self.members, self.alpha = members, alpha
        self.rng = np.random.default_rng(seed)
        self.weights: np.ndarray | None = None  # (members, dim + 1): coefficients, then intercept

    def fit(self, x: np.ndarray, y: np.ndarray) -> RidgeEnsemble:
        n, d = x.shape
        weights = np.empty((self.members, d + 1))
        for m in range(self.members):
            rows = self.rng.integers(n, size=n)
            xs, ys = x[rows], y[rows]
            x_mean, y_mean = xs.mean(axis=0), ys.mean()
            centred = xs - x_mean
            coef = np.linalg.solve(centred.T @ centred + self.alpha * np.eye(d), centred.T @ (ys - y_mean))
            weights[m, :d], weights[m, d] = coef, y_mean - x_mean @ coef
        self.weights = weights
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(members, n) predictions."""
        assert self.weights is not None, "fit first"
        return self.weights[:, :-1] @ x.T + self.weights[:, -1:]


class MLPEnsemble:
    """``members`` networks D -> hidden -> hidden -> 1 (ReLU), trained together, full batch, with Adam.

    The members differ only in their initialisation, as in BANANAS; they are stacked in one
    array per layer, so one numpy call trains them all.
    """

    def __init__(self, members: int, seed: int, hidden: int = MLP_HIDDEN, epochs: int = MLP_EPOCHS) -> None:
        self.members, self.hidden, self.epochs = members, hidden, epochs
        self.rng = np.random.default_rng(seed)
        self.params: dict[str, np.ndarray] = {}

    def fit(self, x: np.ndarray, y: np.ndarray) -> MLPEnsemble:
        m, h = self.members, self.hidden
        n, d = x.shape
        rng = self.rng
        p = {
            "w1": rng.normal(0.0, np.sqrt(2.0 / d), (m, d, h)), "b1": np.zeros((m, 1, h)),
            "w2": rng.normal(0.0, np.sqrt(2.0 / h), (m, h, h)), "b2": np.zeros((m, 1, h)),
            "w3": rng.normal(0.0, np.sqrt(1.0 / h), (m, h, 1)), "b3": np.zeros((m, 1, 1)),
        }
        first = {k: np.zeros_like(v) for k, v in p.items()}
        second = {k: np.zeros_like(v) for k, v in p.items()}
        beta1, beta2 = 0.9, 0.999
        target = y[None, :, None]
        xt = x.T[None]
        for step in range(1, self.epochs + 1):
            z1 = x @ p["w1"] + p["b1"]
            a1 = np.maximum(z1, 0.0)
            z2 = a1 @ p["w2"] + p["b2"]
            a2 = np.maximum(z2, 0.0)
            g3 = (2.0 / n) * (a2 @ p["w3"] + p["b3"] - target)
            g2 = (g3 @ p["w3"].transpose(0, 2, 1)) * (z2 > 0)
            g1 = (g2 @ p["w2"].transpose(0, 2, 1)) * (z1 > 0)
            grads = {"w3": a2.transpose(0, 2, 1) @ g3, "b3": g3.sum(axis=1, keepdims=True),
                     "w2": a1.transpose(0, 2, 1) @ g2, "b2": g2.sum(axis=1, keepdims=True),
                     "w1": xt @ g1, "b1": g1.sum(axis=1, keepdims=True)}
            correction1, correction2 = 1.0 - beta1**step, 1.0 - beta2**step
            for key, value in p.items():
                grad = grads[key] + MLP_WEIGHT_DECAY * value
                first[key] = beta1 * first[key] + (1.0 - beta1) * grad
                second[key] = beta2 * second[key] + (1.0 - beta2) * grad * grad
                value -= MLP_LEARNING_RATE * (first[key] / correction1) / (np.sqrt(second[key] / correction2) + 1e-8)
        self.params = p
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(members, n) predictions."""
        p = self.params
        a1 = np.maximum(x @ p["w1"] + p["b1"], 0.0)
        a2 = np.maximum(a1 @ p["w2"] + p["b2"], 0.0)
        return (a2 @ p["w3"] + p["b3"])[..., 0]


@register_searcher("predictor_guided")
class PredictorGuided(Searcher):
    """BANANAS-style: an ensemble predicts mutations of the best cells; the acquisition picks one to ask."""

    def __init__(self, seed: int = 0, initial: int = 5, predictor: str = "ridge", ensemble_size: int = 10,
                 candidates: int = 100, random_candidates: int = 10, parents: int = 5, encoding: str = "rich",
                 acquisition: str = "its") -> None:
        super().__init__(seed)
        self.initial = _positive_int("initial", initial)
        if predictor not in PREDICTORS:
            raise ValueError(f"predictor must be one of {', '.join(PREDICTORS)}, got {predictor!r}")
        self.predictor = str(predictor)
        self.ensemble_size = _positive_int("ensemble_size", ensemble_size, minimum=2)
        self.candidates = _positive_int("candidates", candidates)
        self.random_candidates = _positive_int("random_candidates", random_candidates, minimum=0)
        if self.random_candidates > self.candidates:
            raise ValueError(f"random_candidates ({random_candidates}) cannot exceed candidates ({candidates})")
        self.parents = _positive_int("parents", parents)
        if encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {encoding!r}; valid: {', '.join(ENCODINGS)}")
        self.encoding = str(encoding)
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"acquisition must be one of {', '.join(ACQUISITIONS)}, got {acquisition!r}")
        self.acquisition = str(acquisition)
        #: Every architecture asked so far, told or pending: never asked again.
        self.asked: set[Architecture] = set()

    def hyperparameters(self) -> dict[str, Any]:
        return {"initial": self.initial, "predictor": self.predictor, "ensemble_size": self.ensemble_size,
                "candidates": self.candidates, "random_candidates": self.random_candidates, "parents": self.parents,
                "encoding": self.encoding, "acquisition": self.acquisition}

    # -- asking --------------------------------------------------------------------------------
    def _ask(self) -> Architecture:
        if len(self.asked) >= NUM_ARCHITECTURES:
            raise RuntimeError(f"predictor-guided search has already asked all {NUM_ARCHITECTURES} architectures")
        arch = self._random_unasked() if len(self.history) < self.initial else self._guided()
        self.asked.add(arch)
        return arch

    def _random_unasked(self) -> Architecture:
        while True:
            arch = Architecture.from_index(int(self.rng.integers(NUM_ARCHITECTURES)))
            if arch not in self.asked:
                return arch

    def _guided(self) -> Architecture:
        pool = self.propose()
        if not pool:  # every mutation of the parents was asked and no random candidate was wanted
            return self._random_unasked()
        mean, std = self.predict(pool)
        return pool[int(np.argmax(self.acquire(mean, std)))]

    def propose(self) -> list[Architecture]:
        """Up to ``candidates`` distinct unasked architectures: mutations of the best told, and random ones."""
        order = sorted(range(len(self.history)), key=lambda i: -self.history[i][1])  # stable: first told wins ties
        parents = [self.history[i][0] for i in order[: self.parents]]
        found: dict[Architecture, None] = {}  # insertion-ordered, so the pool never depends on hashing
        wanted = self.candidates - self.random_candidates
        for _ in range(_TRIES_PER_CANDIDATE * wanted):
            if len(found) >= wanted:
                break
            child = self._mutate(parents[int(self.rng.integers(len(parents)))])
            if child not in self.asked:
                found.setdefault(child)
        wanted = len(found) + min(self.random_candidates, NUM_ARCHITECTURES - len(self.asked) - len(found))
        while len(found) < wanted:
            arch = Architecture.from_index(int(self.rng.integers(NUM_ARCHITECTURES)))
            if arch not in self.asked:
                found.setdefault(arch)
        return list(found)

    def _mutate(self, parent: Architecture) -> Architecture:
        """``parent`` with one or two (equally likely) distinct edges given another op."""
        edges = self.rng.choice(NUM_EDGES, size=1 + int(self.rng.integers(2)), replace=False)
        ops = list(parent.ops)
        for edge in edges:
            ops[int(edge)] = (ops[int(edge)] + int(self.rng.integers(1, NUM_OPS))) % NUM_OPS
        return Architecture(tuple(ops))

    def predict(self, pool: list[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        """The ensemble's mean and standard deviation (of the transformed reward) for each of ``pool``."""
        encoded = _encoded_space(self.encoding)
        told = encoded[[arch.index for arch, _ in self.history]]
        rewards = transform_rewards(np.array([reward for _, reward in self.history]))
        seed = int(self.rng.integers(2**63))
        model = (RidgeEnsemble(self.ensemble_size, seed) if self.predictor == "ridge"
                 else MLPEnsemble(self.ensemble_size, seed))
        with _one_thread():
            predictions = model.fit(told, rewards).predict(encoded[[arch.index for arch in pool]])
        return predictions.mean(axis=0), predictions.std(axis=0)

    def acquire(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """The acquisition value of each candidate; the highest is asked."""
        if self.acquisition == "its":
            return mean + std * self.rng.standard_normal(len(mean))
        if self.acquisition == "ucb":
            return mean + UCB_BETA * std
        return np.asarray(mean, dtype=np.float64)

    # -- state ---------------------------------------------------------------------------------
    def _state_dict(self) -> dict[str, Any]:
        return {"asked": sorted(arch.index for arch in self.asked)}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self.asked = {Architecture.from_index(int(i)) for i in state["asked"]}
