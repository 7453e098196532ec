"""Put a verified restored copy in place of the live database: one transaction, crash-safe.

The swap terminates the live database's sessions and renames both databases in a single
transaction: ``<db>`` to ``<db>_old_<ts>`` and the restored copy to ``<db>``. ``ALTER DATABASE
... RENAME`` takes an exclusive lock on the database first, so a client connecting meanwhile
waits for the commit and then finds the name taken by the restored copy; the rename fails only if
a session connected between the terminate and the lock, and the transaction is then retried.
No intermediate state is ever committed: killed at any point, the server rolls the transaction
back and the live database is as it was, accepting connections (issue 10 item 4; the previous
swap committed ``ALLOW_CONNECTIONS false`` first and a kill left the database refusing
connections until someone re-ran it).
"""

from __future__ import annotations

import logging
import time

import psycopg
from psycopg import sql

from caresync_dr.backup.errors import BackupError

log = logging.getLogger(__name__)
TERMINATE = ("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
             "WHERE datname = %s AND pid <> pg_backend_pid()")


def swap(maintenance_url: str, live: str, restored: str, old: str, live_exists: bool, *,
         attempts: int = 20, pause_seconds: float = 0.25) -> None:
    """Rename ``live`` to ``old`` and ``restored`` to ``live``, atomically.

    Raises :class:`BackupError` (nothing changed) when sessions kept reconnecting to ``live``
    through every attempt: stop the application, then run the restore again.
    """
    ident = sql.Identifier
    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        for attempt in range(1, attempts + 1):
            try:
                with conn.transaction():
                    if live_exists:
                        row = conn.execute(TERMINATE, (live,)).fetchone()
                        if row and row[0]:
                            log.info("swap: terminated %d session(s) on %s", row[0], live)
                        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                            ident(live), ident(old)))
                    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        ident(restored), ident(live)))
                return
            except psycopg.errors.ObjectInUse as exc:
                log.info("swap attempt %d/%d: %s", attempt, attempts,
                         str(exc).strip().splitlines()[0])
                time.sleep(pause_seconds)
    raise BackupError(f"could not swap: sessions kept connecting to {live} through {attempts} "
                      f"attempts; nothing was changed. Stop the application and run again")
