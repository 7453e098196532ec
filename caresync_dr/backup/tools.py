"""PostgreSQL client tools and connection strings.

A connection string may hold the password. It never goes on a command line (``ps`` shows every
process's arguments to every local user): client tools get the string without it and the password
in ``PGPASSWORD`` (their environment is readable only by the same user and root). It never goes
into a message either: a string that does not parse is refused without being repeated.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from caresync_dr.backup.errors import BackupError, UsageError

SYSTEM_BIN = Path("/usr/lib/postgresql/15/bin")


def pg_tool(name: str, bin_dir: Path | None = None) -> str:
    """``bin_dir``, then ``PG_BIN``, then the PostgreSQL 15 install, then ``PATH``.

    pg_dump must be at least the server's major version; 15 matches CareSync's RDS engine.
    """
    for directory in (bin_dir, Path(os.environ["PG_BIN"]) if "PG_BIN" in os.environ else None,
                      SYSTEM_BIN):
        if directory is not None and (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: install the PostgreSQL 15 client "
                          "(Debian: apt-get install postgresql-client-15) or set PG_BIN")
    return found


def text(value: object) -> str:
    """A value read from the server as text. psycopg returns bytes for text columns when the
    database's encoding is SQL_ASCII (no encoding to decode with); names there are ASCII in
    practice, anything else is kept as surrogate escapes rather than lost."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="surrogateescape")
    return str(value)


def checked_conninfo(value: str, what: str = "DATABASE_URL") -> str:
    """``value`` if it is a connection string naming a database; else :class:`UsageError`
    whose message does not repeat the value (it may hold a password)."""
    try:
        params = conninfo_to_dict(value)
    except psycopg.ProgrammingError:
        raise UsageError(
            f"{what} is not a PostgreSQL connection string (expected postgresql://USER@HOST:PORT/"
            "DBNAME or 'host=... dbname=...'); its value is not shown because it may hold a "
            "password") from None
    if not params.get("dbname"):
        raise UsageError(f"{what} names no database (postgresql://USER@HOST:PORT/DBNAME)")
    return value


def client_command(conninfo: str) -> tuple[str, dict[str, str]]:
    """(connection string without the password, environment with ``PGPASSWORD``) for a client
    tool such as pg_dump, pg_restore or psql."""
    params = conninfo_to_dict(conninfo)
    password = params.pop("password", None)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    return make_conninfo("", **params), env


def redact(message: str, conninfo: str | None) -> str:
    """``message`` with the connection string's password (plain or URL-encoded) masked."""
    if not conninfo:
        return message
    try:
        password = conninfo_to_dict(conninfo).get("password")
    except psycopg.ProgrammingError:
        return message.replace(conninfo, "<connection string>") if conninfo else message
    if not password:
        return message
    for form in {str(password), urllib.parse.quote(str(password), safe="")}:
        message = message.replace(form, "***")
    return message


_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)  # resolved here: the child may do no lookups


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when this process dies, however it dies, so no
    orphaned pg_restore keeps loading (Linux prctl; elsewhere a no-op)."""
    prctl = getattr(_LIBC, "prctl", None)
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def start_tool(argv: Sequence[str], *, env: dict[str, str], stdin: Any = None,
               stdout: Any = subprocess.DEVNULL, stderr: IO[bytes] | int | None = None,
               pass_fds: Sequence[int] = ()) -> subprocess.Popen[bytes]:
    """Start a client tool that dies with this process."""
    return subprocess.Popen(list(argv), env=env, stdin=stdin, stdout=stdout, stderr=stderr,
                            pass_fds=tuple(pass_fds), preexec_fn=_die_with_parent)  # noqa: PLW1509


def run_tool(argv: Sequence[str], *, env: dict[str, str],
             pass_fds: Sequence[int] = ()) -> tuple[int, str]:
    """Run a client tool to the end: (exit code, its stderr)."""
    with tempfile.TemporaryFile() as errors:
        proc = start_tool(argv, env=env, stderr=errors, pass_fds=pass_fds)
        try:
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        errors.seek(0)
        return code, errors.read().decode(errors="replace").strip()


def with_dbname(conninfo: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    return make_conninfo(conninfo, dbname=dbname)


def dbname_of(conninfo: str) -> str:
    name = conninfo_to_dict(conninfo).get("dbname")
    if not name:
        raise BackupError("the database URL names no database (postgresql://user@host/DBNAME)")
    return str(name)
