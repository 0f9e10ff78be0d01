"""The searcher contract as checks a plug-in author can run on their own class.

    from harness.testing import check_searcher
    check_searcher(MySearcher, population_size=20)   # raises AssertionError naming every broken rule

``check_searcher`` runs every check, even after one fails, and raises one ``ContractError``
(an AssertionError) listing each failed check with its message and the likely cause; on
success it returns the ``ContractReport`` (each check, passed, and its time).

Each ``check_*`` function takes the class and its hyper-parameters (keyword arguments
passed to ``cls(seed=..., **hparams)``), builds fresh instances with fixed seeds, and
raises ``AssertionError`` with a message that says which rule broke and how. They run on
``synthetic_benchmark()``, a deterministic problem over the real NB201 space whose
optimum is known, so the checks need no data file and take seconds. The project runs
every registered searcher through ``CHECKS`` (``tests/methods/test_contract.py``).
``weights`` / ``assert_same_weights`` compare trained supernets (same seed, exact resume);
``strict_json`` parses a command's JSON output as a strict parser would.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from harness.registry import file_origin
from harness.search.benchmark import Result, TabularBenchmark
from harness.search.searcher import Searcher
from harness.space import (
    CONV1X1,
    CONV3X3,
    NUM_ARCHITECTURES,
    SKIP,
    Architecture,
    all_architectures,
    is_output_disconnected,
    ops_matrix,
)

# -- the synthetic problem ------------------------------------------------------------

#: Per-edge op scores (rows: edges in ``EDGES`` order; columns: none, skip, 1x1, 3x3, pool).
EDGE_OP_SCORES = np.array(
    [
        [0.0, 1.0, 2.0, 3.0, 0.5],
        [0.0, 1.0, 2.0, 2.5, 0.5],
        [0.0, 0.5, 2.5, 3.0, 0.5],
        [0.0, 2.0, 1.5, 1.0, 0.5],
        [0.0, 0.5, 2.0, 2.5, 0.5],
        [0.0, 0.5, 2.0, 3.5, 1.0],
    ]
)
BASE_ACCURACY = 70.0
#: Bonus when the input-to-output edge is a skip and the last edge a 3x3 conv (a residual block).
RESIDUAL_BONUS = 3.0
#: Bonus when edges (1,2) and (1,3) are both 1x1 convs: each edge alone prefers 3x3, so a
#: method that only climbs edge by edge misses the optimum by this interaction.
PAIR_BONUS = 2.0
#: Accuracy of a cell whose output is disconnected (chance level, as in NB201).
CHANCE_ACCURACY = 10.0


def synthetic_scores(ops: np.ndarray) -> np.ndarray:
    """Validation accuracy of each row of a (n, 6) op-index array under the synthetic problem."""
    ops = np.asarray(ops, dtype=int)
    scores = BASE_ACCURACY + EDGE_OP_SCORES[np.arange(6), ops].sum(axis=1)
    scores += RESIDUAL_BONUS * ((ops[:, 3] == SKIP) & (ops[:, 5] == CONV3X3))
    scores += PAIR_BONUS * ((ops[:, 2] == CONV1X1) & (ops[:, 4] == CONV1X1))
    disconnected = np.array([is_output_disconnected(Architecture(tuple(row))) for row in ops])
    return np.where(disconnected, CHANCE_ACCURACY, scores)


@lru_cache(maxsize=1)
def synthetic_benchmark() -> TabularBenchmark:
    """A deterministic, noise-free benchmark over all 15,625 NB201 cells with a known optimum.

    Validation accuracy = 70 + a per-edge op score + two interaction bonuses (see the
    constants above); disconnected cells score 10. The unique optimum is
    ``|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|skip_connect~0|nor_conv_1x1~1|nor_conv_3x3~2|``
    at 90.5; the best cell without the pair bonus scores 89.5. The test accuracy differs
    from the validation accuracy by a deterministic, index-dependent offset, so test and
    validation rank cells differently.
    """
    ops = ops_matrix()
    val = synthetic_scores(ops)
    index = np.arange(NUM_ARCHITECTURES)
    test = val - 1.0 + 0.8 * np.sin(index * 0.7)
    metric = "synthetic score (additive per-edge plus interactions; harness.testing)"
    return TabularBenchmark("synthetic", val, test, reward_metric=metric, report_metric=metric)


def synthetic_optimum() -> tuple[Architecture, float]:
    """The synthetic benchmark's best architecture and its validation accuracy."""
    val = synthetic_benchmark().val_accuracy
    best = int(np.argmax(val))
    return all_architectures()[best], float(val[best])


