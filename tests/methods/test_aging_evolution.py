import numpy as np
import pytest

from harness.space import Architecture, all_architectures, neighbours
from harness.testing import drive
from methods.aging_evolution import AgingEvolution


def test_population_keeps_the_latest_told_and_never_exceeds_its_size() -> None:
    searcher = AgingEvolution(seed=0, population_size=7, sample_size=2)
    told = []
    for step in range(60):
        arch = searcher.ask()
        searcher.tell(arch, float(step % 9))
        told.append((arch, float(step % 9)))
        assert len(searcher.population) == min(step + 1, 7)
        # the oldest goes, whatever its accuracy: the population is exactly the last 7 told
        assert list(searcher.population) == told[-7:]


def test_children_are_one_edge_mutations_of_the_population() -> None:
    searcher = AgingEvolution(seed=1)
    drive(searcher, 10)
    for _ in range(50):
        child = searcher.ask()
        assert any(child in neighbours(member) for member, _ in searcher.population)
        searcher.tell(child, float(np.sum(child.ops)))


def test_single_member_population_mutates_that_member() -> None:
    searcher = AgingEvolution(seed=2, population_size=1, sample_size=1)
    parent = searcher.ask()
    searcher.tell(parent, 50.0)
    for _ in range(10):
        child = searcher.ask()
        assert sum(a != b for a, b in zip(child.ops, parent.ops, strict=True)) == 1
        searcher.tell(child, 50.0)
        parent = child


def test_tournament_favours_the_fittest() -> None:
    # Ten members far apart (disjoint neighbourhoods); one is far better than the rest.
    members: list[Architecture] = []
    for arch in all_architectures():
        if all(sum(x != y for x, y in zip(arch.ops, m.ops, strict=True)) >= 3 for m in members):
            members.append(arch)
        if len(members) == 10:
            break
    searcher = AgingEvolution(seed=3)
    state = searcher.state_dict()
    state["method"]["population"] = [(m.ops, 99.0 if k == 4 else 50.0) for k, m in enumerate(members)]
    searcher.load_state_dict(state)
    children = [searcher.ask() for _ in range(400)]
    from_champion = np.mean([child in neighbours(members[4]) for child in children])
    # tournament of 3: the champion is sampled with probability 1 - 0.9**3 = 0.27 (uniform parent: 0.1)
    assert from_champion > 0.2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"population_size": 0}, "population_size must be a positive integer"),
        ({"population_size": 2.5}, "population_size must be a positive integer"),
        ({"population_size": True}, "population_size must be a positive integer"),
        ({"sample_size": 0}, "sample_size must be a positive integer"),
        ({"population_size": 3, "sample_size": 4}, "cannot exceed population_size"),
    ],
)
def test_bad_hyperparameters_raise(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        AgingEvolution(seed=0, **kwargs)


def test_defaults_are_the_anchor_settings() -> None:
    assert AgingEvolution().hyperparameters() == {"population_size": 10, "sample_size": 3}
