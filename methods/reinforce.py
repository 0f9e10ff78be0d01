"""Policy-gradient searchers: REINFORCE (Williams, 1992) with a moving-average baseline.

``reinforce`` is the controller NAS-Bench-201 benchmarked: one independent categorical
distribution per edge (6 x 5 logits), trained with Adam. ``reinforce_lstm`` is the
Zoph & Le (2017) / ENAS (Pham et al., 2018) controller: an LSTM that emits one decision
per edge, fed the embedding of its previous decision. Both learn from validation
accuracy only, one update per tell, and draw every sample from ``self.rng``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from harness import Searcher, register_searcher
from harness.space import NUM_EDGES, NUM_OPS, Architecture

if TYPE_CHECKING:
    import torch


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _non_negative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
    return float(value)


def _decay(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)


def _sample_categorical(probs: np.ndarray, uniform: float) -> int:
    """Inverse-CDF draw from ``probs`` with one uniform number (guards against round-off)."""
    return min(int(np.searchsorted(np.cumsum(probs), uniform, side="right")), len(probs) - 1)


class _MovingAverage:
    """Bias-corrected exponential moving average: NAS-Bench-201's ``ExponentialMovingAverage``.

    The value is ``numerator / denominator`` with both decayed by ``momentum``; it is kept
    in the equivalent incremental form, which makes the first value exactly the first
    update (so the first advantage is exactly 0, not a round-off that Adam would amplify).
    """

    def __init__(self, momentum: float) -> None:
        self.momentum = momentum
        self.value = 0.0
        self.denominator = 0.0

    def update(self, value: float) -> float:
        self.denominator = self.momentum * self.denominator + (1 - self.momentum)
        self.value += (value - self.value) * ((1 - self.momentum) / self.denominator)
        return self.value

    def state(self) -> dict[str, float]:
        return {"value": self.value, "denominator": self.denominator}

    def load(self, state: dict[str, float]) -> None:
        self.value = float(state["value"])
        self.denominator = float(state["denominator"])


class _Adam:
    """``torch.optim.Adam`` with its defaults (betas 0.9/0.999, eps 1e-8), on numpy arrays in place.

    Used by both searchers: on two cores PyTorch's own Adam spends most of its time in a
    multi-threaded ``sqrt``, and a numpy state is trivially saved and pickled.
    """

    beta1, beta2, eps = 0.9, 0.999, 1e-8

    def __init__(self, shapes: list[tuple[int, ...]], learning_rate: float) -> None:
        self.learning_rate = learning_rate
        self.step = 0
        self.m = [np.zeros(shape) for shape in shapes]
        self.v = [np.zeros(shape) for shape in shapes]

    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:
        """One descent step on ``params`` (modified in place) along ``grads``."""
        self.step += 1
        correction1 = 1 - self.beta1**self.step
        correction2_sqrt = math.sqrt(1 - self.beta2**self.step)
        for param, grad, m, v in zip(params, grads, self.m, self.v, strict=True):
            m += (1 - self.beta1) * (grad - m)
            v *= self.beta2
            v += (1 - self.beta2) * grad * grad
            param -= (self.learning_rate / correction1) * m / (np.sqrt(v) / correction2_sqrt + self.eps)

    def state(self) -> dict[str, Any]:
        return {"step": self.step, "m": [a.copy() for a in self.m], "v": [a.copy() for a in self.v]}

    def load(self, state: dict[str, Any]) -> None:
        self.step = int(state["step"])
        self.m = [np.array(a, dtype=float) for a in state["m"]]
        self.v = [np.array(a, dtype=float) for a in state["v"]]


@register_searcher("reinforce")
class Reinforce(Searcher):
    """Per-edge softmax policy trained by REINFORCE with an EMA baseline and Adam.

    Follows the reference implementation of NAS-Bench-201 and NATS-Bench
    (D-X-Y/AutoDL-Projects ``exps/NAS-Bench-201-algos/reinforce.py`` and its upgrade
    ``exps/NATS-algos/reinforce.py``): logits initialised as ``1e-3 * N(0, 1)``; loss
    ``-log p(arch) * (reward - baseline)`` with the baseline, a bias-corrected EMA of
    momentum 0.9 (``--EMA_momentum 0.9``), updated *before* the advantage is taken, so
    the first tell does not move the policy; ``torch.optim.Adam`` with default betas.

    Learning rate: 0.01, NATS-Bench's setting for this space (``exps/NATS-algos/
    run-all.sh``: ``reinforce.py ... --learning_rate 0.01``). NAS-Bench-201's
    reproduction command used 0.5 (``docs/NAS-Bench-201.md``: ``REINFORCE.sh 0.5 -1``);
    at 150 queries that rate collapses the policy after about 20 distinct cells and does
    worse than random search (analog table, 50 seeds: 93.33 +- 0.44 against 93.51 +-
    0.20; 0.01 gives 93.62 +- 0.20), so pass ``learning_rate=0.5`` to reproduce it.

    The gradient of ``log softmax`` is exact (``softmax - onehot`` per edge, times the
    advantage) and Adam is PyTorch's update rule, in float64 numpy.
    """

    def __init__(
        self, seed: int = 0, learning_rate: float = 0.01, ema_momentum: float = 0.9, init_std: float = 1e-3
    ) -> None:
        super().__init__(seed)
        self.learning_rate = _positive("learning_rate", learning_rate)
        self.ema_momentum = _decay("ema_momentum", ema_momentum)
        self.init_std = _non_negative("init_std", init_std)
        self.logits = self.init_std * self.rng.standard_normal((NUM_EDGES, NUM_OPS))
        self._baseline = _MovingAverage(self.ema_momentum)
        self._adam = _Adam([self.logits.shape], self.learning_rate)

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "ema_momentum": self.ema_momentum,
            "init_std": self.init_std,
            "optimizer": "adam",
        }

    def probabilities(self) -> np.ndarray:
        """The policy: a (6, 5) array, row ``e`` the op distribution of edge ``e``."""
        shifted = self.logits - self.logits.max(axis=1, keepdims=True)
        weights = np.exp(shifted)
        return weights / weights.sum(axis=1, keepdims=True)

    def _ask(self) -> Architecture:
        probs = self.probabilities()
        uniforms = self.rng.random(NUM_EDGES)
        return Architecture(tuple(_sample_categorical(p, u) for p, u in zip(probs, uniforms, strict=True)))

    def _tell(self, arch: Architecture, reward: float) -> None:
        advantage = reward - self._baseline.update(reward)
        # d(-log p(arch) * advantage) / d logits = (softmax - onehot) * advantage, edge by edge.
        grad = self.probabilities()
        grad[np.arange(NUM_EDGES), arch.ops] -= 1.0
        grad *= advantage
        self._adam.update([self.logits], [grad])

    def _state_dict(self) -> dict[str, Any]:
        return {
            "logits": self.logits.copy(),
            "adam": self._adam.state(),
            "baseline": self._baseline.state(),
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self.logits = np.array(state["logits"], dtype=float)
        self._adam.load(state["adam"])
        self._baseline.load(state["baseline"])


@register_searcher("reinforce_lstm")
class ReinforceLSTM(Searcher):
    """ENAS-style LSTM controller: one op decision per edge, trained by REINFORCE with Adam.

    Each step feeds the LSTM cell the embedding of the previous decision (a learned start
    vector for the first edge) and turns its hidden state into op logits, clipped as in
    ENAS: ``tanh_constant * tanh(logits / temperature)``. The reward is the validation
    accuracy plus ``entropy_weight`` times the (detached) entropy of the controller's
    distributions along the told architecture; the loss is ``-log p(arch) * (reward -
    baseline)``.

    Defaults: one LSTM layer of 64 units, every weight uniform in [-0.1, 0.1], Adam with
    learning rate 0.0035, entropy weight 1e-4 and baseline decay 0.99 are ENAS's CIFAR-10
    micro-search settings (melodyguan/enas ``src/cifar10/main.py``,
    ``scripts/cifar10_micro_search.sh``). The clipping constants 2.5 and 5.0 are those of
    NAS-Bench-201's ENAS controller (D-X-Y/AutoDL-Projects
    ``lib/models/cell_searchs/search_model_enas_utils.py``); ENAS's own op clipping
    (1.10 / 2.5 = 0.44, no temperature) would cap the odds between two ops at 2.4.
    Departures: ENAS's rewards are fractions and its baseline starts at 0; here rewards
    are whatever the benchmark reports (percent on NB201 tables, so the entropy bonus is
    100 times weaker relative to the reward) and the baseline is the bias-corrected
    average that starts at the first reward, because 150 tells are too few for a baseline
    started at 0 to catch up. The controller computes in float64 and is updated by the
    same numpy Adam as ``reinforce`` (PyTorch's rule); torch is imported only when a
    controller is built, so importing ``methods`` stays fast.
    """

    def __init__(
        self,
        seed: int = 0,
        hidden_size: int = 64,
        learning_rate: float = 0.0035,
        tanh_constant: float = 2.5,
        temperature: float = 5.0,
        entropy_weight: float = 1e-4,
        baseline_decay: float = 0.99,
    ) -> None:
        import torch

        super().__init__(seed)
        if isinstance(hidden_size, bool) or not isinstance(hidden_size, int) or hidden_size < 1:
            raise ValueError(f"hidden_size must be a positive integer, got {hidden_size!r}")
        self.hidden_size = hidden_size
        self.learning_rate = _positive("learning_rate", learning_rate)
        self.tanh_constant = _positive("tanh_constant", tanh_constant)
        self.temperature = _positive("temperature", temperature)
        self.entropy_weight = _non_negative("entropy_weight", entropy_weight)
        self.baseline_decay = _decay("baseline_decay", baseline_decay)
        # Standard modules only (no custom nn.Module subclass), so pickles need no class of ours.
        self.controller = torch.nn.ModuleDict(
            {
                "start": torch.nn.Embedding(1, hidden_size),
                "lstm": torch.nn.LSTMCell(hidden_size, hidden_size),
                "embedding": torch.nn.Embedding(NUM_OPS, hidden_size),
                "head": torch.nn.Linear(hidden_size, NUM_OPS),
            }
        ).double()
        with torch.no_grad():
            for parameter in self.controller.parameters():
                values = self.rng.uniform(-0.1, 0.1, size=tuple(parameter.shape))
                parameter.copy_(torch.from_numpy(values))
        self._adam = _Adam([tuple(p.shape) for p in self.controller.parameters()], self.learning_rate)
        self._baseline = _MovingAverage(self.baseline_decay)

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "hidden_size": self.hidden_size,
            "learning_rate": self.learning_rate,
            "tanh_constant": self.tanh_constant,
            "temperature": self.temperature,
            "entropy_weight": self.entropy_weight,
            "baseline_decay": self.baseline_decay,
            "optimizer": "adam",
        }

    def _step(self, inputs: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """One LSTM step: log-probabilities of the 5 ops (ENAS-clipped logits) and the new state."""
        import torch

        state = self.controller["lstm"](inputs, state)
        logits = self.tanh_constant * torch.tanh(self.controller["head"](state[0])[0] / self.temperature)
        return torch.log_softmax(logits, dim=-1), state

    def _rollout(
        self, ops: tuple[int, ...] | None = None, uniforms: np.ndarray | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
        """Run the controller over the 6 edges, sampling with ``uniforms`` or following ``ops``.

        Returns the summed log-probability and entropy of the decisions, and the decisions.
        """
        import torch

        inputs, state = self.controller["start"].weight, None
        log_prob = torch.zeros((), dtype=torch.float64)
        entropy = torch.zeros((), dtype=torch.float64)
        chosen: list[int] = []
        for edge in range(NUM_EDGES):
            log_probs, state = self._step(inputs, state)
            if ops is None:
                op = _sample_categorical(log_probs.detach().exp().numpy(), float(uniforms[edge]))
            else:
                op = int(ops[edge])
            chosen.append(op)
            log_prob = log_prob + log_probs[op]
            entropy = entropy - (log_probs.exp() * log_probs).sum()
            inputs = self.controller["embedding"].weight[op : op + 1]
        return log_prob, entropy, tuple(chosen)

    def probabilities(self, arch: Architecture) -> np.ndarray:
        """The controller's (6, 5) op distributions along ``arch`` (row e given arch's edges < e)."""
        import torch

        rows = []
        with torch.no_grad():
            inputs, state = self.controller["start"].weight, None
            for op in arch.ops:
                log_probs, state = self._step(inputs, state)
                rows.append(log_probs.exp().numpy())
                inputs = self.controller["embedding"].weight[op : op + 1]
        return np.stack(rows)

    def _ask(self) -> Architecture:
        import torch

        uniforms = self.rng.random(NUM_EDGES)
        with torch.no_grad():
            _, _, ops = self._rollout(uniforms=uniforms)
        return Architecture(ops)

    def _tell(self, arch: Architecture, reward: float) -> None:
        log_prob, entropy, _ = self._rollout(ops=arch.ops)
        total = reward + self.entropy_weight * float(entropy.detach())
        advantage = total - self._baseline.update(total)
        parameters = list(self.controller.parameters())
        for parameter in parameters:
            parameter.grad = None
        (-log_prob * advantage).backward()
        # numpy views share the tensors' memory, so the in-place update changes the controller.
        self._adam.update(
            [p.detach().numpy() for p in parameters], [p.grad.numpy() for p in parameters]
        )

    def _state_dict(self) -> dict[str, Any]:
        return {
            "controller": {k: v.detach().clone() for k, v in self.controller.state_dict().items()},
            "adam": self._adam.state(),
            "baseline": self._baseline.state(),
        }

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(state["controller"])
        self._adam.load(state["adam"])
        self._baseline.load(state["baseline"])
