"""Run independent tasks here, in local processes, or on Ray, and yield their results as they finish.

Three ways, one contract (``map_unordered``):

- ``local`` with one worker: in this process, in item order.
- ``local`` with several: a pool of forked processes (each single-threaded by default). The
  workers leave SIGINT and SIGTERM to this process; a worker that dies mid-task is replaced
  and the tasks it may have been running are run again, up to ``retries`` times.
- ``ray``: one Ray actor per worker, on the cluster at ``address`` (or ``$RAY_ADDRESS``), or
  on a Ray instance started here with ``workers`` CPUs and shut down at the end. Ray restarts
  an actor whose process died and retries its task (``max_restarts``, ``max_task_retries``);
  with ``gpus_per_task`` each actor holds that share of a GPU.

A task is ``task(context, item)``: ``context`` is what ``context_factory()`` built once in
that worker (a loaded checkpoint and its images, say), so a worker pays for it once, not
per item. ``task`` and ``context_factory`` must be picklable (module-level functions or
``functools.partial`` of them), and so must items and results.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from harness.errors import RunFailed, UserError
from harness.interrupts import forking_workers, worker_ignores_stop_signals

T = TypeVar("T")
R = TypeVar("R")

EXECUTORS = ("local", "ray")
RAY_ADDRESS_ENV = "RAY_ADDRESS"


@dataclass(frozen=True)
class ExecutionSettings:
    """Where tasks run and with what.

    ``workers``: local processes, or Ray actors. ``address``: a running Ray cluster
    (``ray start --head`` prints it); None reads ``$RAY_ADDRESS`` and, without it, starts a
    local Ray instance with ``workers`` CPUs. ``threads``: torch threads per worker.
    ``retries``: how often a task whose worker died is run again.
    """

    executor: str = "local"
    workers: int = 1
    address: str | None = None
    threads: int = 1
    retries: int = 3
    gpus_per_task: float = 0.0

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise UserError(f"unknown executor {self.executor!r}; accepted: {', '.join(EXECUTORS)}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise UserError(f"workers must be a positive integer, got {self.workers!r}")
        if self.threads < 1 or self.retries < 0 or self.gpus_per_task < 0:
            raise UserError("threads must be positive, retries and gpus_per_task non-negative")
        if self.address is not None and self.executor != "ray":
            raise UserError("--ray-address needs --executor ray")

    def describe(self) -> str:
        if self.executor == "local":
            return "this process" if self.workers == 1 else f"{self.workers} local processes"
        where = self.address or os.environ.get(RAY_ADDRESS_ENV) or f"a local Ray instance with {self.workers} CPUs"
        return f"{self.workers} Ray workers on {where}"


def check_ray_available() -> None:
    """A one-line UserError when Ray is not installed (before any work starts)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'nas-harness[ray]'") from None


def map_unordered(task: Callable[[Any, T], R], items: Sequence[T], settings: ExecutionSettings | None = None,
                  context_factory: Callable[[], Any] | None = None) -> Iterator[tuple[int, R]]:
    """Yield ``(index, task(context, items[index]))`` for every item, as each finishes.

    Closing the iterator early (Ctrl-C in the consumer) stops the workers at once: tasks
    still running are abandoned, not waited for.
    """
    settings = settings or ExecutionSettings()
    if not items:
        return iter(())
    if settings.executor == "ray":
        return _ray(task, items, settings, context_factory)
    if settings.workers == 1 or len(items) == 1:
        return _here(task, items, context_factory)
    return _pool(task, items, settings, context_factory)


# -- this process ------------------------------------------------------------------------------------------
def _here(task, items, context_factory) -> Iterator[tuple[int, Any]]:
    context = context_factory() if context_factory is not None else None
    for index, item in enumerate(items):
        yield index, task(context, item)


# -- a local process pool ----------------------------------------------------------------------------------
_WORKER_CONTEXT: Any = None


def _start_worker(context_factory, threads: int) -> None:
    global _WORKER_CONTEXT
    worker_ignores_stop_signals()  # Ctrl-C is the parent's: it stops the pool and keeps what finished
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    _WORKER_CONTEXT = context_factory() if context_factory is not None else None


