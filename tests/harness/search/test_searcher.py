import numpy as np
import pytest

from harness.errors import UnknownNameError
from harness.search.benchmark import Result
from harness.search.searcher import SEARCHERS, Searcher, get_searcher, register_searcher
from harness.space import NUM_ARCHITECTURES, Architecture


class Counting(Searcher):
    """Asks architectures 0, 1, 2, ... offset by one random draw; records what _tell sees."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        self.offset = int(self.rng.integers(1000))
        self.seen: list[tuple[Architecture, float]] = []

    def _ask(self) -> Architecture:
        return Architecture.from_index((self.offset + len(self.seen) + len(self._pending)) % NUM_ARCHITECTURES)

    def _tell(self, arch: Architecture, reward: float) -> None:
        self.seen.append((arch, reward))


def test_ask_marks_pending_and_tell_records_validation_only() -> None:
    searcher = Counting(seed=3)
    arch = searcher.ask()
    assert searcher._pending == [arch]
    searcher.tell(arch, Result(val_accuracy=91.5, test_accuracy=12.0, extras={"x": 1.0}))
    assert searcher._pending == []
    assert searcher.history == [(arch, 91.5)]
    assert searcher.seen == [(arch, 91.5)]
    assert isinstance(searcher.seen[0][1], float)


def test_tell_accepts_a_plain_number() -> None:
    searcher = Counting()
    arch = searcher.ask()
    searcher.tell(arch, np.float32(88.0))
    assert searcher.history == [(arch, 88.0)] and type(searcher.history[0][1]) is float


def test_tell_refuses_architectures_not_pending() -> None:
    searcher = Counting()
    with pytest.raises(ValueError, match="not asked"):
        searcher.tell(Architecture.from_index(0), 1.0)
    arch = searcher.ask()
    searcher.tell(arch, 1.0)
    with pytest.raises(ValueError, match="not asked"):
        searcher.tell(arch, 1.0)
    assert searcher.seen == [(arch, 1.0)]


def test_pending_asks_can_be_told_in_any_order() -> None:
    searcher = Counting()
    first, second = searcher.ask(), searcher.ask()
    assert first != second
    searcher.tell(second, 2.0)
    searcher.tell(first, 1.0)
    assert searcher.history == [(second, 2.0), (first, 1.0)]


def test_best_is_highest_validation_first_on_ties() -> None:
    searcher = Counting()
    with pytest.raises(RuntimeError, match="before any tell"):
        searcher.best()
    archs = [searcher.ask() for _ in range(4)]
    for arch, reward in zip(archs, [70.0, 90.0, 90.0, 80.0], strict=True):
        searcher.tell(arch, Result(val_accuracy=reward, test_accuracy=100.0 - reward))
    assert searcher.best() == archs[1]


def test_ask_must_return_an_architecture() -> None:
    class Broken(Searcher):
        def _ask(self):
            return (0,) * 6

    with pytest.raises(TypeError, match="not an Architecture"):
        Broken().ask()
    with pytest.raises(NotImplementedError):
        Searcher().ask()


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3", None])
def test_seed_must_be_a_non_negative_integer(seed) -> None:
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        Counting(seed=seed)


def test_seed_builds_the_generator() -> None:
    assert Counting(seed=np.int64(7)).seed == 7
    assert Counting(seed=5).offset == Counting(seed=5).offset
    assert Counting(seed=5).rng.integers(10**9) != Counting(seed=6).rng.integers(10**9)
    assert Searcher().hyperparameters() == {}


def test_state_dict_round_trip_restores_bookkeeping() -> None:
    searcher = Counting(seed=2)
    for reward in (1.0, 3.0):
        searcher.tell(searcher.ask(), reward)
    pending = searcher.ask()
    state = searcher.state_dict()
    assert state["seed"] == 2 and state["method"] == {}
    expected_draw = int(searcher.rng.integers(10**9))  # moves the live generator on
    for _ in range(2):  # the snapshot does not follow the live generator, nor the clone's
        clone = Counting(seed=9)
        clone.load_state_dict(state)
        assert clone.seed == 2
        assert clone.history == searcher.history
        assert clone._pending == [pending]
        assert int(clone.rng.integers(10**9)) == expected_draw


def test_register_searcher_names_and_registers(monkeypatch) -> None:
    monkeypatch.setattr(SEARCHERS, "_items", dict(SEARCHERS._items))

    @register_searcher("counting_for_test")
    class Registered(Counting):
        pass

    assert Registered.name == "counting_for_test"
    assert get_searcher("counting_for_test") is Registered
    assert "counting_for_test" in SEARCHERS


def test_get_searcher_resolves_builtins_and_module_paths() -> None:
    from methods.random_search import RandomSearch

    assert get_searcher("random_search") is RandomSearch
    assert get_searcher("methods.random_search:RandomSearch") is RandomSearch
    with pytest.raises(UnknownNameError, match="not a Searcher subclass"):
        get_searcher("collections:OrderedDict")
    with pytest.raises(UnknownNameError, match="aging_evolution"):
        get_searcher("no_such_method")


# -- building a searcher for a run: hyper-parameters, the query budget, the name shown ---------


class TakesBudget(Counting):
    name = "takes_budget"

    def __init__(self, seed: int = 0, budget: int | None = None, scale: float = 1.0) -> None:
        super().__init__(seed)
        self.budget, self.scale = budget, scale


class NamelessChild(TakesBudget):
    """Inherits a name from its parent: shown by the name it was given, not the parent's."""


