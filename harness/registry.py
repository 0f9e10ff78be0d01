"""Name -> class registries that refuse duplicates and resolve plug-ins."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Generic, TypeVar

from harness.errors import UnknownNameError

T = TypeVar("T")


class DuplicateNameError(ValueError):
    """Raised when a second object is registered under a name already taken."""


class Registry(Generic[T]):
    """Maps names to objects; ``resolve`` also accepts ``module:Attr`` and entry points."""

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._items: dict[str, T] = {}
        #: name -> ("module:Attr", attributes known without importing it)
        self._lazy: dict[str, tuple[str, dict]] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        if name in self._items and self._items[name] is not obj:
            raise DuplicateNameError(f"a {self.kind} named {name!r} is already registered")
        if name in self._lazy:
            target = self._lazy[name][0]
            if target != f"{getattr(obj, '__module__', '')}:{getattr(obj, '__qualname__', '')}":
                raise DuplicateNameError(f"a {self.kind} named {name!r} is already registered (as {target})")
        self._items[name] = obj

    def add_lazy(self, name: str, target: str, **attributes) -> None:
        """Register ``module:Attr`` under ``name`` without importing it until it is resolved.

        ``attributes`` are what callers may ask of it through ``attribute`` before that
        (e.g. ``tabular=False``), so listing a heavy plug-in does not import its module.
        """
        if name in self._items or name in self._lazy:
            raise DuplicateNameError(f"a {self.kind} named {name!r} is already registered")
        self._lazy[name] = (target, dict(attributes))

    def attribute(self, name: str, attr: str, default=None):
        """An attribute of a registered object, read from its lazy record when it has not been imported."""
        if name not in self._items and name in self._lazy and attr in self._lazy[name][1]:
            return self._lazy[name][1][attr]
        return getattr(self.resolve(name), attr, default)

    def names(self) -> list[str]:
        return sorted(set(self._items) | set(self._lazy) | set(self._entry_points()))

    def __contains__(self, name: str) -> bool:
        return name in self._items or name in self._lazy

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(set(self._items) | set(self._lazy)))

    def __getitem__(self, name: str) -> T:
        return self.resolve(name)

    def resolve(self, name: str) -> T:
        """Look ``name`` up: registered names, then ``package.module:Attr``, then entry points."""
        if name in self._items:
            return self._items[name]
        if name in self._lazy:
            module_name, _, attr = self._lazy[name][0].partition(":")
            obj = getattr(importlib.import_module(module_name), attr)
            self._items[name] = obj
            return obj
        if ":" in name:
            module_name, _, attr = name.partition(":")
            # Like uvicorn or pytest, let a user's module in the working directory be found.
            if os.getcwd() not in sys.path:
                sys.path.append(os.getcwd())
            try:
                module = importlib.import_module(module_name)
                return getattr(module, attr)
            except (ImportError, AttributeError) as exc:
                raise UnknownNameError(f"cannot load {self.kind} {name!r}: {exc}") from None
        entry_points = self._entry_points()
        if name in entry_points:
            return entry_points[name].load()
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}; valid: {', '.join(self.names())} "
            f"(or package.module:ClassName)"
        )

    def _entry_points(self) -> dict[str, metadata.EntryPoint]:
        if self.entry_point_group is None:
            return {}
        return {ep.name: ep for ep in metadata.entry_points(group=self.entry_point_group)}