def top_fraction(value: float) -> float:
    """Fraction of the space whose synthetic validation accuracy is strictly above ``value``."""
    return float(np.count_nonzero(synthetic_benchmark().val_accuracy > value)) / NUM_ARCHITECTURES


# -- driving a searcher -------------------------------------------------------------------


def make(cls: type[Searcher], seed: int, hparams: dict[str, Any]) -> Searcher:
    """``cls(seed=seed, **hparams)``, with a clear message when the constructor refuses."""
    try:
        return cls(seed=seed, **hparams)
    except TypeError as exc:
        raise AssertionError(
            f"{cls.__name__}(seed={seed}, **{hparams!r}) failed: {exc}; a searcher takes "
            "seed=... and its hyper-parameters as keyword arguments"
        ) from exc


def drive(
    searcher: Searcher,
    budget: int,
    benchmark: TabularBenchmark | None = None,
    result: Callable[[Architecture], Result] | None = None,
) -> list[Architecture]:
    """Ask, query and tell ``budget`` times; return the asked architectures in order."""
    benchmark = benchmark or synthetic_benchmark()
    query = result or benchmark.query
    asked = []
    for _ in range(budget):
        arch = searcher.ask()
        asked.append(arch)
        searcher.tell(arch, query(arch))
    return asked


def trajectory(cls: type[Searcher], seed: int, budget: int, hparams: dict[str, Any]) -> list[int]:
    """Indices of the architectures a fresh ``cls(seed)`` asks over ``budget`` synthetic queries."""
    return [arch.index for arch in drive(make(cls, seed, hparams), budget)]


def _first_difference(a: list[Any], b: list[Any]) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"first difference at query {i + 1}: {x} vs {y}"
    return f"lengths {len(a)} vs {len(b)}"


def _continue(searcher: Searcher, pending: Architecture, budget: int) -> list[int]:
    """Tell the pending architecture, then run ``budget`` more queries; asked indices."""
    searcher.tell(pending, synthetic_benchmark().query(pending))
    return [arch.index for arch in drive(searcher, budget)]


# -- comparing outputs -------------------------------------------------------------------


def weights(model: Any) -> dict[str, Any]:
    """A copy of the state dict of ``model`` (or of a trainer's ``.model``), to compare once training goes on."""
    model = getattr(model, "model", model)
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def assert_same_weights(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Two state dicts (``weights``) hold bitwise-equal tensors under the same names (exact resume, same seed)."""
    import torch  # lazily: the searcher checks need no torch

    assert a.keys() == b.keys(), f"different entries: {sorted(a.keys() ^ b.keys())}"
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"


def strict_json(text: str) -> Any:
    """``json.loads`` that refuses NaN and Infinity, which Python writes by default but JSON does not allow."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not valid JSON (write null for an undefined figure)")

    return json.loads(text, parse_constant=refuse)


# -- the checks ---------------------------------------------------------------------------


def check_asks_are_architectures(cls: type[Searcher], **hparams: Any) -> None:
    """Every ask returns an ``Architecture`` of the NB201 space."""
    searcher = make(cls, 0, hparams)
    valid = set(all_architectures())
    for i in range(30):
        arch = searcher.ask()
        assert type(arch) is Architecture and arch in valid, (
            f"{cls.__name__}: ask #{i + 1} returned {arch!r}, not an NB201 Architecture"
        )
        searcher.tell(arch, synthetic_benchmark().query(arch))


def check_same_seed_same_trajectory(cls: type[Searcher], **hparams: Any) -> None:
    """Two instances with the same seed ask the same architectures in the same order."""
    first, second = trajectory(cls, 5, 40, hparams), trajectory(cls, 5, 40, hparams)
    assert first == second, (
        f"{cls.__name__}: seed 5 gave two different trajectories ({_first_difference(first, second)}); "
        "draw all randomness from self.rng (or a generator seeded from it), never global state"
    )


