"""Every registered searcher passes every contract check; and each check catches what it should."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from harness.search.searcher import SEARCHERS, Searcher
from harness.space import NUM_ARCHITECTURES, Architecture, all_architectures
from harness.testing import (
    CHECKS,
    check_asks_are_architectures,
    check_batch_asks,
    check_best_is_highest_validation,
    check_different_seed_different_trajectory,
    check_finds_good_architectures,
    check_fresh_process,
    check_hyperparameters,
    check_never_sees_test_accuracy,
    check_pickle_round_trip,
    check_rejects_unasked_tell,
    check_same_seed_same_trajectory,
    check_searcher,
    check_state_dict_round_trip,
    synthetic_benchmark,
    synthetic_optimum,
    top_fraction,
)


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__.removeprefix("check_"))
@pytest.mark.parametrize("name", [n for n in SEARCHERS if SEARCHERS.attribute(n, "tabular", True)])
def test_registered_searcher_meets_contract(name: str, check) -> None:
    """Tabular searchers; one-shot methods meet theirs in tests/harness/test_training.py."""
    check(SEARCHERS[name])


def test_builtins_are_registered() -> None:
    assert {"random_search", "reinforce", "reinforce_lstm", "aging_evolution"} <= set(SEARCHERS)


def test_check_searcher_passes_a_correct_searcher() -> None:
    check_searcher(SEARCHERS["random_search"])


def test_synthetic_benchmark_has_the_documented_optimum() -> None:
    arch, value = synthetic_optimum()
    assert arch.to_string() == (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|"
    )
    assert value == 90.5
    val = synthetic_benchmark().val_accuracy
    assert np.count_nonzero(val == value) == 1
    assert top_fraction(value) == 0.0
    assert np.all(val[val != 10.0] >= 70.0)
    assert not np.array_equal(np.argsort(val), np.argsort(synthetic_benchmark().test_accuracy))


# -- searchers that break one rule each; the matching check must refuse them -----------------


class _Uniform(Searcher):
    def _ask(self) -> Architecture:
        return Architecture.from_index(int(self.rng.integers(NUM_ARCHITECTURES)))


_GLOBAL_COUNTER = itertools.count()


class UsesGlobalState(_Uniform):
    def _ask(self) -> Architecture:
        return Architecture.from_index((next(_GLOBAL_COUNTER) * 7919) % NUM_ARCHITECTURES)


class IgnoresSeed(_Uniform):
    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.rng = np.random.default_rng(0)


class AliasesItsState(_Uniform):
    """Saves a live reference to its memory, which later tells keep changing."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.memory: list[float] = []

    def _ask(self) -> Architecture:
        return Architecture.from_index((len(self.memory) * 97 + int(self.rng.integers(100))) % NUM_ARCHITECTURES)

    def _tell(self, arch: Architecture, reward: float) -> None:
        self.memory.append(reward)

    def _state_dict(self) -> dict:
        return {"memory": self.memory}

    def _load_state_dict(self, state: dict) -> None:
        self.memory = state["memory"]


class ForgetsItsState(AliasesItsState):
    def _state_dict(self) -> dict:
        return {}

    def _load_state_dict(self, state: dict) -> None:
        pass


class PeeksAtTest(_Uniform):
    def tell(self, arch, result) -> None:
        self.peeked = result.test_accuracy
        super().tell(arch, result)

    def _ask(self) -> Architecture:
        if math.isnan(getattr(self, "peeked", 0.0)):
            self.rng.integers(2)
        return super()._ask()


class DependsOnHashSeed(_Uniform):
    def _ask(self) -> Architecture:
        return Architecture.from_index((hash("nas") + int(self.rng.integers(100))) % NUM_ARCHITECTURES)


class Unpicklable(_Uniform):
    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.callback = lambda: None


class AlwaysTheSame(_Uniform):
    def _ask(self) -> Architecture:
        return all_architectures()[int(self.rng.integers(2))]


class BestIsLatest(_Uniform):
    def best(self) -> Architecture:
        return self.history[-1][0]


class AcceptsAnyTell(_Uniform):
    def tell(self, arch, result) -> None:
        if arch in self._pending:
            self._pending.remove(arch)
        self.history.append((arch, float(result.val_accuracy)))


class LogsAnObject(_Uniform):
    def hyperparameters(self) -> dict:
        return {"callback": object()}


class ReturnsTuples(Searcher):
    def _ask(self):
        return (0, 0, 0, 0, 0, 0)


