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