def _in_worker(task, item):
    return task(_WORKER_CONTEXT, item)


def _pool(task, items, settings: ExecutionSettings, context_factory) -> Iterator[tuple[int, Any]]:
    workers = min(settings.workers, len(items))
    attempts = [0] * len(items)
    remaining = set(range(len(items)))
    while remaining:
        executor = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"),
                                       initializer=_start_worker, initargs=(context_factory, settings.threads))
        futures: dict[Future, int] = {}
        broken = False
        try:
            with forking_workers():  # the first submits fork the workers
                for index in sorted(remaining):
                    futures[executor.submit(_in_worker, task, items[index])] = index
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=futures.get):
                    index = futures[future]
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    remaining.discard(index)
                    yield index, result
                if broken:
                    break
        finally:
            in_flight = [future for future in futures if not future.done()]
            for future in futures:
                future.cancel()
            if in_flight or broken:  # stopped early or a worker died: the rest are not waited for
                for process in list((getattr(executor, "_processes", None) or {}).values()):
                    process.terminate()
            executor.shutdown(wait=True, cancel_futures=True)
        if broken:  # a worker died: run what did not finish again, in a new pool
            for index in remaining:
                attempts[index] += 1
            worst = max(remaining, key=attempts.__getitem__)
            if attempts[worst] > settings.retries:
                raise RunFailed(f"a worker process died {attempts[worst]} times while running task {worst} "
                                f"of {len(items)}; giving up")


# -- Ray ---------------------------------------------------------------------------------------------------
class _Worker:
    """A Ray actor: builds the context once, then runs tasks with it."""

    def __init__(self, context_factory, threads: int) -> None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        try:
            import torch

            torch.set_num_threads(threads)
        except ImportError:  # pragma: no cover - torch is a dependency
            pass
        self.context = context_factory() if context_factory is not None else None

    def run(self, task, item):
        return task(self.context, item)


def ray_init(settings: ExecutionSettings) -> bool:
    """Connect to the cluster the settings name, or start a local instance; True when started here."""
    check_ray_available()
    import ray

    if ray.is_initialized():
        return False
    address = settings.address or os.environ.get(RAY_ADDRESS_ENV) or None
    # Workers import what this process can (the working directory's modules, plug-ins on its path):
    # Ray starts them elsewhere, with the cluster's environment.
    path = os.pathsep.join(dict.fromkeys(entry for entry in [os.getcwd(), *sys.path] if entry))
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False,
                               "runtime_env": {"env_vars": {"PYTHONPATH": path}}}
    try:
        if address is None:
            ray.init(num_cpus=settings.workers * settings.threads, **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "a local instance"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot start Ray on {where}: {first}") from None
    return True


def _ray(task, items, settings: ExecutionSettings, context_factory) -> Iterator[tuple[int, Any]]:
    import ray

    started = ray_init(settings)
    actor_class = ray.remote(num_cpus=settings.threads, num_gpus=settings.gpus_per_task, max_restarts=-1,
                             max_task_retries=settings.retries)(_Worker)
    actors = [actor_class.remote(context_factory, settings.threads) for _ in range(min(settings.workers, len(items)))]
    queue = list(range(len(items)))
    running: dict[Any, tuple[int, Any]] = {}
    try:
        for actor in actors:
            if queue:
                index = queue.pop(0)
                running[actor.run.remote(task, items[index])] = (index, actor)
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            index, actor = running.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except ray.exceptions.RayTaskError as exc:  # the task itself raised: raise that error here
                cause = getattr(exc, "cause", None)
                raise (cause if isinstance(cause, BaseException) else exc.as_instanceof_cause()) from None
            except ray.exceptions.RayActorError as exc:
                raise RunFailed(f"a Ray worker died more than {settings.retries} times running task {index}: "
                                f"{str(exc).strip().splitlines()[0]}") from None
            if queue:
                next_index = queue.pop(0)
                running[actor.run.remote(task, items[next_index])] = (next_index, actor)
            yield index, result
    finally:
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()
