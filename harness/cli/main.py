"""``nas-harness``: parse the command line, run the command, turn mistakes into one line and an exit code."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from harness.cli.commands import EXIT_INTERRUPTED, HANDLERS
from harness.cli.parser import build_parser
from harness.errors import RunFailed, UserError

EXIT_USER_ERROR = 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; 0 on success, 2 for a user mistake, 1 for a failed run, 130 when interrupted."""
    try:
        args = build_parser().parse_args(argv)
        return HANDLERS[args.command](args)
    except UserError as exc:
        print(f"nas-harness: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except RunFailed as exc:
        print(f"nas-harness: failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        detail = f": {exc}" if str(exc) else ""
        print(f"nas-harness: interrupted{detail}", file=sys.stderr)
        return EXIT_INTERRUPTED
