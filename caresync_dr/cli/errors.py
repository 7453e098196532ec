"""Exit codes and the one error hierarchy every operator command raises.

Exit codes are a contract: each command lists the ones it uses at the end of its ``--help``
(:func:`caresync_dr.cli.parser.exit_code_help`). An error carries its code, so the code that
finds a problem decides what it means, and :func:`caresync_dr.cli.run_command` turns it into one
line and that exit code. The failover's and the backup's errors are subclasses of these.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What an operator command's exit status means."""

    OK = 0
    FAILED = 1        # failed part-way; state is consistent and the run can be resumed/retried
    USAGE = 2         # bad arguments, unknown stack, malformed settings or inventory
    REFUSED = 3       # a preflight check refused; nothing was changed
    LOCKED = 4        # another run holds the lock; nothing was changed
    NOT_READY = 5     # --check: the operation would not succeed now


# The few words each code adds to the error line ("... (exit 2: usage)").
CODE_NAMES: dict[int, str] = {ExitCode.OK: "ok", ExitCode.FAILED: "failed", ExitCode.USAGE: "usage",
              ExitCode.REFUSED: "refused", ExitCode.LOCKED: "locked",
              ExitCode.NOT_READY: "not ready"}


class CommandError(Exception):
    """Base class: a one-sentence message for the operator and the exit code it means.

    ``exit_code`` is the class's default; pass ``exit_code=`` where one command gives the same
    problem another meaning (a corrupt backup fails a restore test but refuses a restore)."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str = "", *, exit_code: ExitCode | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(CommandError):
    """Bad arguments, unknown stack, malformed settings or inventory. Nothing was changed."""

    exit_code = ExitCode.USAGE


class RefusedError(CommandError):
    """A preflight check, the environment or the operator refused. Nothing was changed."""

    exit_code = ExitCode.REFUSED


class LockedError(CommandError):
    """Another run holds the lock. Nothing was changed."""

    exit_code = ExitCode.LOCKED


class NotReadyError(CommandError):
    """``--check``: the operation would not succeed now."""

    exit_code = ExitCode.NOT_READY


class FailedError(CommandError):
    """Failed part-way; the state is consistent and the report says what was done."""

    exit_code = ExitCode.FAILED
