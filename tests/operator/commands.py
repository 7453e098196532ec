"""Every operator command, one line each, and the hostile inputs derived for it.

A row names the command (its console entry point in ``pyproject.toml``, which says where its
``main(argv) -> int`` is) and the arguments that bring it to real work: ``base`` (what a valid
run needs), ``aws`` (a run that must call AWS first) and ``database`` (a run that must connect
to ``$DATABASE_URL``). Everything else is derived: the
documented exit codes from the command's own ``--help`` (never copied here), the numeric and
URL options from its parser, the ``--stack`` and ``--report`` cases from its options. A new
command is covered by adding its row to :data:`COMMANDS` (a test fails until every entry point
has one).

Placeholders in arguments: ``{work}`` is a directory that must stay empty (a refused run
changes nothing), ``{key}`` a valid backup key file, ``{backup}`` a tiny seed-style
``.sql.gz`` backup.
"""

from __future__ import annotations

import argparse
import importlib
import io
import math
import re
import tomllib
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parents[2]

# A syntactically valid database nobody listens on: the commands get past their argument
# checks and fail where they connect.
NOWHERE_DB = "postgresql://caresync@127.0.0.1:9/caresync?connect_timeout=2"
# Port 9 (discard) on loopback: nothing listens, connections are refused at once.
UNREACHABLE_ENDPOINT = "http://127.0.0.1:9"


