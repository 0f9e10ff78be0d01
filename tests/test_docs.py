"""The documentation cannot drift from the code: every command line it shows parses with the real
argument parser, every relative link resolves, and the README stays a page a newcomer reads."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import build_parser
from harness.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: What may stand before the command on a documented line.
PREFIXES = ("$ ", ".venv/bin/", "/usr/bin/time -v ")
README_LIMIT_BYTES = 12_000


def code_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every line of fenced or indented code, backslash continuations joined."""
    found: list[tuple[int, str]] = []
    in_fence, previous_blank_or_code, pending = False, True, None
    for number, raw in enumerate(text.split("\n"), 1):
        if raw.lstrip().startswith("```"):
            in_fence, previous_blank_or_code = not in_fence, False
            continue
        is_code = in_fence or (raw.startswith("    ") and previous_blank_or_code and bool(raw.strip()))
        if not is_code:
            previous_blank_or_code = not raw.strip()
            continue
        line = raw.strip()
        pending = (pending[0], f"{pending[1]} {line}") if pending else (number, line)
        if pending[1].endswith("\\"):
            pending = (pending[0], pending[1][:-1].rstrip())
        else:
            found.append(pending)
            pending = None
        previous_blank_or_code = True
    return found


def inline_spans(text: str) -> list[tuple[int, str]]:
    """(line number, text) of every single-backtick span outside code blocks."""
    without_fences = re.sub(r"```.*?```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return [(number, match.group(1)) for number, line in enumerate(without_fences.split("\n"), 1)
            if not line.startswith("    ") for match in re.finditer(r"(?<!`)`([^`]+)`(?!`)", line)]


def strip_prefixes(line: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in PREFIXES:
            if line.startswith(prefix):
                line, changed = line[len(prefix):], True
    return line


def documented_commands() -> list[tuple[str, str]]:
    """(where, command line) of every ``nas-harness ...`` invocation shown in README.md and docs/."""
    commands = []
    for document in DOCUMENTS:
        text = document.read_text()
        where = document.relative_to(ROOT)
        for number, line in code_lines(text):
            line = strip_prefixes(line)
            if line.startswith("nas-harness") and not line.startswith("nas-harness:"):
                commands.append((f"{where}:{number}", line))
        for number, span in inline_spans(text):
            span = strip_prefixes(span).replace("\\|", "|")
            if span.startswith("nas-harness ") and not span.startswith("nas-harness:"):
                commands.append((f"{where}:{number}", span))
    return commands


COMMANDS = documented_commands()
PARSER = build_parser()
SUBCOMMANDS = set(next(a for a in PARSER._actions if a.dest == "command").choices)


def test_the_documents_show_commands() -> None:
    shown = {shlex.split(line, comments=True)[1] for _, line in COMMANDS}
    assert shown == SUBCOMMANDS, f"commands never shown: {SUBCOMMANDS - shown}"


@pytest.mark.parametrize(("where", "line"), COMMANDS, ids=[where for where, _ in COMMANDS])
def test_documented_command_parses(where: str, line: str) -> None:
    words = shlex.split(line, comments=True)
    assert words[0] == "nas-harness"
    if len(words) == 2 and words[1] in SUBCOMMANDS:
        return  # a reference to a command by name, e.g. `nas-harness rank`
    try:
        PARSER.parse_args(words[1:])
    except (UserError, SystemExit) as exc:
        pytest.fail(f"{where}: {line!r} does not parse: {exc}")


def test_a_broken_command_line_is_caught() -> None:
    text = "Run\n\n    nas-harness train --method spos --epochs E --out runs/x\n\nand `nas-harness rank --nope`.\n"
    lines = [strip_prefixes(line) for _, line in code_lines(text)] + [span for _, span in inline_spans(text)]
    for line in lines:
        with pytest.raises(UserError):
            PARSER.parse_args(shlex.split(line, comments=True)[1:])


def test_relative_links_resolve() -> None:
    broken = []
    for document in DOCUMENTS:
        for target in re.findall(r"\]\(([^)\s]+)\)", document.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (document.parent / target.partition("#")[0]).resolve()
            if not path.exists():
                broken.append(f"{document.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_readme_is_short() -> None:
    assert (ROOT / "README.md").stat().st_size < README_LIMIT_BYTES


def python_blocks() -> list[tuple[str, str]]:
    """(where, code) of every ```python block in README.md and docs/."""
    blocks = []
    for document in DOCUMENTS:
        for match in re.finditer(r"```python\n(.*?)```", document.read_text(), flags=re.S):
            line = document.read_text()[:match.start()].count("\n") + 1
            blocks.append((f"{document.relative_to(ROOT)}:{line}", match.group(1)))
    return blocks


@pytest.mark.parametrize(("where", "code"), python_blocks(), ids=[where for where, _ in python_blocks()])
def test_documented_python_runs(where: str, code: str, tmp_path: Path) -> None:
    """Each block runs as shown, in a fresh process and an empty folder (what it writes goes there)."""
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, f"{where} failed:\n{done.stderr[-2000:]}"