def check_different_seed_different_trajectory(cls: type[Searcher], **hparams: Any) -> None:
    """Different seeds give different trajectories (the seed is actually used)."""
    first, second = trajectory(cls, 0, 20, hparams), trajectory(cls, 1, 20, hparams)
    assert first != second, f"{cls.__name__}: seeds 0 and 1 asked the same 20 architectures; is the seed used?"


def check_state_dict_round_trip(cls: type[Searcher], **hparams: Any) -> None:
    """A fresh instance loaded with a mid-run ``state_dict()`` continues exactly as the original.

    The snapshot is taken with one architecture asked but not yet told, after which the
    original keeps running; so ``state_dict()`` must return a copy that later steps do not
    modify, and ``load_state_dict`` must copy what it loads.
    """
    original = make(cls, 7, hparams)
    drive(original, 25)
    pending = original.ask()
    state = original.state_dict()
    expected = _continue(original, pending, 25)
    saved = sorted(state["method"]) if isinstance(state.get("method"), dict) else state.get("method")
    for attempt in ("first", "second"):
        clone = make(cls, 0, hparams)  # another seed: the state must carry the generator
        try:
            clone.load_state_dict(state)
        except Exception as exc:  # noqa: BLE001 - say which state was loaded, not only what the plug-in raised
            raise AssertionError(
                f"{cls.__name__}: load_state_dict() of its own mid-run state_dict() raised {exc!r}{_where(exc)}; "
                f"_state_dict saved {saved!r}, and _load_state_dict may read only that"
            ) from exc
        got = _continue(clone, pending, 25)
        assert got == expected, (
            f"{cls.__name__}: a {attempt} instance loaded from a mid-run state_dict() did not continue "
            f"like the original ({_first_difference(expected, got)}); state_dict() must capture all "
            "method state as a snapshot, and load_state_dict() must copy it"
        )
        assert clone.best() == original.best() and clone.history == original.history, (
            f"{cls.__name__}: after resuming from state_dict(), history/best() differ from the original"
        )


def check_pickle_round_trip(cls: type[Searcher], **hparams: Any) -> None:
    """A searcher pickled mid-run (one ask pending) continues exactly as the original."""
    original = make(cls, 11, hparams)
    drive(original, 25)
    pending = original.ask()
    try:
        blob = pickle.dumps(original)
    except Exception as exc:  # noqa: BLE001 - any failure to pickle breaks the contract
        raise AssertionError(f"{cls.__name__}: a searcher must be picklable mid-run: {exc!r}") from exc
    expected = _continue(original, pending, 25)
    got = _continue(pickle.loads(blob), pending, 25)
    assert got == expected, (
        f"{cls.__name__}: the unpickled searcher did not continue like the original "
        f"({_first_difference(expected, got)})"
    )


_CHILD_CODE = """
import pickle, sys
from harness.testing import trajectory
with open(sys.argv[1], "rb") as handle:
    cls, seed, budget, hparams = pickle.load(handle)
if isinstance(cls, str):  # a class loaded from a file: found again by its path
    from harness.search.searcher import get_searcher
    cls = get_searcher(cls)
with open(sys.argv[2], "wb") as handle:
    pickle.dump(trajectory(cls, seed, budget, hparams), handle)
"""


def check_fresh_process(cls: type[Searcher], **hparams: Any) -> None:
    """A new Python process (another hash seed) asks the same architectures for the same seed.

    The class must be importable by its module and name, as any plug-in is (a class loaded
    from a file, ``path/to/file.py:ClassName``, is loaded again from that file).
    """
    seed, budget = 3, 30
    expected = trajectory(cls, seed, budget, hparams)
    with tempfile.TemporaryDirectory() as tmp:
        task, answer = os.path.join(tmp, "task.pkl"), os.path.join(tmp, "answer.pkl")
        try:
            with open(task, "wb") as handle:
                pickle.dump((file_origin(cls) or cls, seed, budget, hparams), handle)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            raise AssertionError(
                f"{cls.__name__}: cannot send the class to another process ({exc}); "
                "define it at module level in an importable module"
            ) from exc
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        env["PYTHONHASHSEED"] = "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD_CODE, task, answer],
            env=env, capture_output=True, text=True, timeout=600,
        )
        assert proc.returncode == 0, (
            f"{cls.__name__}: the fresh process failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
        )
        with open(answer, "rb") as handle:
            got = pickle.load(handle)
    assert got == expected, (
        f"{cls.__name__}: a fresh process asked different architectures for seed {seed} "
        f"({_first_difference(expected, got)}); do not depend on hash order, id() or global state"
    )


