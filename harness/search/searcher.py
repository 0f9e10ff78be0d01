"""The searcher contract: ask / tell / best / state_dict, with the bookkeeping done once here.

Subclasses implement ``_ask`` and ``_tell``; they are only ever told the *validation*
accuracy of an architecture, never its test accuracy. All randomness comes from
``self.rng``, a ``numpy.random.Generator`` built from the seed.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from harness.errors import UnknownNameError, UserError
from harness.registry import Registry
from harness.search.benchmark import Result
from harness.space import Architecture


class Searcher:
    """Base class of every black-box searcher.

    Public methods do the bookkeeping (history, incumbent, refusing unknown tells);
    subclasses override ``_ask`` and ``_tell`` and, if they keep state beyond ``self.rng``
    and the history, ``_state_dict`` / ``_load_state_dict``.
    """

    name: ClassVar[str] = "searcher"
    #: True when the method needs only queries (runs on tables and surrogates).
    tabular: ClassVar[bool] = True

    def __init__(self, seed: int = 0) -> None:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = int(seed)
        self.rng = np.random.default_rng(self.seed)
        self.history: list[tuple[Architecture, float]] = []
        self._pending: list[Architecture] = []

    # -- contract -------------------------------------------------------------------
    def ask(self) -> Architecture:
        arch = self._ask()
        if not isinstance(arch, Architecture):
            raise TypeError(f"{type(self).__name__}._ask returned {arch!r}, not an Architecture")
        self._pending.append(arch)
        return arch

    def tell(self, arch: Architecture, result: Result | float) -> None:
        """Report the outcome of an asked architecture; only its validation accuracy is passed on."""
        if arch not in self._pending:
            raise ValueError(f"tell() for an architecture that was not asked: {arch}")
        reward = float(result.val_accuracy if isinstance(result, Result) else result)
        if not math.isfinite(reward):
            raise ValueError(f"validation accuracy must be finite, got {reward} for {arch}")
        self._pending.remove(arch)
        self.history.append((arch, reward))
        self._tell(arch, reward)

    def best(self) -> Architecture:
        """The architecture with the highest validation accuracy told so far (first one on ties)."""
        if not self.history:
            raise RuntimeError("best() before any tell()")
        best_arch, best_reward = self.history[0]
        for arch, reward in self.history[1:]:
            if reward > best_reward:
                best_arch, best_reward = arch, reward
        return best_arch

    def hyperparameters(self) -> dict[str, Any]:
        """The method's settings, for logs (subclasses extend)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "rng": copy.deepcopy(self.rng.bit_generator.state),
            "history": [(a.ops, r) for a, r in self.history],
            "pending": [a.ops for a in self._pending],
            "method": copy.deepcopy(self._state_dict()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seed = int(state["seed"])
        self.rng = np.random.default_rng()
        self.rng.bit_generator.state = copy.deepcopy(state["rng"])
        self.history = [(Architecture(tuple(ops)), float(r)) for ops, r in state["history"]]
        self._pending = [Architecture(tuple(ops)) for ops in state["pending"]]
        self._load_state_dict(state["method"])

    # -- for subclasses -------------------------------------------------------------
    def _ask(self) -> Architecture:
        raise NotImplementedError

    def _tell(self, arch: Architecture, reward: float) -> None:
        """Learn from one (architecture, validation accuracy) pair; default: nothing."""

    def _state_dict(self) -> dict[str, Any]:
        return {}

    def _load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``_state_dict`` saved; default: nothing."""


#: Entry-point groups of searchers: black-box searchers, and one-shot methods (a supernet
#: training policy plus a search stage, ``harness.oneshot.method.SupernetMethod``). The
#: built-ins are declared in the project's ``pyproject.toml`` like any plug-in's.
SEARCHER_GROUP = "nas_harness.searchers"
ONESHOT_GROUP = "nas_harness.oneshot"
SEARCHERS: Registry[type[Searcher]] = Registry(
    "searcher", groups={SEARCHER_GROUP: {"tabular": True}, ONESHOT_GROUP: {"tabular": False}})


def register_searcher(name: str):
    """Class decorator: register a Searcher subclass under ``name`` and set its ``name``."""

    def decorator(cls: type[Searcher]) -> type[Searcher]:
        cls.name = name
        SEARCHERS.add(name, cls)
        return cls

    return decorator


def get_searcher(name: str) -> type[Searcher]:
    """Resolve a registered name, an entry point or ``package.module:ClassName`` to a class."""
    cls = SEARCHERS.resolve(name)
    if not (isinstance(cls, type) and issubclass(cls, Searcher)):
        raise UnknownNameError(f"{name!r} is not a Searcher subclass")
    return cls


def takes_budget(cls: type) -> bool:
    """Whether ``cls.__init__`` names a ``budget`` parameter: the harness then passes the run's query budget."""
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # pragma: no cover - a class whose signature cannot be read
        return False
    budget = parameters.get("budget")
    return budget is not None and budget.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                  inspect.Parameter.KEYWORD_ONLY)


