"""Load a decrypted pg_dump archive into a scratch database as it streams: no plaintext file.

The decrypted archive never touches the disk (it is patient data; issue 10 item 5):

1. The head (header and table of contents: schema, no rows) goes to an anonymous file, one that
   has no name and disappears with the last process holding it, even after SIGKILL. pg_restore
   reads it through ``/proc/self/fd/N`` for the schema before the data (``--section=pre-data``).
2. Each table's COPY data streams from the decryptor into ``COPY ... FROM STDIN (FREEZE)`` on a
   connection of this process, in the same transaction as a ``TRUNCATE`` of the new, empty table,
   which is what lets the server write the rows frozen (so no later pass sets hint bits or
   freezes them) and, with ``wal_level=minimal``, skip WAL. The server's row count for each COPY
   and the SHA-256 of the bytes sent are the verification: no second pass over the data.
3. Other data-section entries (sequence values) and then the schema after the data (indexes,
   constraints, triggers, ACLs; ``--section=post-data``) come from the head file, with
   ``pg_restore --jobs``.

An archive that cannot be streamed (large objects, another archive version) is decrypted into an
anonymous file instead and restored by ``pg_restore --jobs`` from ``/proc/self/fd/N``; the
rows are then counted by the server after the load.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from caresync_dr.backup.archive import (
    SECTION_DATA,
    ArchiveHead,
    ArchiveStream,
    NotStreamable,
    TableStats,
    TocEntry,
)
from caresync_dr.backup.errors import BackupError
from caresync_dr.backup.progress import Progress
from caresync_dr.backup.tools import client_command, pg_tool, run_tool, text

log = logging.getLogger(__name__)

# Session settings for the restore's own connections (never the server's configuration): bigger
# sort memory makes index builds faster; work_mem lets the foreign-key validation queries hash in
# memory instead of spilling to disk; a crash mid-restore is harmless (the scratch database is
# dropped and redone), so commits need not wait for the WAL flush.
RESTORE_SETTINGS = {"maintenance_work_mem": "512MB", "work_mem": "128MB",
                    "synchronous_commit": "off"}
RESTORE_PGOPTIONS = " ".join(f"-c {k}={v}" for k, v in RESTORE_SETTINGS.items())


@dataclass
class LoadedTable:
    """One table's data as loaded: rows in the stream, rows the server reported, SHA-256."""

    rows_streamed: int
    rows_loaded: int | None
    fingerprint: str
    error: str | None = None


@dataclass
class LoadResult:
    streamed: bool
    tables: dict[str, LoadedTable] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)  # objects that did not restore
    seconds: dict[str, float] = field(default_factory=dict)


def anonymous_file(directory: Path | None = None) -> int:
    """A read-write file descriptor of a file with no name (``O_TMPFILE``, mode 600): its
    contents vanish when the last descriptor closes, however the process ends."""
    where = str(directory or tempfile.gettempdir())
    try:
        return os.open(where, os.O_TMPFILE | os.O_RDWR, 0o600)
    except (AttributeError, OSError):  # a filesystem without O_TMPFILE: name it, then unlink
        fd, path = tempfile.mkstemp(dir=where, prefix=".caresync-restore-")
        os.unlink(path)
        return fd


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class _PgRestore:
    """Runs pg_restore on an archive held by an anonymous file descriptor."""

    def __init__(self, archive_fd: int, target_url: str, bin_dir: Path | None,
                 work_dir: Path | None, continue_on_error: bool, *,
                 head: ArchiveHead | None = None) -> None:
        self.fd = archive_fd
        self.head = head
        self.target_url = target_url
        self.bin_dir = bin_dir
        self.work_dir = work_dir
        self.continue_on_error = continue_on_error
        self.failed: list[str] = []

    def run(self, *options: str, entries: Iterable[int] | None = None, what: str) -> None:
        dsn, env = client_command(self.target_url)
        env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " " + RESTORE_PGOPTIONS).strip()
        fds = [self.fd]
        argv = [pg_tool("pg_restore", self.bin_dir), *options, "--dbname", dsn]
        if not self.continue_on_error:
            argv.append("--exit-on-error")
        list_fd = -1
        if entries is not None:
            list_fd = anonymous_file(self.work_dir)
            _write_all(list_fd, "".join(f"{i};\n" for i in entries).encode())
            os.lseek(list_fd, 0, os.SEEK_SET)
            fds.append(list_fd)
            argv += ["--use-list", f"/proc/self/fd/{list_fd}"]
        argv.append(f"/proc/self/fd/{self.fd}")
        clock = time.monotonic()
        try:
            code, errors = run_tool(argv, env=env, pass_fds=fds)
        finally:
            if list_fd >= 0:
                os.close(list_fd)
        log.info("pg_restore %s: %.1f s", what, time.monotonic() - clock)
        if code != 0:
            if not self.continue_on_error:
                raise BackupError(f"pg_restore ({what}) failed (exit {code}): {errors[-2000:]}")
            self.failed += failed_objects(errors, self.head) or [errors[-500:]]


