"""One restore of a database at a time, and nothing left behind by one that was killed.

A restore takes a session advisory lock on the server, named after the live database, for its
whole run: a second restore or restore test of the same database is refused (exit 4), and a
killed run's lock goes with its session. Holding the lock, a run then clears what a killed run
may have left (issue 10 items 4 and 5), loudly:

- scratch databases ``<db>_restore_<ts>`` and ``<db>_restoretest_<ts>`` (dropped; any session
  still loading into one, such as an orphaned pg_restore, is terminated with it);
- a live database left refusing connections by an interrupted swap of an earlier version (this
  version's swap is one transaction and cannot leave that);
- private directories ``caresync-restore-*`` of earlier versions, which held the decrypted dump
  (plaintext patient data), unless a live process still uses one or it changed in the last ten
  minutes (another restore's, running); this version never writes one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from caresync_dr.backup.errors import BackupError
from caresync_dr.cli.errors import ExitCode

log = logging.getLogger(__name__)
LOCK_CLASS = 0x43535231  # "CSR1": the advisory lock's first key; the second is the db's hash
SCRATCH_LABELS = ("restore", "restoretest")
DOWNLOAD_PREFIX = "caresync-restore-test-"
STALE_AFTER_SECONDS = 600
OLD_PLAINTEXT_PREFIX = "caresync-restore-"


class RestoreLockedError(BackupError):
    """Another restore of the same database holds the lock (exit 4)."""

    exit_code = ExitCode.LOCKED


def scratch_pattern(live: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(live)}_({'|'.join(SCRATCH_LABELS)})_\d{{8}}_\d{{6}}$")


@contextlib.contextmanager
def restore_lock(maintenance_url: str, live: str) -> Iterator[psycopg.Connection[Any]]:
    """Hold the restore lock of ``live`` for the ``with`` block (a connection that stays open)."""
    conn = psycopg.connect(maintenance_url, autocommit=True,
                           application_name=f"caresync-restore of {live}"[:63])
    acquired = False
    try:
        for _ in range(20):  # a holder whose session just closed: its backend is still exiting
            row = conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))",
                               (LOCK_CLASS, live)).fetchone()
            if row and row[0]:
                break
            holder = conn.execute(
                "SELECT a.pid, a.application_name, a.backend_start, a.client_addr "
                "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.classid = %s::bigint::oid "
                "AND l.objid = (hashtext(%s)::bigint & 4294967295)::oid AND l.granted "
                "AND l.objsubid = 2", (LOCK_CLASS, live)).fetchone()
            if holder is None:
                time.sleep(0.1)
                continue
            raise RestoreLockedError(
                f"another restore or restore test of {live} is running: server pid "
                f"{holder[0]} ({holder[1]}), connected since {holder[2]:%Y-%m-%d %H:%M:%S %Z} "
                f"from {holder[3] or 'a local socket'}; nothing was changed, try again when it "
                "ends")
        else:
            raise RestoreLockedError(f"another restore or restore test of {live} is running: "
                                     "a session that just ended; nothing was changed, try "
                                     "again when it ends")
        acquired = True
        yield conn
    finally:
        if acquired:  # released now, not when the server notices the closed connection: a
            # restore run right after this one must not find it still held
            with contextlib.suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_CLASS, live))
        conn.close()


def interrupted_swaps(conn: psycopg.Connection[Any], live: str) -> list[str]:
    """Re-allow connections to databases an earlier version's killed swap left refusing them;
    only where the swap's own marks (its scratch or ``_old_`` database) are there too."""
    rows = conn.execute("SELECT datname, datallowconn FROM pg_database WHERE datname = %s "
                        "OR datname LIKE %s", (live, f"{live}\\_%")).fetchall()
    names = {str(name): bool(allowed) for name, allowed in rows}
    scratch = scratch_pattern(live)
    old = re.compile(rf"^{re.escape(live)}_old_\d{{8}}_\d{{6}}$")
    swapping = any(scratch.match(n) for n in names)
    fixed = []
    for name, allowed in names.items():
        if allowed or not ((name == live and swapping) or old.match(name)):
            continue
        conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(
            sql.Identifier(name)))
        fixed.append(f"database {name} was left refusing connections by an interrupted swap; "
                     "connections are allowed again")
    return fixed


def drop_scratch(conn: psycopg.Connection[Any], live: str,
                 keep: tuple[str, ...] = ()) -> list[str]:
    """Drop the scratch databases of killed restores of ``live`` (the lock proves they are)."""
    pattern = scratch_pattern(live)
    dropped = []
    for (name,) in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                (f"{live}\\_%",)).fetchall():
        if pattern.match(str(name)) and str(name) not in keep:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(str(name))))
            dropped.append(f"dropped the scratch database {name} of an interrupted restore")
    return dropped


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _in_use(path: Path) -> bool:
    """Whether a live process has a file under ``path`` open or works in it (Linux /proc)."""
    target = str(path.resolve())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            links = [proc / "cwd", *(proc / "fd").iterdir()]
        except OSError:
            continue
        for link in links:
            try:
                if os.readlink(link).startswith(target + os.sep) or os.readlink(link) == target:
                    return True
            except OSError:
                continue
    return False


def remove_stale_dirs(work_dir: Path | None = None,
                      quiet_seconds: float = STALE_AFTER_SECONDS) -> list[str]:
    """Private directories of killed runs: earlier versions' plaintext dumps, and restore test
    downloads (encrypted) whose process is gone. A directory another process may still be using
    is left alone: an earlier version's restore names no process, so its directory is removed
    only when no process holds anything in it and it has not changed for ``quiet_seconds``."""
    base = work_dir or Path(tempfile.gettempdir())
    removed = []
    for path in base.glob(f"{OLD_PLAINTEXT_PREFIX}*"):
        if not path.is_dir() or path.is_symlink() or path.stat().st_uid != os.getuid():
            continue
        if path.name.startswith(DOWNLOAD_PREFIX):
            match = re.match(rf"^{DOWNLOAD_PREFIX}(\d+)-", path.name)
            if match is None or _pid_alive(int(match.group(1))):
                continue
            what = "the downloads of an interrupted restore test"
        else:
            if time.time() - path.stat().st_mtime < quiet_seconds or _in_use(path):
                continue
            what = "a decrypted dump (plaintext) left by an interrupted restore"
        shutil.rmtree(path, ignore_errors=True)
        removed.append(f"removed {path}: {what}")
    return removed


def clean_leftovers(conn: psycopg.Connection[Any], live: str,
                    work_dir: Path | None = None) -> list[str]:
    """Everything :mod:`leftovers` clears, one sentence each (logged as warnings)."""
    done = [*interrupted_swaps(conn, live), *drop_scratch(conn, live),
            *remove_stale_dirs(work_dir)]
    for sentence in done:
        log.warning("%s", sentence)
    return done


def download_dir() -> Path:
    """A private directory for a restore test's downloads, named so a later run can tell
    whether its process still lives."""
    return Path(tempfile.mkdtemp(prefix=f"{DOWNLOAD_PREFIX}{os.getpid()}-"))
