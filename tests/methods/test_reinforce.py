import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.space import Architecture
from methods.reinforce import Reinforce, ReinforceLSTM

ROOT = Path(__file__).resolve().parents[2]
ALL_CONV3X3 = Architecture((3,) * 6)


def _reward_op3_on_first_edge(searcher, steps: int) -> None:
    for _ in range(steps):
        arch = searcher.ask()
        searcher.tell(arch, 90.0 if arch.ops[0] == 3 else 80.0)


def test_policy_moves_toward_the_rewarded_op() -> None:
    searcher = Reinforce(seed=0)
    assert np.allclose(searcher.probabilities(), 0.2, atol=0.01)
    _reward_op3_on_first_edge(searcher, 100)
    probs = searcher.probabilities()
    assert probs[0].argmax() == 3 and probs[0, 3] > 0.4
    assert np.allclose(probs.sum(axis=1), 1.0)


def test_lstm_policy_moves_toward_the_rewarded_op() -> None:
    searcher = ReinforceLSTM(seed=0)
    before = searcher.probabilities(ALL_CONV3X3)[0, 3]
    _reward_op3_on_first_edge(searcher, 80)
    after = searcher.probabilities(ALL_CONV3X3)[0]
    assert after.argmax() == 3 and after[3] > before + 0.3


def test_update_is_the_exact_gradient_with_torch_adam() -> None:
    torch = pytest.importorskip("torch")
    searcher = Reinforce(seed=4, learning_rate=0.3)
    logits = torch.tensor(searcher.logits.copy(), requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=0.3)
    numerator = denominator = 0.0
    for step in range(8):
        arch = searcher.ask()
        reward = 80.0 + (7 * step) % 5
        # NAS-Bench-201's loop: update the EMA, then loss = -log p(arch) * (reward - EMA).
        numerator, denominator = 0.9 * numerator + 0.1 * reward, 0.9 * denominator + 0.1
        baseline = reward if step == 0 else numerator / denominator  # exact at step 0, as ours
        log_prob = torch.log_softmax(logits, dim=-1)[torch.arange(6), torch.tensor(arch.ops)].sum()
        optimizer.zero_grad()
        (-log_prob * (reward - baseline)).backward()
        optimizer.step()
        searcher.tell(arch, reward)
        np.testing.assert_allclose(searcher.logits, logits.detach().numpy(), rtol=0, atol=1e-12)


def test_first_tell_leaves_the_policy_alone() -> None:
    searcher = Reinforce(seed=1)
    before = searcher.logits.copy()
    arch = searcher.ask()
    searcher.tell(arch, 93.0)
    assert np.array_equal(searcher.logits, before)


def test_lstm_gets_gradient_in_every_layer() -> None:
    searcher = ReinforceLSTM(seed=0, hidden_size=16)
    first = searcher.ask()
    searcher.tell(first, 80.0)  # zero advantage: nothing moves yet
    before = {k: v.clone() for k, v in searcher.controller.state_dict().items()}
    second = searcher.ask()
    searcher.tell(second, 90.0)
    for name in ("start.weight", "lstm.weight_ih", "lstm.weight_hh", "lstm.bias_ih", "head.weight", "head.bias"):
        parameter = searcher.controller.get_parameter(name)
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
        assert not np.array_equal(parameter.detach().numpy(), before[name].numpy()), name
    used = sorted(set(second.ops[:-1]))
    embedding = searcher.controller.get_parameter("embedding.weight").grad.abs().sum(dim=1).numpy()
    assert all(embedding[op] > 0 for op in used)
    assert all(embedding[op] == 0 for op in range(5) if op not in used)


def test_importing_methods_does_not_import_torch() -> None:
    code = "import sys, methods; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_defaults() -> None:
    assert Reinforce().hyperparameters() == {
        "learning_rate": 0.01, "ema_momentum": 0.9, "init_std": 0.001, "optimizer": "adam",
    }
    assert ReinforceLSTM().hyperparameters() == {
        "hidden_size": 64, "learning_rate": 0.0035, "tanh_constant": 2.5, "temperature": 5.0,
        "entropy_weight": 0.0001, "baseline_decay": 0.99, "optimizer": "adam",
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"learning_rate": 0}, "learning_rate must be a positive finite number"),
        ({"learning_rate": float("nan")}, "learning_rate must be a positive finite number"),
        ({"learning_rate": "0.1"}, "learning_rate must be a positive finite number"),
        ({"ema_momentum": 1.0}, r"ema_momentum must be in \[0, 1\)"),
        ({"ema_momentum": -0.1}, r"ema_momentum must be in \[0, 1\)"),
        ({"init_std": -1e-3}, "init_std must be a non-negative finite number"),
    ],
)
def test_reinforce_refuses_bad_hyperparameters(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        Reinforce(seed=0, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hidden_size": 0}, "hidden_size must be a positive integer"),
        ({"hidden_size": 8.0}, "hidden_size must be a positive integer"),
        ({"learning_rate": -1.0}, "learning_rate must be a positive finite number"),
        ({"tanh_constant": 0}, "tanh_constant must be a positive finite number"),
        ({"temperature": float("inf")}, "temperature must be a positive finite number"),
        ({"entropy_weight": -0.1}, "entropy_weight must be a non-negative finite number"),
        ({"baseline_decay": 1}, r"baseline_decay must be in \[0, 1\)"),
    ],
)
def test_reinforce_lstm_refuses_bad_hyperparameters(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        ReinforceLSTM(seed=0, **kwargs)


def test_baseline_is_nas_bench_201_bias_corrected_average() -> None:
    from methods.reinforce import _MovingAverage

    average, numerator, denominator = _MovingAverage(0.9), 0.0, 0.0
    for value in [93.0, 80.5, 88.0, 91.25, 70.0, 94.5]:
        numerator, denominator = 0.9 * numerator + 0.1 * value, 0.9 * denominator + 0.1
        assert average.update(value) == pytest.approx(numerator / denominator, rel=1e-14)
    assert _MovingAverage(0.9).update(93.0) == 93.0
