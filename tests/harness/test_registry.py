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
    assert str(info.value) == ("unknown thing 'gamma'; valid: alpha, beta "
                               "(or package.module:ClassName or path/to/file.py:ClassName)")
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


# -- plug-ins named by file: path/to/file.py:ClassName -------------------------------------------

PLUGIN_SOURCE = "from harness import Searcher\n\n\nclass Found(Searcher):\n    pass\n\n\nclass Other:\n    pass\n"


def test_resolve_a_file_relative_or_absolute_gives_one_class(tmp_path, monkeypatch) -> None:
    import pickle

    (tmp_path / "plug.py").write_text(PLUGIN_SOURCE)
    monkeypatch.chdir(tmp_path)
    things: Registry[type] = Registry("thing")
    first = things.resolve("plug.py:Found")
    assert first.__name__ == "Found" and first.__module__.startswith(registry_module.FILE_MODULE_PREFIX)
    assert things.resolve(f"{tmp_path}/plug.py:Found") is first
    assert things.resolve("./plug.py:Found") is first
    assert get_searcher("plug.py:Found") is first
    assert registry_module.file_origin(first) == f"{tmp_path / 'plug.py'}:Found"
    assert registry_module.file_origin(RandomSearch) is None
    instance = first(seed=3)
    assert type(pickle.loads(pickle.dumps(instance))) is first


def test_a_path_holding_colons_is_split_at_the_last(tmp_path) -> None:
    folder = tmp_path / "a:b"
    folder.mkdir()
    (folder / "plug.py").write_text(PLUGIN_SOURCE)
    assert Registry("thing").resolve(f"{folder}/plug.py:Found").__name__ == "Found"


def test_two_files_with_one_stem_do_not_clash(tmp_path) -> None:
    for sub in ("one", "two"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "plug.py").write_text(PLUGIN_SOURCE)
    things: Registry[type] = Registry("thing")
    assert things.resolve(f"{tmp_path}/one/plug.py:Found") is not things.resolve(f"{tmp_path}/two/plug.py:Found")


@pytest.mark.parametrize(("source", "name", "fragment"), [
    (None, "missing.py:Found", "no file {tmp}/missing.py"),
    ("import no_such_package_here\n", "plug.py:Found",
     "importing {tmp}/plug.py raised ModuleNotFoundError: No module named 'no_such_package_here'"),
    ("def broken(:\n", "plug.py:Found", "importing {tmp}/plug.py raised SyntaxError"),
    ("raise RuntimeError('first line\\nsecond line')\n", "plug.py:Found",
     "importing {tmp}/plug.py raised RuntimeError: first line"),
    (PLUGIN_SOURCE, "plug.py:Nope", "{tmp}/plug.py defines no 'Nope' (it defines Found, Other)"),
])
def test_a_file_that_cannot_give_the_class_is_one_line(tmp_path, monkeypatch, source, name, fragment) -> None:
    if source is not None:
        (tmp_path / "plug.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnknownNameError) as info:
        Registry("thing").resolve(name)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"cannot load thing '{name}': ")
    assert fragment.format(tmp=tmp_path) in message
    assert "path/to/file.py:ClassName" in message
    if source is not PLUGIN_SOURCE:  # a failed import leaves no half-made module behind
        assert registry_module.file_module_name(tmp_path / "plug.py") not in registry_module.sys.modules
