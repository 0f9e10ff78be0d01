"""Name -> object registries that refuse duplicates and find plug-ins.

A name resolves, in order, to an object registered in this process (``add`` or the
``register`` decorator), to an entry point of one of the registry's groups (declared in a
package's ``pyproject.toml``; the built-in methods and benchmarks are found this way too),
or, written ``package.module:Attr`` or ``path/to/file.py:Attr``, to that attribute (a file is
imported under a module name derived from its resolved path, so resolving it again, in this
process or a forked worker, gives the same object and its instances pickle).
Entry points are loaded only when their name is resolved, so listing names imports nothing;
each group can say what is known of its members before they load (e.g. ``tabular=False``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, TypeVar

from harness.errors import UnknownNameError

T = TypeVar("T")


class DuplicateNameError(ValueError):
    """Raised when a second object is registered under a name already taken."""


@cache
def _declared(group: str, lookup: Callable[..., Any]) -> tuple[metadata.EntryPoint, ...]:
    """The entry points of ``group``, read once per process (``lookup`` is part of the key, so a
    test that replaces ``metadata.entry_points`` sees its own)."""
    return tuple(lookup(group=group))


#: The forms of a name that no registry holds, as error messages state them.
PATH_FORMS = "package.module:ClassName or path/to/file.py:ClassName"
#: Module names of files loaded by path start with this (``file_module_name``).
FILE_MODULE_PREFIX = "nas_harness_file_"
#: Module name -> resolved path of every file loaded by path in this process.
_FILES: dict[str, Path] = {}


def is_file_path(text: str) -> bool:
    """Whether the part before ``:Attr`` of a name is a file (ends in .py or holds a path separator)."""
    return text.endswith(".py") or "/" in text or os.sep in text


def file_module_name(path: Path) -> str:
    """The module name a file is imported under: its stem and a digest of its resolved path.

    The same file always gets the same name (so a second resolve, or a forked worker, finds the
    module already loaded and classes pickle by reference); two files with one stem do not clash.
    """
    path = Path(path).resolve()
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    return f"{FILE_MODULE_PREFIX}{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}_{digest}"


def import_file(path: Path) -> ModuleType:
    """Import a Python file by path (once per process) and return the module; what it raises propagates."""
    path = Path(path).resolve()
    name = file_module_name(path)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before running it, as import does (dataclasses and pickle look it up)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    _FILES[name] = path
    return module


def file_origin(obj: Any) -> str | None:
    """``/resolved/path.py:QualName`` for an object defined in a file loaded by path, else None.

    A fresh interpreter cannot import such an object by its module name; it can resolve this.
    """
    path = _FILES.get(getattr(obj, "__module__", None) or "")
    return None if path is None else f"{path}:{obj.__qualname__}"


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _target_of(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '')}:{getattr(obj, '__qualname__', '')}"


class Registry(Generic[T]):
    """Maps names to objects; ``resolve`` also accepts ``module:Attr`` and entry points.

    ``groups`` maps an entry-point group to the attributes every member of that group has
    (read through ``attribute`` without importing the member); a registry with one group
    and nothing to say of it can pass ``entry_point_group`` instead.
    """

    def __init__(self, kind: str, entry_point_group: str | None = None,
                 groups: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.kind = kind
        self.groups: dict[str, dict[str, Any]] = {name: dict(attrs) for name, attrs in (groups or {}).items()}
        if entry_point_group is not None:
            self.groups.setdefault(entry_point_group, {})
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name``; a name taken by another object (or entry point) is refused."""
        if name in self._items and self._items[name] is not obj:
            raise DuplicateNameError(f"a {self.kind} named {name!r} is already registered")
        point = self._entry_points().get(name)
        if point is not None and name not in self._items and point.value.replace(" ", "") != _target_of(obj):
            raise DuplicateNameError(f"a {self.kind} named {name!r} is already registered (as {point.value})")
        self._items[name] = obj

    def attribute(self, name: str, attr: str, default: Any = None) -> Any:
        """An attribute of a named object; for an entry point not yet loaded, its group's value when it has one."""
        if name not in self._items:
            point = self._entry_points().get(name)
            if point is not None and attr in self.groups.get(point.group, {}):
                return self.groups[point.group][attr]
        return getattr(self.resolve(name), attr, default)

    def names(self) -> list[str]:
        """Every name: registered in this process or declared as an entry point."""
        return sorted(set(self._items) | set(self._entry_points()))

    def __contains__(self, name: str) -> bool:
        """Whether ``name`` is registered in this process (a declared entry point counts once loaded)."""
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __getitem__(self, name: str) -> T:
        return self.resolve(name)

    def resolve(self, name: str) -> T:
        """Look ``name`` up: registered names, then entry points, then ``package.module:Attr`` or ``file.py:Attr``."""
        if name in self._items:
            return self._items[name]
        point = self._entry_points().get(name)
        if point is not None:
            return point.load()
        if ":" in name:
            return self._load_path(name)
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())} "
            f"(or {PATH_FORMS})"
        )

    def _load_path(self, name: str) -> T:
        module_name, _, attr = name.rpartition(":")  # the last ':', so a path may hold others
        if is_file_path(module_name):
            return self._load_file(name, module_name, attr)
        # Like uvicorn or pytest, let a user's module in the working directory be found.
        if os.getcwd() not in sys.path:
            sys.path.append(os.getcwd())
        try:
            module = importlib.import_module(module_name)
            return getattr(module, attr)
        except (ImportError, AttributeError) as exc:
            raise UnknownNameError(f"cannot load {self.kind} {name!r}: {_one_line(exc)}; "
                                   f"accepted: {PATH_FORMS}") from None

    def _load_file(self, name: str, path_text: str, attr: str) -> T:
        path = Path(path_text).expanduser()
        path = (path if path.is_absolute() else Path.cwd() / path).resolve()
        cannot = f"cannot load {self.kind} {name!r}"
        if not path.is_file():
            raise UnknownNameError(f"{cannot}: no file {path} (a relative path is taken from the working "
                                   f"directory); accepted: {PATH_FORMS}")
        try:
            module = import_file(path)
        except Exception as exc:  # noqa: BLE001 - whatever the file raises, say so in one line
            raise UnknownNameError(f"{cannot}: importing {path} raised {_one_line(exc)}; "
                                   f"accepted: {PATH_FORMS}") from None
        if not attr.isidentifier() or not hasattr(module, attr):
            classes = sorted(key for key, value in vars(module).items()
                             if isinstance(value, type) and value.__module__ == module.__name__)
            raise UnknownNameError(f"{cannot}: {path} defines no {attr!r} (it defines "
                                   f"{', '.join(classes) or 'no class'}); accepted: path/to/file.py:ClassName")
        return getattr(module, attr)

    def _entry_points(self) -> dict[str, metadata.EntryPoint]:
        points: dict[str, metadata.EntryPoint] = {}
        for group in self.groups:
            for point in _declared(group, metadata.entry_points):
                points.setdefault(point.name, point)
        return points