class ForgetsTellsOutOfOrder(_Uniform):
    def _tell(self, arch: Architecture, reward: float) -> None:
        if arch != self.history[-1][0] or self._pending:
            raise RuntimeError("this searcher only supports one ask at a time")


BROKEN = [
    (check_same_seed_same_trajectory, UsesGlobalState, "same seed|seed 5"),
    (check_different_seed_different_trajectory, IgnoresSeed, "is the seed used"),
    (check_state_dict_round_trip, AliasesItsState, "snapshot"),
    (check_state_dict_round_trip, ForgetsItsState, "state_dict"),
    (check_never_sees_test_accuracy, PeeksAtTest, "validation accuracy"),
    (check_fresh_process, DependsOnHashSeed, "fresh process"),
    (check_pickle_round_trip, Unpicklable, "picklable"),
    (check_finds_good_architectures, AlwaysTheSame, "random search manages"),
    (check_best_is_highest_validation, BestIsLatest, "best"),
    (check_rejects_unasked_tell, AcceptsAnyTell, "did not raise"),
    (check_hyperparameters, LogsAnObject, "JSON"),
]


@pytest.mark.parametrize(("check", "cls", "message"), BROKEN, ids=[cls.__name__ for _, cls, _ in BROKEN])
def test_check_refuses_broken_searcher(check, cls, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check(cls)


def test_check_searcher_reports_crashes_as_assertions() -> None:
    with pytest.raises(AssertionError, match="check_asks_are_architectures crashed.*TypeError"):
        check_searcher(ReturnsTuples)
    with pytest.raises(AssertionError, match="check_batch_asks crashed.*one ask at a time"):
        check_searcher(ForgetsTellsOutOfOrder)
    with pytest.raises(RuntimeError):
        check_batch_asks(ForgetsTellsOutOfOrder)


def test_check_searcher_refuses_non_searchers() -> None:
    with pytest.raises(AssertionError, match="not a subclass"):
        check_searcher(dict)


def test_checks_report_constructor_misuse() -> None:
    with pytest.raises(AssertionError, match="keyword arguments"):
        check_asks_are_architectures(SEARCHERS["random_search"], population_size=3)


# -- check_searcher reports every broken rule at once ------------------------------------------------


class BrokenPlugin(_Uniform):
    """Two faults a plug-in author makes: it draws from the global numpy generator, and its
    _load_state_dict reads a key its _state_dict never saved."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.memory: list[float] = []

    def _ask(self) -> Architecture:
        return Architecture.from_index(int(np.random.randint(NUM_ARCHITECTURES)))  # the fault: global state

    def _tell(self, arch: Architecture, reward: float) -> None:
        self.memory.append(reward)

    def _state_dict(self) -> dict:
        return {"count": len(self.memory)}

    def _load_state_dict(self, state: dict) -> None:
        self.memory = list(state["memory"])


def test_check_searcher_reports_every_failure_with_its_likely_cause() -> None:
    from harness.testing import HINTS, ContractError

    with pytest.raises(ContractError) as info:
        check_searcher(BrokenPlugin)
    report, message = info.value.report, str(info.value)
    assert isinstance(info.value, AssertionError)
    assert len(report.results) == len(CHECKS)  # every check ran, none stopped the others
    failed = {result.check: result for result in report.failures}
    assert {"check_same_seed_same_trajectory", "check_state_dict_round_trip"} <= set(failed)
    assert "check_hyperparameters" not in failed and "check_rejects_unasked_tell" not in failed
    state = failed["check_state_dict_round_trip"]
    assert "KeyError('memory')" in state.message and "saved ['count']" in state.message
    assert "test_contract.py" in state.message and "_load_state_dict" in state.message  # where it was raised
    assert "must copy what it loads" in state.hint and "non-JSON" in state.hint
    assert "never global random / np.random" in failed["check_same_seed_same_trajectory"].hint
    assert message.startswith(f"BrokenPlugin failed {len(failed)} of {len(CHECKS)} contract checks:")
    for name, result in failed.items():
        assert f"- {name} " in message and f"likely cause: {result.hint}" in message
    assert set(HINTS) == {check.__name__ for check in CHECKS}


def test_check_searcher_returns_its_report_when_all_pass() -> None:
    report = check_searcher(SEARCHERS["random_search"])
    assert report.passed and [r.check for r in report.results] == [c.__name__ for c in CHECKS]
    assert all(r.seconds >= 0 for r in report.results)
    assert str(report).startswith("RandomSearch passed all 12 contract checks")
