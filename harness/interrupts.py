"""SIGINT and SIGTERM as a request to stop, however the process was started.

A job started in the background by a non-interactive shell (``nohup cmd &`` in a script)
inherits SIGINT as *ignored*, and Python then installs no handler of its own: ``kill -INT``
is silently dropped. These helpers install handlers explicitly, so both signals always
reach the program (the long-running commands, and the training loop's stop flag).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_signals_to(handler: Callable[[int, Any], Any]) -> Iterator[bool]:
    """Route SIGINT and SIGTERM to ``handler(signum, frame)`` inside the block, then restore the previous handlers.

    Yields False, installing nothing, outside the main thread (where Python allows no handlers).
    """
    previous = {}
    try:
        for sig in STOP_SIGNALS:
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread
        pass
    try:
        yield bool(previous)
    finally:
        for sig, old in previous.items():
            if old is not None:  # None: a handler not installed from Python, which cannot be restored
                signal.signal(sig, old)


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def interruptible(note: str = "") -> contextlib.AbstractContextManager[bool]:
    """Inside the block SIGINT and SIGTERM raise ``KeyboardInterrupt("stopped by SIGxxx" + note)``.

    The CLI prints that as one line and exits with status 130.
    """

    def raise_interrupt(signum: int, frame: Any) -> None:  # noqa: ARG001
        raise KeyboardInterrupt(f"stopped by {signal_name(signum)}{note}")

    return stop_signals_to(raise_interrupt)


@contextlib.contextmanager
def forking_workers() -> Iterator[None]:
    """Hold SIGINT and SIGTERM pending in this thread while worker processes are forked in the block.

    A forked worker inherits this process's Python handlers (``interruptible``'s raise
    KeyboardInterrupt), so a signal reaching it before its initializer replaced them, such as
    the SIGTERM a pool sends its idle workers when it closes, printed a worker's traceback.
    Forked inside this block, a worker holds them pending until ``worker_ignores_stop_signals``
    runs; threads started here (a pool's helpers, which fork replacement workers) keep them
    blocked. A signal that arrives meanwhile reaches this process when the block ends.
    """
    if not hasattr(signal, "pthread_sigmask"):  # no fork there either
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def worker_ignores_stop_signals() -> None:
    """A pool initializer: SIGINT ignored and SIGTERM the default (end quietly), then both unblocked.

    The parent alone decides when its workers stop: a signal raises KeyboardInterrupt there,
    and the pool it then terminates ends them with SIGTERM, without a traceback.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