def check_rejects_unasked_tell(cls: type[Searcher], **hparams: Any) -> None:
    """``tell`` of an architecture that is not pending (never asked, or already told) raises ValueError."""
    searcher = make(cls, 0, hparams)
    arch = searcher.ask()
    other = Architecture.from_index((arch.index + 1) % NUM_ARCHITECTURES)
    for label, candidate in (("never asked", other), ("already told", arch)):
        if label == "already told":
            searcher.tell(arch, synthetic_benchmark().query(arch))
        try:
            searcher.tell(candidate, synthetic_benchmark().query(candidate))
        except ValueError:
            continue
        raise AssertionError(f"{cls.__name__}: tell() of an architecture {label} did not raise ValueError")


def check_batch_asks(cls: type[Searcher], **hparams: Any) -> None:
    """Several asks before their tells, told in another order (parallel workers), are handled."""
    searcher = make(cls, 0, hparams)
    for _ in range(6):
        batch = [searcher.ask() for _ in range(4)]
        for arch in reversed(batch):
            searcher.tell(arch, synthetic_benchmark().query(arch))
    assert len(searcher.history) == 24, f"{cls.__name__}: history has {len(searcher.history)} entries, not 24"


def check_best_is_highest_validation(cls: type[Searcher], **hparams: Any) -> None:
    """``best()`` is the told architecture with the highest validation accuracy (first on ties)."""
    searcher = make(cls, 2, hparams)
    asked = drive(searcher, 40)
    val = synthetic_benchmark().val_accuracy
    scores = [val[a.index] for a in asked]
    expected = asked[int(np.argmax(scores))]
    assert searcher.best() == expected, (
        f"{cls.__name__}: best() returned {searcher.best()} ({val[searcher.best().index]:.2f}), "
        f"but the best validation accuracy told was {expected} ({max(scores):.2f})"
    )


def check_never_sees_test_accuracy(cls: type[Searcher], **hparams: Any) -> None:
    """Behaviour depends on validation accuracy only: NaN test figures change nothing."""
    bench = synthetic_benchmark()

    def honest(arch: Architecture) -> Result:
        val = float(bench.val_accuracy[arch.index])
        return Result(val_accuracy=val, test_accuracy=val)

    def garbage(arch: Architecture) -> Result:
        val = float(bench.val_accuracy[arch.index])
        return Result(val_accuracy=val, test_accuracy=math.nan, extras={"test_accuracy": -1e9, "noise": math.nan})

    first, second = make(cls, 4, hparams), make(cls, 4, hparams)
    a = [x.index for x in drive(first, 40, result=honest)]
    b = [x.index for x in drive(second, 40, result=garbage)]
    assert a == b and first.best() == second.best(), (
        f"{cls.__name__}: changing only test accuracy (to NaN) changed what the searcher did "
        f"({_first_difference(a, b)}); a searcher may only use validation accuracy"
    )


def check_hyperparameters(cls: type[Searcher], **hparams: Any) -> None:
    """``hyperparameters()`` is a JSON-serialisable dict with string keys (it is logged)."""
    searcher = make(cls, 0, hparams)
    values = searcher.hyperparameters()
    assert isinstance(values, dict) and all(isinstance(k, str) for k in values), (
        f"{cls.__name__}: hyperparameters() must return a dict with string keys, got {values!r}"
    )
    try:
        json.dumps(values)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{cls.__name__}: hyperparameters() is not JSON-serialisable: {exc}") from exc
    for key, value in hparams.items():
        assert key not in values or values[key] == value, (
            f"{cls.__name__}: hyperparameters()[{key!r}] is {values[key]!r}, but {value!r} was passed"
        )


