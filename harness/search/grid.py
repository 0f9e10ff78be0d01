"""Run a grid of (method, seed) searches, in a process pool when asked, yielding runs as they finish.

Each run depends only on (method, hyper-parameters, seed, benchmark, budget), never on
which worker ran it or in which order, so any ``workers`` gives identical trajectories.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from harness.interrupts import forking_workers, worker_ignores_stop_signals
from harness.search.benchmark_specs import resolve_benchmark
from harness.search.run import RunRecord, run_search
from harness.search.searcher import make_searcher, takes_budget


@dataclass(frozen=True)
class RunSpec:
    """One run. ``method`` is what resolves the searcher (a name, ``module:Class`` or
    ``file.py:Class``); ``label`` is how the run's record names it (default: ``method``).
    ``budget`` caps the queries (None: no cap), ``time_budget`` the simulated training time
    in seconds (``run_search``)."""

    method: str
    seed: int
    benchmark: str
    budget: int | None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    time_budget: float | None = None


def execute(spec: RunSpec) -> RunRecord:
    """Run one search in this process; a searcher that takes ``budget`` is given ``spec.budget``."""
    searcher = make_searcher(spec.method, spec.seed, spec.hyperparameters, budget=spec.budget)
    record = run_search(searcher, resolve_benchmark(spec.benchmark), spec.budget, label=spec.label or spec.method,
                        time_budget=spec.time_budget)
    if takes_budget(type(searcher)):  # logged with the hyper-parameters, unless the searcher reports it
        record.hyperparameters = {"budget": spec.budget, **record.hyperparameters}
    return record


def _init_worker() -> None:
    # Ctrl-C is the parent's to handle: it cancels what has not started and keeps what finished.
    # SIGTERM ends a worker quietly, whatever handler the parent had when it forked.
    worker_ignores_stop_signals()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def iter_grid(specs: list[RunSpec], workers: int = 1) -> Iterator[tuple[RunSpec, RunRecord]]:
    """Yield (spec, record) for every spec as runs complete; ``workers`` > 1 uses processes.

    Closing the generator early (e.g. on KeyboardInterrupt in the consumer) cancels the
    runs not yet started.
    """
    if workers <= 1 or len(specs) <= 1:
        for spec in specs:
            yield spec, execute(spec)
        return
    # Fork keeps the already-loaded table; workers run single-threaded torch.
    context = multiprocessing.get_context("fork")
    # Warm the benchmark cache in the parent so forked workers inherit it.
    for name in {s.benchmark for s in specs}:
        resolve_benchmark(name)
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker)
    futures: dict[Future, RunSpec] = {}
    try:
        with forking_workers():  # the first submit forks every worker
            for spec in specs:
                futures[executor.submit(execute, spec)] = spec
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: (futures[f].method, futures[f].seed)):
                yield futures[future], future.result()
    finally:
        in_flight = [future for future in futures if not future.done()]
        for future in futures:
            future.cancel()
        if in_flight:  # stopped early (Ctrl-C): runs still going are abandoned, not waited for
            for process in list((getattr(executor, "_processes", None) or {}).values()):
                process.terminate()
        executor.shutdown(wait=True, cancel_futures=True)
