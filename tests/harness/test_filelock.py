"""The advisory file lock serialises holders (used for the dataset cache and the MLflow store)."""

from __future__ import annotations

import threading
import time

from harness.filelock import locked


def test_a_second_holder_waits_for_the_first(tmp_path):
    path = tmp_path / "store.lock"
    events: list[str] = []
    entered = threading.Event()

    def second() -> None:
        entered.wait()
        with locked(path):
            events.append("second")

    thread = threading.Thread(target=second)
    thread.start()
    with locked(path):
        entered.set()
        time.sleep(0.3)
        events.append("first")
    thread.join(timeout=10)
    assert events == ["first", "second"]


def test_an_unusable_lock_path_runs_the_body_unlocked(tmp_path):
    ran = []
    with locked(tmp_path / "missing-folder" / "x.lock"):
        ran.append(True)
    assert ran == [True]