def entry_points() -> dict[str, str]:
    """``[project.scripts]``: command name -> ``module:function``."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    scripts: dict[str, str] = project["scripts"]
    return scripts


def command_name(entry_point: str) -> str:
    """What the command calls itself (``run_command``'s ``command=``, the key of its role in
    caresync_dr/operator_permissions.py): ``caresync-rotate-db-credentials`` ->
    ``rotate_db_credentials``."""
    return entry_point.removeprefix("caresync-").replace("-", "_")


def load_main(target: str) -> Callable[[list[str]], int]:
    module, _, function = target.partition(":")
    main: Callable[[list[str]], int] = getattr(importlib.import_module(module), function)
    return main


@dataclass(frozen=True)
class Command:
    """One operator command and the arguments that take it to AWS or to the database."""

    name: str                                    # the console entry point, e.g. caresync-backup
    base: tuple[str, ...] = ()
    aws: tuple[str, ...] | None = None
    database: tuple[str, ...] | None = None
    env: dict[str, str] = field(default_factory=dict)
    target: str = ""                             # module:function; default: pyproject's
    # Directory options a ``base`` run never reads (it stops earlier, or needs another flag).
    unread_directories: tuple[str, ...] = ()

    def main(self) -> Callable[[list[str]], int]:
        return load_main(self.target or entry_points()[self.name])


COMMANDS: tuple[Command, ...] = (
    Command("caresync-backup", base=("--local-dir", "{work}/backups", "--key-file", "{key}"),
            aws=("--local-dir", "{work}/backups", "--kms-key-id", "alias/caresync-primary",
                 "--region", "us-east-1", "--stack", "prod"),
            database=("--local-dir", "{work}/backups", "--key-file", "{key}"),
            env={"DATABASE_URL": NOWHERE_DB}),
    Command("caresync-rollback", base=("{backup}", "--key-file", "{key}"),
            database=("{backup}", "--key-file", "{key}"), env={"DATABASE_URL": NOWHERE_DB}),
    Command("caresync-restore-check", base=("--local-dir", "{work}", "--key-file", "{key}"),
            aws=("--skip-local", "--rds-instance", "caresync-primary-db", "--site", "primary",
                 "--db-security-group-id", "sg-0123456789abcdef0", "--region", "us-east-1",
                 "--wait-seconds", "1", "--poll-seconds", "1"),
            database=("--local-dir", "{work}", "--key-file", "{key}"),
            env={"DATABASE_URL": NOWHERE_DB}),
    Command("caresync-health-check", base=("--skip-app",),
            database=("--skip-app",), env={"DATABASE_URL": NOWHERE_DB}),
    Command("caresync-failover", base=("--check",), aws=("--check",)),
    Command("caresync-failback", base=("--check",), aws=("--check",)),
    Command("caresync-objectives", base=("--stack", "prod")),
    Command("caresync-preview", base=("--stack", "prod"),
            unread_directories=("--snapshot-dir",)),   # read with --update / --diff only
    Command("caresync-drill"),
    Command("caresync-security-scan", base=("--checkov", "{work}/no-checkov"),
            unread_directories=("--plans-dir", "--project-dir")),  # after Checkov is found
    Command("caresync-breach", base=("--check", "--db-role", "caresync_app"),
            aws=("--check", "--db-role", "caresync_app")),
    Command("caresync-rotate-db-credentials", base=("--check",), aws=("--check",)),
    Command("caresync-db-roles", base=("--dry-run",), aws=("--dry-run",)),
    Command("caresync-app", base=("status", "--stack", "prod"),
            aws=("status", "--stack", "prod")),
    Command("caresync-pitr", base=("--restore-time", "2026-11-29T00:00:00Z", "--dry-run"),
            aws=("--restore-time", "2026-11-29T00:00:00Z", "--dry-run")),
    Command("caresync-notify", base=("--test",), aws=("--test",)),
    Command("caresync-switchover", base=("--to", "standby", "--check"),
            aws=("--to", "standby", "--check")),
)


class _ParserCaughtError(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__("parser caught")
        self.parser = parser


def parser_of(command: Command) -> argparse.ArgumentParser:
    """The parser ``main`` builds, caught before it parses anything."""
    original = argparse.ArgumentParser.parse_known_args

    def capture(self: argparse.ArgumentParser, *_: Any, **__: Any) -> NoReturn:
        raise _ParserCaughtError(self)

    argparse.ArgumentParser.parse_known_args = capture  # type: ignore[method-assign]
    try:
        command.main()([])
    except _ParserCaughtError as caught:
        return caught.parser
    finally:
        argparse.ArgumentParser.parse_known_args = original  # type: ignore[method-assign]
    raise AssertionError(f"{command.name}: main() never parsed its arguments")


def help_text(command: Command) -> str:
    """What ``COMMAND --help`` prints."""
    return _help(command.target or entry_points()[command.name])


@cache
def _help(target: str) -> str:
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        try:
            load_main(target)(["--help"])
        except SystemExit as exit_:
            assert exit_.code in (0, None), f"{target} --help exited {exit_.code}"
    return out.getvalue()


def documented_codes(command: Command) -> dict[int, str]:
    """The exit codes ``--help`` lists under "exit codes:", each with its first line."""
    text = help_text(command)
    match = re.search(r"^exit codes:\s*\n((?:[ \t]+.*\n|\n(?=[ \t]))+)", text,
                      re.IGNORECASE | re.MULTILINE)
    if match is None:
        return {}
    return {int(code): meaning for code, meaning in
            re.findall(r"^[ \t]{1,4}(\d)[ \t]+(\S.*)$", match.group(1), re.MULTILINE)}


def _number_parser(action: argparse.Action) -> bool:
    """An option whose value is a number (int, float, or a number-checking function)."""
    if not action.option_strings or action.nargs == 0 or action.type is None:
        return False
    convert: Any = action.type
    try:
        value = convert("1")
    except (TypeError, ValueError, argparse.ArgumentTypeError):
        return False
    return isinstance(value, int | float) and not isinstance(value, bool)


def numeric_options(parser: argparse.ArgumentParser) -> list[str]:
    return [a.option_strings[-1] for a in parser._actions if _number_parser(a)]


def url_options(parser: argparse.ArgumentParser) -> list[str]:
    return [a.option_strings[-1] for a in parser._actions
            if a.option_strings and "url" in a.dest and a.nargs != 0]


def time_options(parser: argparse.ArgumentParser) -> list[str]:
    """Options that take a point in time (metavar TIME)."""
    return [a.option_strings[-1] for a in parser._actions
            if a.option_strings and a.metavar == "TIME"]


def directory_options(parser: argparse.ArgumentParser) -> list[str]:
    """Options that name a directory (``--local-dir``, ``--work-dir``, ``--project-dir``)."""
    return [a.option_strings[-1] for a in parser._actions
            if a.option_strings and a.dest.endswith("_dir") and a.nargs != 0]


def output_file_options(parser: argparse.ArgumentParser) -> list[str]:
    """Options naming a file the command writes: ``--report``, ``--output``. (``--journal-file``
    is written by real runs only, not by the ``--check`` of a ``base`` run: the failover's
    catalogue, tests/failover/hostile_inputs.py, tries it.)"""
    return [a.option_strings[-1] for a in parser._actions
            if a.option_strings and a.dest in ("report", "output")]


def has_option(parser: argparse.ArgumentParser, option: str) -> bool:
    return any(option in a.option_strings for a in parser._actions)


BAD_NUMBERS = ("-1", "nan", "inf", "1e999", "ten")
# A regular file and a path under /proc where a directory is wanted.
BAD_DIRECTORIES = ("{file}", "/proc/caresync/dir")
# Where a file is to be written: its parent is a file, under /proc, a directory, a FIFO, a
# symbolic link to /dev/full (a device: replacing it, as with /dev/stdout, breaks the machine),
# a backup or the backup key (a report written there destroyed it).
BAD_OUTPUT_FILES = {"parent-is-a-file": "{file}/out.json", "under-proc": "/proc/caresync/out.json",
                    "is-a-directory": "{reportdir}", "is-a-fifo": "{fifo}",
                    "links-to-dev-full": "{devfull}", "is-the-backup": "{backup}",
                    "is-the-key-file": "{key}"}
# Valid ISO 8601 text whose UTC form is outside datetime's years 1-9999, no zone, the future.
BAD_TIMES = ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-11-29T00:00:00",
             "9999-01-01T00:00:00Z", "yesterday")
BAD_URLS = ("garbage", "http://", "ftp://example.org/x", "postgresql://u@h:99999/db")


def finite(value: str) -> bool:
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False
