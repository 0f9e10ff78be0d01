"""Where results go, checked before any work starts, so a mistake costs a second and not a run.

A check creates nothing: it proves that the location can be created and written (a probe
file in the folder, or in its nearest existing parent, removed at once), so a refused
command leaves no trace. A location that is a file where a folder is wanted, cannot be
created, or cannot be written is a one-line ``UserError`` naming the option.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from harness.errors import UserError


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _probe(folder: Path) -> None:
    with tempfile.TemporaryFile(dir=folder, prefix=".write-check-"):
        pass


def check_output_dir(path: str | os.PathLike, option: str = "--out") -> Path:
    """Check that the folder ``path`` exists or can be created, and that files can be written in it."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"{option} {folder} is a file, not a folder; give a folder to write into")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{option} {folder} cannot be created: {existing} is a file")
    try:
        _probe(existing)
    except OSError as exc:
        raise UserError(f"{option} {folder} cannot be written: {_reason(exc)}") from None
    return folder


def check_output_file(path: str | os.PathLike, option: str) -> Path:
    """Check that the file ``path`` can be created (its folder too) or appended to."""
    file = Path(path)
    if file.is_dir():
        raise UserError(f"{option} {file} is a folder; give a file name")
    check_output_dir(file.parent, option=f"the folder of {option}")
    if file.exists():
        try:
            with open(file, "a"):
                pass
        except OSError as exc:
            raise UserError(f"{option} {file} cannot be written: {_reason(exc)}") from None
    return file
