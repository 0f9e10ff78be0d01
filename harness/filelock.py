"""An advisory, exclusive lock on a file, for work that two processes must not do at once."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if needed) where the platform and file system allow one.

    Where they do not (no ``fcntl``, a read-only folder, a file system without locks), the
    body runs unlocked: callers use it to avoid duplicated or racing work, never for safety
    that must hold everywhere.
    """
    try:
        import fcntl

        handle = open(path, "a")
    except (ImportError, OSError):
        yield
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:
            pass
        yield