def test_a_searcher_that_takes_budget_is_given_the_runs() -> None:
    from harness.errors import UserError
    from harness.search.searcher import make_searcher, takes_budget

    spec = f"{__name__}:TakesBudget"
    assert takes_budget(TakesBudget) and not takes_budget(Counting)
    built = make_searcher(spec, seed=2, hyperparameters={"scale": 3.0}, budget=40)
    assert (built.seed, built.budget, built.scale) == (2, 40, 3.0)
    assert make_searcher(spec, seed=0).budget is None  # no run budget: the class's default
    assert make_searcher("random_search", seed=0, budget=40).seed == 0  # one that does not take it: not passed
    with pytest.raises(UserError, match=r"budget=10 given as a hyper-parameter.*query budget \(40\).*--budget"):
        make_searcher(spec, seed=0, hyperparameters={"budget": 10}, budget=40)
    with pytest.raises(UserError, match=r"refused: TypeError: .*unexpected keyword argument 'colour'"):
        make_searcher(spec, seed=0, hyperparameters={"colour": 1}, budget=40)
    with pytest.raises(UserError, match=r"random_search\(seed=0, replacement='x'\) refused"):
        make_searcher("random_search", seed=0, hyperparameters={"replacement": "x"})


def test_a_method_is_shown_by_its_class_name_attribute_when_it_sets_one() -> None:
    from harness.search.searcher import method_label

    assert method_label("random_search") == "random_search"
    assert method_label(f"{__name__}:TakesBudget") == "takes_budget"
    assert method_label(f"{__name__}:NamelessChild") == f"{__name__}:NamelessChild"
    assert method_label(f"{__name__}:Counting") == f"{__name__}:Counting"  # the base class's "searcher"
    assert method_label("methods.random_search:RandomSearch") == "random_search"  # registered under its name


class PassesOn(TakesBudget):
    """Hands its other keywords to its parent, as GreedyNAS does to SPOS."""

    def __init__(self, seed: int = 0, width: int = 3, **others) -> None:
        super().__init__(seed, **others)
        self.width = width


class KeepsAny(Searcher):
    def __init__(self, seed: int = 0, **options) -> None:
        super().__init__(seed)
        self.options = options


def test_hyperparameters_are_read_from_the_constructors_and_listed_when_one_is_refused() -> None:
    from harness.errors import UserError
    from harness.search.searcher import describe_hyperparameters, hyperparameter_defaults, make_searcher

    assert hyperparameter_defaults(Counting) == {}
    assert hyperparameter_defaults(TakesBudget) == {"scale": 1.0}  # the budget is the harness's to pass
    assert hyperparameter_defaults(PassesOn) == {"width": 3, "scale": 1.0}
    assert hyperparameter_defaults(KeepsAny) is None
    assert describe_hyperparameters(PassesOn) == "width=3, scale=1.0" and describe_hyperparameters(Counting) == "none"
    assert "any keyword" in describe_hyperparameters(KeepsAny)
    with pytest.raises(UserError, match=r"unexpected keyword argument 'colour'; .*PassesOn takes: width=3, scale=1.0"):
        make_searcher(f"{__name__}:PassesOn", seed=0, hyperparameters={"colour": 1})