def failed_objects(pg_restore_errors: str, head: ArchiveHead | None = None) -> list[str]:
    """Each object pg_restore could not restore, as "<kind> <schema> <name>: <error>".

    pg_restore reports ``could not execute query: ERROR: ...`` then ``Command was: <SQL>``
    (in parallel mode without naming the TOC entry): the statement is matched back to the
    archive's entry that holds it.
    """
    by_statement: dict[str, str] = {}
    for entry in head.entries if head else ():
        first = entry.defn.strip().splitlines()[0] if entry.defn.strip() else ""
        if first:
            by_statement.setdefault(first, f"{entry.desc} {entry.namespace} {entry.tag}".replace(
                "  ", " "))
    failed: list[str] = []
    error = ""
    for line in pg_restore_errors.splitlines():
        if "could not execute query:" in line:
            error = line.split("could not execute query:", 1)[1].strip()
        elif line.startswith("Command was:") and error:
            command = line.removeprefix("Command was:").strip()
            failed.append(f"{by_statement.get(command, command)}: {error}")
            error = ""
        elif line.startswith("pg_restore: error:") and not error:
            failed.append(line.removeprefix("pg_restore: error:").strip())
    return failed

def _session_settings(head: ArchiveHead) -> dict[str, str]:
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


class StreamingLoader:
    """An :class:`~caresync_dr.backup.archive.ArchiveSink` that restores into ``target_url``."""

    def __init__(self, target_url: str, *, jobs: int = 2, bin_dir: Path | None = None,
                 work_dir: Path | None = None, continue_on_error: bool = False,
                 extension_versions: dict[str, str] | None = None) -> None:
        self.target_url = target_url
        self.extension_versions = extension_versions or {}
        self.jobs = max(1, jobs)
        self.bin_dir = bin_dir
        self.work_dir = work_dir
        self.continue_on_error = continue_on_error
        self.result = LoadResult(streamed=True)
        self.head: ArchiveHead | None = None
        self._head_fd = -1
        self._restore: _PgRestore | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self._copy_cm: Any = None
        self._copy: Any = None
        self._cursor: psycopg.Cursor[Any] | None = None
        self._table_error: str | None = None
        self._plain_tables: set[tuple[str, str]] | None = None
        self._rows_loaded: int | None = None
        self._clock = time.monotonic()

    # -- ArchiveSink ------------------------------------------------------------------------

    def on_head(self, head: ArchiveHead) -> None:
        self.head = head
        self._head_fd = anonymous_file(self.work_dir)
        _write_all(self._head_fd, head.raw)
        self._restore = _PgRestore(self._head_fd, self.target_url, self.bin_dir,
                                   self.work_dir, self.continue_on_error, head=head)
        clock = time.monotonic()
        self._pre_data(head)
        self.result.seconds["pre_data"] = round(time.monotonic() - clock, 3)
        self._conn = psycopg.connect(self.target_url, application_name="caresync-restore")
        for name, value in _session_settings(head).items():
            self._conn.execute("SELECT set_config(%s, %s, false)", (name, value))
        self._conn.commit()
        self._clock = time.monotonic()

    def _pre_data(self, head: ArchiveHead) -> None:
        """The schema before the data. pg_dump writes ``CREATE EXTENSION x`` without a version,
        which installs the target's default; an extension whose recorded version differs is
        created first at that version (after the schemas it may live in)."""
        assert self._restore is not None
        pinned = self._pinned_extensions(head)
        if not pinned:
            self._restore.run("--section=pre-data", what="schema before the data")
            return
        schemas = [e.dump_id for e in head.entries if e.desc == "SCHEMA"]
        if schemas:
            self._restore.run("--section=pre-data", entries=schemas, what="schemas")
        with psycopg.connect(self.target_url, autocommit=True) as conn:
            for entry, version in pinned:
                # pg_dump's own statement (authenticated with the archive) plus the version
                statement = entry.defn.strip().rstrip(";")
                conn.execute(sql.SQL("{} VERSION {}").format(sql.SQL(statement),
                                                           sql.Literal(version)))
                log.info("extension %s created at the backup's version %s", entry.tag, version)
        rest = [e.dump_id for e in head.entries if e.desc != "SCHEMA"]
        self._restore.run("--section=pre-data", entries=rest, what="schema before the data")

    def _pinned_extensions(self, head: ArchiveHead) -> list[tuple[TocEntry, str]]:
        entries = [e for e in head.entries if e.desc == "EXTENSION"
                   and e.tag in self.extension_versions]
        if not entries:
            return []
        with psycopg.connect(self.target_url) as conn:
            defaults = {text(n): text(v) for n, v in conn.execute(
                "SELECT name, default_version FROM pg_available_extensions "
                "WHERE name = ANY(%s)", ([e.tag for e in entries],)).fetchall()}
        return [(e, self.extension_versions[e.tag]) for e in entries
                if defaults.get(e.tag) not in (None, self.extension_versions[e.tag])]

    def on_table_start(self, entry: TocEntry) -> None:
        conn = self._connection()
        self._table_error = None
        self._rows_loaded = None
        statement = entry.copy_stmt.strip().rstrip(";")
        try:
            if self._truncate(conn, entry):
                statement += " WITH (FREEZE)"
            cursor = self._cursor = conn.cursor()
            self._copy_cm = cursor.copy(statement, writer=QueuedLibpqWriter(cursor))
            self._copy = self._copy_cm.__enter__()
        except psycopg.Error as exc:
            self._fail_table(entry, exc)
        log.debug("loading %s", entry.table_name)

    def on_table_data(self, entry: TocEntry, payload: bytes) -> None:
        if self._copy is None:
            return  # this table already failed: its data is read and dropped
        try:
            self._copy.write(payload)
        except psycopg.Error as exc:
            self._fail_table(entry, exc)

    def on_table_end(self, stats: TableStats) -> None:
        entry = stats.entry
        if self._copy is not None:
            try:
                self._copy_cm.__exit__(None, None, None)
                self._copy_cm = self._copy = None
                assert self._cursor is not None
                self._rows_loaded = self._cursor.rowcount  # the server's "COPY n"
                self._connection().commit()
            except psycopg.Error as exc:
                self._fail_table(entry, exc)
        self._copy_cm = self._copy = self._cursor = None
        self.result.tables[entry.table_name] = LoadedTable(
            rows_streamed=stats.rows, rows_loaded=None if self._table_error else
            self._rows_loaded, fingerprint=stats.fingerprint, error=self._table_error)
        log.info("loaded %s: %d rows (%s)", entry.table_name, stats.rows,
                 "failed: " + self._table_error if self._table_error else "server confirmed "
                 f"{self._rows_loaded}")

    # -- after the stream -------------------------------------------------------------------

    def finish(self) -> LoadResult:
        """Sequence values and the schema after the data; closes everything."""
        assert self.head is not None and self._restore is not None
        self.result.seconds["data"] = round(time.monotonic() - self._clock, 3)
        self.close_connection()
        clock = time.monotonic()
        other_data = [e.dump_id for e in self.head.entries
                      if e.section == SECTION_DATA and e.desc != "TABLE DATA"]
        if other_data:
            self._restore.run("--section=data", entries=other_data, what="sequence values")
        self._restore.run("--section=post-data", f"--jobs={self.jobs}",
                          what="indexes, constraints and ACLs")
        self.result.seconds["post_data"] = round(time.monotonic() - clock, 3)
        self.result.failed += self._restore.failed
        return self.result

    def close_connection(self) -> None:
        if self._copy_cm is not None:
            with contextlib.suppress(Exception):
                self._copy_cm.__exit__(BackupError, BackupError("aborted"), None)
            self._copy_cm = self._copy = None
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def close(self) -> None:
        self.close_connection()
        if self._head_fd >= 0:
            os.close(self._head_fd)
            self._head_fd = -1

    # -- helpers ----------------------------------------------------------------------------

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None:
            raise BackupError("the archive's data came before its table of contents")
        return self._conn

    def _truncate(self, conn: psycopg.Connection[Any], entry: TocEntry) -> bool:
        """TRUNCATE the new table in this transaction, so COPY may FREEZE; False when the
        table is not a plain table (partitioned: COPY FREEZE is refused) or not ours to
        truncate (then the transaction starts over, without it)."""
        if self._plain_tables is None:
            self._plain_tables = {
                (text(n), text(r)) for n, r in conn.execute(
                    "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c "
                    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE c.relkind = 'r'").fetchall()}
        if (entry.namespace, entry.tag) not in self._plain_tables:
            return False
        try:
            conn.execute(sql.SQL("TRUNCATE ONLY {}").format(
                sql.Identifier(entry.namespace, entry.tag)))
        except psycopg.errors.InsufficientPrivilege:
            conn.rollback()
            return False
        return True

    def _fail_table(self, entry: TocEntry, exc: psycopg.Error) -> None:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        self._table_error = message
        self._copy = None
        if self._copy_cm is not None:
            with contextlib.suppress(Exception):
                self._copy_cm.__exit__(type(exc), exc, None)
        self._copy_cm = None
        with contextlib.suppress(psycopg.Error):
            self._connection().rollback()
        self.result.failed.append(f"TABLE DATA {entry.table_name}: {message}")
        if not self.continue_on_error:
            raise BackupError(f"loading the data of {entry.table_name} failed: {message}") \
                from exc


def feed_all(chunks: Iterator[bytes], stream: ArchiveStream) -> None:
    """Feed decrypted chunks to ``stream`` and check it ended cleanly."""
    for chunk in chunks:
        stream.feed(chunk)
    stream.close()


def load_streaming(chunks: Iterator[bytes], target_url: str, *, jobs: int = 2,
                   bin_dir: Path | None = None, work_dir: Path | None = None,
                   continue_on_error: bool = False,
                   extension_versions: dict[str, str] | None = None,
                   ) -> tuple[LoadResult, ArchiveStream]:
    """Restore the archive in ``chunks`` into ``target_url`` (an empty database).

    Raises :class:`NotStreamable` before touching the database when the archive cannot be
    streamed, :class:`BackupError` (pg_restore's or the server's message) when loading fails.
    """
    loader = StreamingLoader(target_url, jobs=jobs, bin_dir=bin_dir, work_dir=work_dir,
                             continue_on_error=continue_on_error,
                             extension_versions=extension_versions)
    stream = ArchiveStream(loader, on_progress=Progress("restore: stream").add)
    try:
        feed_all(chunks, stream)
        return loader.finish(), stream
    finally:
        loader.close()


def load_classic(chunks: Iterator[bytes], target_url: str, *, jobs: int = 2,
                 bin_dir: Path | None = None, work_dir: Path | None = None,
                 continue_on_error: bool = False) -> tuple[LoadResult, ArchiveStream]:
    """For archives that cannot be streamed: decrypt into an anonymous file, then
    ``pg_restore --jobs`` from it; the rows are counted by the server afterwards."""
    stream = ArchiveStream()
    fd = anonymous_file(work_dir)
    try:
        for chunk in chunks:
            stream.feed(chunk)
            _write_all(fd, chunk)
        stream.close()
        restore = _PgRestore(fd, target_url, bin_dir, work_dir, continue_on_error)
        clock = time.monotonic()
        restore.run(f"--jobs={max(1, jobs)}", what="whole archive")
        result = LoadResult(streamed=False, failed=restore.failed,
                            seconds={"load": round(time.monotonic() - clock, 3)})
    finally:
        os.close(fd)
    counted = count_rows(target_url, [s.entry for s in stream.tables.values()])
    for stats in stream.tables.values():
        result.tables[stats.entry.table_name] = LoadedTable(
            stats.rows, counted.get(stats.entry.table_name), stats.fingerprint)
    return result, stream


def count_rows(target_url: str, entries: list[TocEntry]) -> dict[str, int]:
    counts = {}
    with psycopg.connect(target_url) as conn:
        for entry in entries:
            try:
                row = conn.execute(sql.SQL("SELECT count(*) FROM ONLY {}").format(
                    sql.Identifier(entry.namespace, entry.tag))).fetchone()
            except psycopg.Error:
                conn.rollback()
                continue
            counts[entry.table_name] = int(row[0]) if row else 0
    return counts


def scan_only(chunks: Iterator[bytes]) -> ArchiveStream:
    """Read the whole archive and fingerprint it, touching no database (``--dry-run``)."""
    stream = ArchiveStream(on_progress=Progress("verify: stream").add)
    feed_all(chunks, stream)
    return stream


def load_archive(chunks_factory: Callable[[], Iterator[bytes]], target_url: str, *,
                 jobs: int = 2, bin_dir: Path | None = None, work_dir: Path | None = None,
                 continue_on_error: bool = False,
                 reset: Callable[[], None] | None = None,
                 extension_versions: dict[str, str] | None = None,
                 ) -> tuple[LoadResult, ArchiveStream]:
    """Stream when possible; otherwise ``reset`` the target (if anything was done) and load
    the classic way. ``chunks_factory`` yields the decrypted archive from the start each time."""
    try:
        return load_streaming(chunks_factory(), target_url, jobs=jobs, bin_dir=bin_dir,
                              work_dir=work_dir, continue_on_error=continue_on_error,
                              extension_versions=extension_versions)
    except NotStreamable as why:
        log.info("archive cannot be streamed (%s): restoring from an anonymous file", why)
        if reset is not None:
            reset()
    return load_classic(chunks_factory(), target_url, jobs=jobs, bin_dir=bin_dir,
                        work_dir=work_dir, continue_on_error=continue_on_error)



def read_head(chunks: Iterator[bytes]) -> ArchiveHead:
    """Only the archive's table of contents: decrypts no further than its end."""
    stream = ArchiveStream()
    for chunk in chunks:
        stream.feed(chunk)
        if stream.head is not None:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            return stream.head
    raise BackupError("the archive ends before its table of contents")
