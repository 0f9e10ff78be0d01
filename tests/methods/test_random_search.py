import pytest

from harness.space import NUM_ARCHITECTURES, Architecture
from methods.random_search import RandomSearch


def test_never_asks_the_same_architecture_twice() -> None:
    searcher = RandomSearch(seed=0)
    asked = [searcher.ask() for _ in range(3000)]
    assert len(set(asked)) == len(asked)


def test_asks_the_last_unseen_architectures_then_stops() -> None:
    searcher = RandomSearch(seed=1)
    left = {5, 777, 15_000}
    state = searcher.state_dict()
    state["method"]["asked"] = [i for i in range(NUM_ARCHITECTURES) if i not in left]
    searcher.load_state_dict(state)
    assert {searcher.ask().index for _ in range(3)} == left
    with pytest.raises(RuntimeError, match="all 15625"):
        searcher.ask()


def test_is_roughly_uniform() -> None:
    searcher = RandomSearch(seed=2)
    first_edge = [searcher.ask().ops[0] for _ in range(2500)]
    counts = [first_edge.count(op) for op in range(5)]
    assert all(440 <= c <= 560 for c in counts), counts


def test_takes_no_hyperparameters() -> None:
    assert RandomSearch().hyperparameters() == {"replacement": False}
    with pytest.raises(TypeError):
        RandomSearch(seed=0, budget=10)
    assert isinstance(RandomSearch(seed=3).ask(), Architecture)
