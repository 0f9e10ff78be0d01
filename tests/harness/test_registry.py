from importlib import metadata

import pytest

from harness import registry as registry_module
from harness.errors import UnknownNameError
from harness.registry import DuplicateNameError, Registry
from harness.search.searcher import SEARCHERS, get_searcher
from methods.random_search import RandomSearch


class Alpha:
    pass


class Beta:
    pass


def test_add_and_look_up() -> None:
    things: Registry[type] = Registry("thing")
    things.add("alpha", Alpha)

    @things.register("beta")
    class Decorated:
        pass

    assert things["alpha"] is Alpha and things.resolve("beta") is Decorated
    assert "alpha" in things and "gamma" not in things
    assert list(things) == ["alpha", "beta"] == things.names()


def test_duplicate_names_are_refused() -> None:
    things: Registry[type] = Registry("thing")
    things.add("alpha", Alpha)
    things.add("alpha", Alpha)  # the same object again is harmless (re-import)
    with pytest.raises(DuplicateNameError, match="a thing named 'alpha' is already registered"):
        things.add("alpha", Beta)
    assert issubclass(DuplicateNameError, ValueError)
    assert things["alpha"] is Alpha


def test_builtin_searcher_names_cannot_be_taken() -> None:
    with pytest.raises(DuplicateNameError):
        SEARCHERS.add("random_search", Alpha)
    assert SEARCHERS["random_search"] is RandomSearch


def test_resolve_module_path() -> None:
    things: Registry[type] = Registry("thing")
    assert things.resolve("methods.random_search:RandomSearch") is RandomSearch
    assert things.resolve(f"{__name__}:Alpha") is Alpha
    with pytest.raises(UnknownNameError, match="cannot load thing 'no_such_module:X'"):
        things.resolve("no_such_module:X")
    with pytest.raises(UnknownNameError, match="cannot load thing 'methods.random_search:Nope'"):
        things.resolve("methods.random_search:Nope")


def test_unknown_name_lists_the_valid_ones() -> None:
    things: Registry[type] = Registry("thing")
    things.add("beta", Beta)
    things.add("alpha", Alpha)
    with pytest.raises(UnknownNameError) as info:
        things.resolve("gamma")
    assert str(info.value) == "unknown thing 'gamma'; valid: alpha, beta (or package.module:ClassName)"
    with pytest.raises(UnknownNameError) as info:
        get_searcher("evolution")
    for name in ("aging_evolution", "random_search", "reinforce", "reinforce_lstm"):
        assert name in str(info.value)


def _fake_entry_points(monkeypatch, group: str, **targets: str) -> None:
    points = [metadata.EntryPoint(name=name, value=value, group=group) for name, value in targets.items()]

    def entry_points(**selection):
        return [p for p in points if p.group == selection.get("group")]

    monkeypatch.setattr(registry_module.metadata, "entry_points", entry_points)


def test_entry_points_are_names_and_resolve_lazily(monkeypatch) -> None:
    _fake_entry_points(monkeypatch, "nas_harness.searchers", plugged="methods.random_search:RandomSearch")
    assert "plugged" in SEARCHERS.names()
    assert "plugged" not in SEARCHERS  # only loaded on demand
    assert get_searcher("plugged") is RandomSearch
    assert SEARCHERS.resolve("plugged") is RandomSearch


def test_entry_points_of_other_groups_are_ignored(monkeypatch) -> None:
    _fake_entry_points(monkeypatch, "someone_else.plugins", plugged="methods.random_search:RandomSearch")
    assert "plugged" not in SEARCHERS.names()
    with pytest.raises(UnknownNameError, match="unknown searcher 'plugged'"):
        SEARCHERS.resolve("plugged")


def test_registry_without_a_group_has_no_entry_points(monkeypatch) -> None:
    _fake_entry_points(monkeypatch, "nas_harness.searchers", plugged="methods.random_search:RandomSearch")
    things: Registry[type] = Registry("thing")
    assert things.names() == []
    with pytest.raises(UnknownNameError):
        things.resolve("plugged")


def test_entry_point_to_a_non_searcher_is_refused(monkeypatch) -> None:
    _fake_entry_points(monkeypatch, "nas_harness.searchers", odd="collections:OrderedDict")
    with pytest.raises(UnknownNameError, match="not a Searcher subclass"):
        get_searcher("odd")