#: Constructor arguments the harness fills itself: never hyper-parameters given by the user.
_HARNESS_ARGUMENTS = ("seed", "budget")


def hyperparameter_defaults(cls: type) -> dict[str, Any] | None:
    """The keyword arguments ``cls`` takes besides ``seed`` and ``budget`` (which the harness passes), each
    with its default (``inspect.Parameter.empty`` when it has none), read from the signatures without
    building it. A constructor with ``**kwargs`` is taken to pass them on to its parent's (as
    ``super().__init__(seed, **kwargs)`` does), whose arguments are added; None when the keywords
    reach no parent that names them (the class may take any) or a signature cannot be read."""
    found: dict[str, Any] = {}
    passed_on = False  # whether the constructors read so far hand **kwargs to their parent
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        if klass in (Searcher, object):
            # **kwargs that reach the harness's base: nothing says which keys the class uses.
            return None if passed_on else found
        try:
            parameters = inspect.signature(klass.__init__).parameters
        except (TypeError, ValueError):  # pragma: no cover - a constructor whose signature cannot be read
            return None
        for p in list(parameters.values())[1:]:  # after self
            if (p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
                    and p.name not in _HARNESS_ARGUMENTS):
                found.setdefault(p.name, p.default)
        passed_on = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
        if not passed_on:
            return found
    return None  # pragma: no cover - every class ends at object


def describe_hyperparameters(cls: type) -> str:
    """``hyperparameter_defaults`` in words: ``name=default, ...`` ("none" when it takes none)."""
    defaults = hyperparameter_defaults(cls)
    if defaults is None:
        return "any keyword (the constructor takes **kwargs)"
    return ", ".join(name if default is inspect.Parameter.empty else f"{name}={default!r}"
                     for name, default in defaults.items()) or "none"


def make_searcher(name: str, seed: int, hyperparameters: Mapping[str, Any] | None = None,
                  budget: int | None = None) -> Searcher:
    """Build the searcher ``name`` for a run: ``cls(seed=seed, **hyperparameters)``.

    A class whose ``__init__`` takes a ``budget`` parameter is also passed ``budget``, the run's
    number of queries (when given); setting it as a hyper-parameter as well is refused. A key
    the constructor does not take, or a constructor that refuses its arguments (TypeError or
    ValueError), is a UserError listing the hyper-parameters it takes.
    """
    cls = get_searcher(name)
    kwargs = dict(hyperparameters or {})
    if budget is not None and takes_budget(cls):
        if "budget" in kwargs:
            raise UserError(f"{name}: budget={kwargs['budget']!r} given as a hyper-parameter, but the harness "
                            f"passes {name} the run's query budget ({budget}); set it with --budget instead")
        kwargs["budget"] = budget
    try:
        return cls(seed=seed, **kwargs)
    except (TypeError, ValueError) as exc:
        given = ", ".join(f"{key}={value!r}" for key, value in {"seed": seed, **kwargs}.items())
        raise UserError(f"{name}({given}) refused: {type(exc).__name__}: {exc}; {name} takes: "
                        f"{describe_hyperparameters(cls)}") from None


def method_label(name: str) -> str:
    """How a method is shown in reports and logs.

    A registered or declared name is shown as itself; ``module:Class`` or ``file.py:Class`` by
    the class's own ``name`` attribute when the class sets one, else by the name as given.
    """
    if ":" not in name or name in SEARCHERS.names():
        return name
    own = vars(get_searcher(name)).get("name")
    return own if isinstance(own, str) and own.strip() and own != Searcher.name else name


def is_tabular(name: str) -> bool:
    """Whether the named method needs only queries; known without importing a declared method."""
    return bool(SEARCHERS.attribute(name, "tabular", True))


def method_names(tabular: bool | None = None) -> list[str]:
    """Every declared or registered method, or only the tabular (True) or one-shot (False) ones, by name."""
    return [name for name in SEARCHERS.names() if tabular is None or is_tabular(name) == tabular]
