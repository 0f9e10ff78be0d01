"""Exceptions for mistakes a user can make; the CLI prints them as one line and exits 2."""


class UserError(ValueError):
    """Bad input from the user: printed as a single line, exit code 2, no traceback."""


class ArchitectureError(UserError):
    """An architecture string or encoding that is not in the NB201 space."""


class UnknownNameError(UserError):
    """A method, benchmark or other registered name that does not exist."""


class DataFileError(UserError):
    """A benchmark or data file that is missing, unreadable or corrupt."""


class RunFailed(RuntimeError):
    """A run that could not go on (e.g. its loss diverged); printed as one line, exit code 1."""


class SearcherFailed(RunFailed):
    """A searcher's own code raised in the middle of a run: the message names the method, seed,
    query and where the error came from (exit code 1; the runs that finished are kept)."""
