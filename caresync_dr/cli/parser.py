"""The base parser every operator command starts from.

It adds ``--report PATH`` (JSON) and ``-v/--verbose``, ends ``--help`` with the command's exit
codes, and turns argparse's own refusals (an unknown flag, a bad choice, a missing value) into
a :class:`UsageError`, so they too are one line and exit 2, with the report written.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from caresync_dr.cli.errors import ExitCode, UsageError
from caresync_dr.operator_permissions import role_of

ExitCodes = Sequence[tuple[ExitCode | int, str]]

# The ways out every command has, whatever it does (caresync_dr.cli.main): listed in its --help
# when the command does not list the code itself.
BASE_ENDINGS: dict[int, str] = {
    ExitCode.FAILED: "an unexpected error (a bug: its traceback is in the report and shown\n"
                     "with -v), or the output could not be written (a closed pipe); the\n"
                     "message says which",
    ExitCode.REFUSED: "interrupted (Ctrl-C, SIGTERM, SIGHUP) before any change; nothing was\n"
                      "changed",
}


def with_base_endings(codes: ExitCodes) -> list[tuple[int, str]]:
    """``codes`` plus the :data:`BASE_ENDINGS` it does not list, in code order."""
    listed = {int(code): text for code, text in codes}
    return sorted({**{int(c): t for c, t in BASE_ENDINGS.items()}, **listed}.items())


def exit_code_help(codes: ExitCodes) -> str:
    """The ``exit codes:`` block: one entry per code, continuation lines indented under the
    text (``text`` may hold newlines)."""
    lines = ["exit codes:"]
    for code, text in codes:
        first, *rest = text.strip().splitlines()
        lines.append(f"  {int(code)}  {first}")
        lines += [f"     {line.strip()}" for line in rest]
    return "\n".join(lines) + "\n"


class CommandParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors raise :class:`UsageError` instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see --help)")


def _role_note(prog: str) -> str:
    """``aws role: ...`` for a command placed in caresync_dr.operator_permissions.ROLES."""
    try:
        role = role_of(prog.removesuffix(".py").removesuffix(".sh"))
    except KeyError:
        return ""
    if role is None:
        return ""
    return (f"aws role: runs as the IAM role {role.name} (assume it with MFA; "
            "docs/operator-roles.md)\n\n")


def command_parser(prog: str, description: str, exit_codes: ExitCodes, *,
                   notes: str = "", report_help: str | None = None) -> CommandParser:
    """A parser with ``--report`` and ``-v``; ``--help`` shows ``notes`` (environment, outputs),
    the IAM role the command runs as (when it calls AWS) and then, last, ``exit_codes`` with the
    :data:`BASE_ENDINGS` it leaves out (an interruption or a closed pipe ends every command).
    Add the command's own options to what it returns."""
    epilog = ((notes.rstrip("\n") + "\n\n" if notes.strip() else "") + _role_note(prog)
              + exit_code_help(with_base_endings(exit_codes)))
    parser = CommandParser(prog=prog, description=description, epilog=epilog,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", type=Path, metavar="PATH",
                        help=report_help or "write a JSON report of the run to PATH (on every "
                        "exit; checked before any work)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logging, and a traceback for unexpected errors")
    return parser
