"""Each table's rows, straight from the decrypted stream into the server (``COPY ... FREEZE``).

A :class:`TableCopier` is an :class:`~caresync_dr.backup.archive.ArchiveSink` with one
connection of its own. Each table is loaded in one transaction that first ``TRUNCATE``s the new,
empty table: that is what lets ``COPY ... WITH (FREEZE)`` write the rows frozen with their
hint bits set, so the index builds and foreign-key checks that follow do not rewrite every page
(and with ``wal_level=minimal`` the COPY skips WAL). A table that is not a plain table
(partitioned: COPY FREEZE is refused there) or that the role may not truncate is loaded without
FREEZE. The server's row count for each COPY (its ``COPY n``) and the SHA-256 of the bytes sent
are the verification: no second pass over the data.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from caresync_dr.backup.archive import ArchiveHead, TableStats, TocEntry
from caresync_dr.backup.errors import BackupError
from caresync_dr.backup.pgrestore import RESTORE_SETTINGS
from caresync_dr.backup.tools import text

log = logging.getLogger(__name__)


class CancelledError(BackupError):
    """Another part of the restore failed; this copy stopped where it was."""


@dataclass
class LoadedTable:
    """One table's data as loaded: rows in the stream, rows the server reported, SHA-256."""

    rows_streamed: int
    rows_loaded: int | None
    fingerprint: str
    error: str | None = None


def session_settings(head: ArchiveHead) -> dict[str, str]:
    """What pg_restore sets before loading data (``_doSetFixedOutputState``)."""
    settings = {
        "client_encoding": head.setting("ENCODING") or "UTF8",
        "standard_conforming_strings": head.setting("STDSTRINGS") or "on",
        "search_path": "", "check_function_bodies": "false", "xmloption": "content",
        "client_min_messages": "warning", "row_security": "off", "statement_timeout": "0",
        "lock_timeout": "0", "idle_in_transaction_session_timeout": "0",
    }
    settings.update(RESTORE_SETTINGS)
    return settings


class TableCopier:
    """Loads the tables an archive stream hands it, on its own connection."""

    def __init__(self, target_url: str, head: ArchiveHead, *, continue_on_error: bool = False,
                 cancel: threading.Event | None = None) -> None:
        self.continue_on_error = continue_on_error
        self.cancel = cancel or threading.Event()
        self.tables: dict[str, LoadedTable] = {}
        self.stats: dict[str, TableStats] = {}
        self.failed: list[str] = []
        self._conn = psycopg.connect(target_url, application_name="caresync-restore")
        for name, value in session_settings(head).items():
            self._conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        self._plain_tables = {
            (text(n), text(r)) for n, r in self._conn.execute(
                "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c "
                "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'r'").fetchall()}
        self._conn.commit()
        self._copy_cm: Any = None
        self._copy: Any = None
        self._cursor: psycopg.Cursor[Any] | None = None
        self._error: str | None = None

    # -- ArchiveSink --------------------------------------------------------------------------

    def on_head(self, head: ArchiveHead) -> None:  # pragma: no cover - the loader handles it
        raise BackupError("a TableCopier is given table data only")

    def on_table_start(self, entry: TocEntry) -> None:
        self._check_cancel()
        self._error = None
        statement = entry.copy_stmt.strip().rstrip(";")
        try:
            if self._truncate(entry):
                statement += " WITH (FREEZE)"
            self._cursor = self._conn.cursor()
            self._copy_cm = self._cursor.copy(statement)
            self._copy = self._copy_cm.__enter__()
        except psycopg.Error as exc:
            self._fail(entry, exc)

    def on_table_data(self, entry: TocEntry, payload: bytes) -> None:
        self._check_cancel()
        if self._copy is None:
            return  # this table already failed: the rest of its data is read and dropped
        try:
            self._copy.write(payload)
        except psycopg.Error as exc:
            self._fail(entry, exc)

    def on_table_end(self, stats: TableStats) -> None:
        entry = stats.entry
        rows = None
        if self._copy is not None:
            try:
                self._copy_cm.__exit__(None, None, None)
                self._copy_cm = self._copy = None
                assert self._cursor is not None
                rows = self._cursor.rowcount  # the server's "COPY n"
                self._conn.commit()
            except psycopg.Error as exc:
                self._fail(entry, exc)
                rows = None
        self._copy_cm = self._copy = self._cursor = None
        self.stats[entry.table_name] = stats
        self.tables[entry.table_name] = LoadedTable(stats.rows, rows, stats.fingerprint,
                                                    self._error)
        log.info("loaded %s: %d rows (%s)", entry.table_name, stats.rows,
                 f"failed: {self._error}" if self._error else f"server confirmed {rows}")

    # -- helpers ------------------------------------------------------------------------------

    def close(self) -> None:
        if self._copy_cm is not None:
            with contextlib.suppress(Exception):
                self._copy_cm.__exit__(BackupError, BackupError("aborted"), None)
            self._copy_cm = self._copy = None
        with contextlib.suppress(psycopg.Error):
            self._conn.close()

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise CancelledError("stopped: another part of the restore failed")

    def _truncate(self, entry: TocEntry) -> bool:
        """TRUNCATE the new table in this transaction, so COPY may FREEZE; False when the
        table is not a plain table or not ours to truncate (then it starts over without)."""
        if (entry.namespace, entry.tag) not in self._plain_tables:
            return False
        try:
            self._conn.execute(sql.SQL("TRUNCATE ONLY {}").format(
                sql.Identifier(entry.namespace, entry.tag)))
        except psycopg.errors.InsufficientPrivilege:
            self._conn.rollback()
            return False
        return True

    def _fail(self, entry: TocEntry, exc: psycopg.Error) -> None:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        self._error = message
        self._copy = None
        if self._copy_cm is not None:
            with contextlib.suppress(Exception):
                self._copy_cm.__exit__(type(exc), exc, None)
        self._copy_cm = None
        with contextlib.suppress(psycopg.Error):
            self._conn.rollback()
        self.failed.append(f"TABLE DATA {entry.table_name}: {message}")
        if not self.continue_on_error:
            raise BackupError(f"loading the data of {entry.table_name} failed: {message}") \
                from exc
