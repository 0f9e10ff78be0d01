"""The command line: argument parsing (``parser``), what each command does (``commands``) and the
entry point (``main``). It only parses and prints; the work is done by ``harness.experiments``,
and no other part of the package imports this one.
"""

from harness.cli.main import main
from harness.cli.parser import build_parser

__all__ = ["build_parser", "main"]
