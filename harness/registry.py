"""Name -> object registries that refuse duplicates and find plug-ins.

A name resolves, in order, to an object registered in this process (``add`` or the
``register`` decorator), to an entry point of one of the registry's groups (declared in a
package's ``pyproject.toml``; the built-in methods and benchmarks are found this way too),
or, written ``package.module:Attr``, to that attribute.
Entry points are loaded only when their name is resolved, so listing names imports nothing;
each group can say what is known of its members before they load (e.g. ``tabular=False``).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from importlib import metadata
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
        """Look ``name`` up: registered names, then entry points, then ``package.module:Attr``."""
        if name in self._items:
            return self._items[name]
        point = self._entry_points().get(name)
        if point is not None:
            return point.load()
        if ":" in name:
            return self._load_path(name)
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())} "
            f"(or package.module:ClassName)"
        )

    def _load_path(self, name: str) -> T:
        module_name, _, attr = name.rpartition(":")
        # Like uvicorn or pytest, let a user's module in the working directory be found.
        if os.getcwd() not in sys.path:
            sys.path.append(os.getcwd())
        try:
            module = importlib.import_module(module_name)
            return getattr(module, attr)
        except (ImportError, AttributeError) as exc:
            raise UnknownNameError(f"cannot load {self.kind} {name!r}: {exc}") from None

    def _entry_points(self) -> dict[str, metadata.EntryPoint]:
        points: dict[str, metadata.EntryPoint] = {}
        for group in self.groups:
            for point in _declared(group, metadata.entry_points):
                points.setdefault(point.name, point)
        return points