#: Budget and seeds of ``check_finds_good_architectures``.
QUALITY_BUDGET = 150
QUALITY_SEEDS = (0, 1, 2, 3, 4)
#: Every seed's incumbent must lie in this top fraction of the space ...
QUALITY_WORST_FRACTION = 0.05
#: ... and the seeds' mean top fraction must not exceed this.
QUALITY_MEAN_FRACTION = 0.02


def check_finds_good_architectures(cls: type[Searcher], **hparams: Any) -> None:
    """With 150 queries the incumbent is near the synthetic optimum, on each of 5 fixed seeds.

    The margin is the one random search meets: the best of 150 uniform draws lies in the
    top 5% of the space with probability 1 - 0.95**150 > 0.9995, and the mean over 5
    seeds of its top fraction (expected 1/151 = 0.66%) exceeds 2% with probability
    below 1e-3 (simulated over 20,000 x 5 runs: random search fails this check 0.06% of
    the time). On this problem the top 5% lie within 8.0 points of the optimum (90.5) and
    the top 2% within 6.5 points. A method that fails does worse than random search.
    """
    val = synthetic_benchmark().val_accuracy
    _, optimum = synthetic_optimum()
    fractions, regrets = [], []
    for seed in QUALITY_SEEDS:
        searcher = make(cls, seed, hparams)
        drive(searcher, QUALITY_BUDGET)
        best = float(val[searcher.best().index])
        fractions.append(top_fraction(best))
        regrets.append(optimum - best)
    report = ", ".join(f"seed {s}: top {100 * f:.2f}% (regret {r:.1f})" for s, f, r in
                       zip(QUALITY_SEEDS, fractions, regrets, strict=True))
    assert max(fractions) <= QUALITY_WORST_FRACTION and np.mean(fractions) <= QUALITY_MEAN_FRACTION, (
        f"{cls.__name__}: after {QUALITY_BUDGET} queries the incumbent must be in the top "
        f"{100 * QUALITY_WORST_FRACTION:.0f}% on every seed and the top {100 * QUALITY_MEAN_FRACTION:.0f}% "
        f"on average (random search manages this); got {report}"
    )


#: Every check, cheapest first. ``check_searcher`` runs them all.
CHECKS: tuple[Callable[..., None], ...] = (
    check_hyperparameters,
    check_asks_are_architectures,
    check_rejects_unasked_tell,
    check_batch_asks,
    check_best_is_highest_validation,
    check_same_seed_same_trajectory,
    check_different_seed_different_trajectory,
    check_never_sees_test_accuracy,
    check_state_dict_round_trip,
    check_pickle_round_trip,
    check_finds_good_architectures,
    check_fresh_process,
)


#: The likely cause of each check's failure, shown under it by ``check_searcher``.
HINTS: dict[str, str] = {
    "check_hyperparameters": "hyperparameters() must return a dict with string keys and JSON values (numbers, "
                             "strings, booleans, lists), reporting the values __init__ was given",
    "check_asks_are_architectures": "_ask must return a harness.Architecture (e.g. sample_architecture(self.rng) "
                                    "or Architecture(ops)), never a tuple, string or index",
    "check_rejects_unasked_tell": "do not override tell(); the base class refuses an unknown or repeated tell and "
                                  "then calls _tell",
    "check_batch_asks": "several asks may be pending and told in any order (parallel workers): _tell must not "
                        "assume it follows its own last _ask",
    "check_best_is_highest_validation": "do not override best(); the base class returns the architecture with the "
                                        "highest validation accuracy told",
    "check_same_seed_same_trajectory": "draw every random number from self.rng (or a generator seeded from it); "
                                       "never global random / np.random, the clock, id() or set order",
    "check_different_seed_different_trajectory": "seed every random draw from self.rng, which the seed builds; a "
                                                 "generator with a fixed seed ignores it",
    "check_never_sees_test_accuracy": "use only the reward _tell is given (the validation accuracy); do not "
                                      "override tell() to read result.test_accuracy or extras (randomness drawn "
                                      "outside self.rng fails this check too)",
    "check_state_dict_round_trip": "_state_dict must hold everything _ask/_tell depend on beyond self.rng and the "
                                   "history; _load_state_dict must copy what it loads (not keep references); state "
                                   "may hold non-JSON objects such as numpy arrays or a sampler, it is deep-copied "
                                   "and pickled",
    "check_pickle_round_trip": "every attribute must pickle (no lambdas, local classes, open files or locks; "
                               "rebuild such things in __setstate__), and all state must live on the instance, "
                               "randomness in self.rng, so the unpickled copy continues alike",
    "check_finds_good_architectures": "on a simple problem the search did worse than random search: does _tell "
                                      "use the reward (higher is better) and _ask exploit it?",
    "check_fresh_process": "the class must be importable by module path (or loaded from its file) from a new "
                           "interpreter, and its choices must not depend on hash order (PYTHONHASHSEED), id() or "
                           "global state",
}


