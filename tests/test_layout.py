"""The package layout holds: no import circles, imports flow one way, one public surface.

Imports are read from the source (every ``import``, also those inside functions, which are
circles waiting for the wrong import order), so these tests see what the code could import,
not just what one run happened to.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "methods", "surrogates")

#: harness's subpackages from the bottom up: a layer may import only from layers before it
#: (and from the shared top-level modules). cli is last, and only it may reach surrogates/.
LAYERS = ("space", "execution", "search", "oneshot", "proxies", "evaluation", "reporting", "experiments", "cli")
SHARED = {"harness", "harness.errors", "harness.registry", "harness.interrupts", "harness.jsonsafe",
          "harness.filelock"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports anywhere (``from a.b import c`` counts a.b.c when that is a module)."""
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in modules)
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:`` (never executed)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    graph = {name: imports_of(path, modules) for name, path in modules.items()}
    # importing a.b.c runs a/__init__ and a/b/__init__ first (the importer's own ancestors are already running)
    for name in list(graph):
        ancestors = set(_parents(name))
        graph[name] |= {parent for target in graph[name] for parent in _parents(target) if parent not in ancestors}
        graph[name].discard(name)
    return graph


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "harness":
        return parts[0]
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


GRAPH = import_graph()


def test_the_graph_sees_lazy_and_nested_imports() -> None:
    assert "harness.oneshot.training" in GRAPH["harness.experiments.supernets"]  # inside a function
    assert "harness.search.searcher" in GRAPH["harness.oneshot.method"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circles() -> None:
    assert find_cycle(GRAPH) is None, f"import circle: {' -> '.join(find_cycle(GRAPH))}"


def test_subpackages_import_only_downwards() -> None:
    wrong = []
    for module, targets in GRAPH.items():
        layer = layer_of(module)
        if layer not in LAYERS:
            continue
        for target in targets:
            target_layer = layer_of(target)
            if target_layer in LAYERS and LAYERS.index(target_layer) > LAYERS.index(layer):
                wrong.append(f"{module} -> {target}")
    assert not wrong, "imports against the layer order " + " < ".join(LAYERS) + ":\n" + "\n".join(sorted(wrong))


def test_nothing_imports_the_cli() -> None:
    users = sorted(f"{m} -> {t}" for m, ts in GRAPH.items() for t in ts
                   if layer_of(t) == "cli" and layer_of(m) != "cli")
    assert not users, users


def test_the_harness_finds_methods_and_surrogates_only_through_entry_points() -> None:
    """Only the command line may import surrogates/ (for the surrogate study); nothing in harness imports methods/."""
    wrong = sorted(f"{m} -> {t}" for m, ts in GRAPH.items() for t in ts
                   if m.startswith("harness") and (t.startswith("methods")
                                                    or (t.startswith("surrogates") and layer_of(m) != "cli")))
    assert not wrong, wrong


def test_methods_import_the_public_surface_and_the_space_only() -> None:
    """The space includes its numpy-only modules (encodings for a method's learned predictor)."""
    wrong = sorted(f"{m} -> {t}" for m, ts in GRAPH.items() if m.startswith("methods.") for t in ts
                   if t.startswith("harness") and t not in ("harness", "harness.space")
                   and not t.startswith("harness.space."))
    assert not wrong, wrong


def test_few_modules_at_the_top_of_the_package() -> None:
    top = sorted(path.name for path in (ROOT / "harness").glob("*.py"))
    assert len(top) <= 12, top
    assert set(LAYERS) <= {path.name for path in (ROOT / "harness").iterdir() if path.is_dir()}


def test_public_surface_lists_and_loads_every_name() -> None:
    import harness

    assert harness.__all__ == sorted(harness._EXPORTS)
    for name in harness.__all__:
        assert getattr(harness, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        harness.nope  # noqa: B018
    required = {"Searcher", "register_searcher", "Architecture", "Result", "check_searcher", "run_compare",
                "CompareSettings", "rank_supernets", "train_supernet"}
    assert required <= set(harness.__all__)


def _python(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_the_contract_and_listing_methods_do_not_import_torch() -> None:
    _python("import sys\n"
            "from harness import Architecture, Searcher, check_searcher, register_searcher, run_compare\n"
            "from harness.search.searcher import get_searcher, method_names\n"
            "[get_searcher(name) for name in method_names(tabular=True)]\n"
            "assert method_names(tabular=False) == ['darts', 'fairnas', 'greedynas', 'spos'], method_names(False)\n"
            "assert 'torch' not in sys.modules, 'torch imported'")
    _python("import sys\nfrom harness.cli import main\nassert main(['list']) == 0\n"
            "assert 'torch' not in sys.modules and 'methods.spos' not in sys.modules")


def test_builtins_are_declared_entry_points_named_as_their_classes() -> None:
    from importlib import metadata

    from harness.search.searcher import ONESHOT_GROUP, SEARCHER_GROUP, get_searcher, is_tabular

    for group, tabular in ((SEARCHER_GROUP, True), (ONESHOT_GROUP, False)):
        points = metadata.entry_points(group=group)
        assert points, f"no entry points in {group}: is the package installed (pip install -e .)?"
        for point in points:
            cls = get_searcher(point.name)
            assert cls.name == point.name and cls.tabular is tabular and is_tabular(point.name) is tabular
