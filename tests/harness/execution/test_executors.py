"""Every executor gives the same results; a worker killed mid-task is replaced and its task run again."""

from __future__ import annotations

import functools
import os
import signal
import time
from pathlib import Path

import pytest

from harness.errors import UserError
from harness.execution.executors import ExecutionSettings, map_unordered

ray = pytest.importorskip("ray")


def square_plus(context, item):
    return item * item + (context or 0)


def offset() -> int:
    return 1000


def die_once(marks: str, context, item):
    """On its first attempt at item 2, record the worker's pid and wait to be killed; then answer."""
    mark = Path(marks) / f"{item}.pid"
    if item == 2 and not mark.exists():
        mark.write_text(str(os.getpid()))
        time.sleep(600)
    return item * 10


def by_index(pairs):
    return [result for _, result in sorted(pairs)]


@pytest.mark.parametrize("settings", [ExecutionSettings(), ExecutionSettings(workers=2),
                                      ExecutionSettings(workers=3)], ids=["here", "pool2", "pool3"])
def test_local_executors_agree(settings) -> None:
    items = list(range(9))
    assert by_index(map_unordered(square_plus, items, settings, offset)) == [i * i + 1000 for i in items]


def test_ray_agrees_with_local(ray_address) -> None:
    items = list(range(9))
    expected = by_index(map_unordered(square_plus, items, ExecutionSettings(), offset))
    assert by_index(map_unordered(square_plus, items, ExecutionSettings("ray", workers=2), offset)) == expected


def _kill_when_marked(marks: Path, pairs) -> list:
    """Consume results; kill the worker as soon as it marks the task it is stuck on."""
    results = []
    iterator = iter(pairs)
    deadline = time.monotonic() + 120
    import threading

    def killer():
        while time.monotonic() < deadline:
            mark = marks / "2.pid"
            if mark.exists() and mark.read_text():
                os.kill(int(mark.read_text()), signal.SIGKILL)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    results.extend(iterator)
    thread.join()
    return results


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_killed_worker_is_replaced_and_its_task_run_again(tmp_path, executor, request) -> None:
    if executor == "ray":
        request.getfixturevalue("ray_address")
    task = functools.partial(die_once, str(tmp_path))
    results = _kill_when_marked(tmp_path, map_unordered(task, list(range(5)), ExecutionSettings(executor, workers=2)))
    assert sorted(results) == [(i, i * 10) for i in range(5)]  # all of them, each once


def test_bad_settings_are_one_line_errors() -> None:
    with pytest.raises(UserError, match="unknown executor 'dask'"):
        ExecutionSettings("dask")
    with pytest.raises(UserError, match="--ray-address needs --executor ray"):
        ExecutionSettings(address="127.0.0.1:6379")