@dataclass(frozen=True)
class CheckResult:
    """One contract check: passed or not, how long it took, and on failure why and the likely cause."""

    check: str
    passed: bool
    seconds: float
    message: str = ""
    hint: str = ""


@dataclass(frozen=True)
class ContractReport:
    """Every check ``check_searcher`` ran on one class, in ``CHECKS`` order."""

    searcher: str
    results: tuple[CheckResult, ...]

    @property
    def failures(self) -> list[CheckResult]:
        return [result for result in self.results if not result.passed]

    @property
    def passed(self) -> bool:
        return not self.failures

    def __str__(self) -> str:
        total = sum(r.seconds for r in self.results)
        if self.passed:
            return f"{self.searcher} passed all {len(self.results)} contract checks ({total:.1f} s)"
        lines = [f"{self.searcher} failed {len(self.failures)} of {len(self.results)} contract checks:"]
        for result in self.failures:
            lines.append(f"- {result.check} {result.message}")
            lines.append(f"  likely cause: {result.hint}")
        passed = [r.check for r in self.results if r.passed]
        lines.append(f"passed: {', '.join(passed) if passed else 'none'} ({total:.1f} s in all)")
        if any(r.check == "check_same_seed_same_trajectory" for r in self.failures):
            lines.append("note: one seed gave two different runs, so every check that compares two runs fails "
                         "with it; fix that one first")
        return "\n".join(lines)


class ContractError(AssertionError):
    """``check_searcher``'s failure: the message lists every failed check; ``report`` holds them all."""

    def __init__(self, report: ContractReport) -> None:
        super().__init__(str(report))
        self.report = report


def _where(exc: BaseException) -> str:
    """' (at file.py:12 in _tell)': where an exception was raised, for a one-line message."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    frame = frames[-1]
    return f" (at {Path(frame.filename).name}:{frame.lineno} in {frame.name})"


def _run_check(check: Callable[..., None], cls: type[Searcher], hparams: dict[str, Any]) -> CheckResult:
    start = time.perf_counter()
    name = check.__name__
    try:
        check(cls, **hparams)
    except AssertionError as exc:
        message = str(exc).removeprefix(f"{cls.__name__}: ")
        return CheckResult(name, False, time.perf_counter() - start, f"failed: {message}", HINTS.get(name, ""))
    except Exception as exc:  # noqa: BLE001 - a crash is a broken contract too, reported like one
        message = f"crashed: {exc!r}{_where(exc)}"
        return CheckResult(name, False, time.perf_counter() - start, message, HINTS.get(name, ""))
    return CheckResult(name, True, time.perf_counter() - start)


def check_searcher(cls: type[Searcher], **hparams: Any) -> ContractReport:
    """Run every contract check on ``cls`` built with ``hparams``, even after a failure.

    Returns the report when all pass; otherwise raises ``ContractError`` (an AssertionError)
    whose message lists each failed check, its message and the likely cause.
    """
    if not (isinstance(cls, type) and issubclass(cls, Searcher)):
        raise AssertionError(f"{cls!r} is not a subclass of harness.search.searcher.Searcher")
    report = ContractReport(cls.__name__, tuple(_run_check(check, cls, hparams) for check in CHECKS))
    if not report.passed:
        raise ContractError(report)
    return report
