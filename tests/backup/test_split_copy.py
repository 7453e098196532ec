"""A table loading on two COPY sessions (``TableCopier.request_split``) on a real PostgreSQL 15:
every row arrives exactly once, the rows written before the split stay frozen, and a failure on
either session leaves the table empty and reported, never half loaded."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest

from caresync_dr.backup import loader
from caresync_dr.backup.archive import ArchiveHead, TableStats, TocEntry
from caresync_dr.backup.copier import TableCopier
from caresync_dr.backup.errors import BackupError
from caresync_dr.commands import rollback as restore_script
from caresync_dr.pg.cluster import PostgresCluster
from tests.backup.helpers import backup

pytestmark = pytest.mark.postgres
ROWS = 5000


@pytest.fixture
def target(pg_server: PostgresCluster) -> Iterator[str]:
    name = f"split_{uuid.uuid4().hex[:8]}"
    pg_server.psql(f"CREATE DATABASE {name}")
    url = pg_server.dsn(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_visibility")
        conn.execute("CREATE TABLE public.notes (id bigint PRIMARY KEY, body text NOT NULL)")
    yield url
    pg_server.psql(f"DROP DATABASE {name} WITH (FORCE)")


ENTRY = TocEntry(7, True, "notes", "TABLE DATA", 3, "", "COPY public.notes (id, body) FROM stdin;",
                 "public", "postgres", ())
HEAD = ArchiveHead((1, 15, 0), 4, 0, "x", "15", "15", (ENTRY,), b"")


def copy_text(rows: int, bad_row: int | None = None) -> bytes:
    """pg_dump's COPY text for ``rows`` rows; ``bad_row`` gets an id that is not a bigint."""
    return b"".join(
        (b"oops" if i == bad_row else str(i).encode()) + b"\tnote " + str(i).encode()
        + b" \\t with a tab and a \\n newline escaped\n" for i in range(1, rows + 1))


def load(url: str, text: bytes, *, split_after: int, piece: int = 997,
         continue_on_error: bool = False) -> TableCopier:
    """Feed ``text`` in pieces that cut rows anywhere; ask for the split after
    ``split_after`` bytes."""
    copier = TableCopier(url, HEAD, continue_on_error=continue_on_error)
    stats = TableStats(ENTRY)
    stats.rows = text.count(b"\n")
    try:
        copier.on_table_start(ENTRY)
        for offset in range(0, len(text), piece):
            if offset >= split_after:
                copier.request_split()
            copier.on_table_data(ENTRY, text[offset:offset + piece])
        copier.on_table_end(stats)
    finally:
        copier.close()
    return copier


def rows_of(url: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT id, body FROM public.notes ORDER BY id").fetchall()


def expected(rows: int) -> list[tuple[object, ...]]:
    return [(i, f"note {i} \t with a tab and a \n newline escaped") for i in range(1, rows + 1)]


def test_split_table_holds_every_row_once_and_the_first_part_frozen(target: str) -> None:
    text = copy_text(ROWS)
    copier = load(target, text, split_after=len(text) // 3)

    loaded = copier.tables["public.notes"]
    assert (loaded.rows_streamed, loaded.rows_loaded, loaded.error) == (ROWS, ROWS, None)
    assert rows_of(target) == expected(ROWS)
    assert copier.split_rows["public.notes"] > 0  # the second session took its share
    with psycopg.connect(target) as conn:
        transactions = conn.execute("SELECT count(DISTINCT xmin::text) FROM public.notes"
                                    ).fetchone()
        frozen = conn.execute("SELECT count(*) FROM pg_visibility_map('public.notes') "
                              "WHERE all_frozen").fetchone()
    assert transactions is not None and frozen is not None
    assert frozen[0] > 0  # the rows before the split were written frozen (COPY FREEZE)
    assert transactions[0] >= 2  # the rest in other transactions: that lock was released


def test_split_requested_at_the_last_byte_or_never_changes_nothing(target: str) -> None:
    text = copy_text(300)
    load(target, text, split_after=len(text) + 1)
    assert rows_of(target) == expected(300)


@pytest.mark.parametrize(("bad_row", "split_at"), [(50, 3), (5, 0), (ROWS - 3, 3)],
                         ids=["before-the-split", "on-the-second-session", "after-the-split"])
def test_a_row_that_fails_on_either_session_leaves_the_table_empty_and_listed(
        target: str, bad_row: int, split_at: int) -> None:
    """Split at the first piece: its first row goes to the first session, the next whole
    rows to the second one (its queue is empty), so row 5 fails there."""
    text = copy_text(ROWS, bad_row=bad_row)
    copier = load(target, text, split_after=len(text) // split_at if split_at else 0,
                  continue_on_error=True)

    assert rows_of(target) == []  # the frozen part committed at the split was emptied again
    loaded = copier.tables["public.notes"]
    assert loaded.rows_loaded is None and loaded.error and "bigint" in loaded.error
    assert copier.failed and copier.failed[0].startswith("TABLE DATA public.notes:")


def test_without_continue_on_error_a_failed_split_load_raises(target: str) -> None:
    text = copy_text(ROWS, bad_row=ROWS - 3)
    with pytest.raises(BackupError, match=r"loading the data of public\.notes failed"):
        load(target, text, split_after=len(text) // 3)
    assert rows_of(target) == []


def test_an_idle_worker_splits_the_table_with_the_most_left_to_load() -> None:
    class Copier:
        def __init__(self, split: bool = False) -> None:
            self.split, self.requested = split, False

        def request_split(self) -> None:
            self.requested = True

    class Stream:
        def __init__(self, seen: int) -> None:
            self.bytes_seen = seen

    def segment(size: int) -> loader._Segment:
        return loader._Segment(1, (0, 0), None, size, size)

    parallel = loader._Parallel.__new__(loader._Parallel)
    parallel.lock = threading.Lock()
    parallel.splits = 0
    big, small, done = Copier(), Copier(), Copier(split=True)
    mib = 1 << 20
    parallel.loading = cast(Any, {
        "a": (small, segment(200 * mib), Stream(100 * mib)),
        "b": (big, segment(900 * mib), Stream(100 * mib)),
        "c": (done, segment(900 * mib), Stream(0)),
    })
    parallel._lend_a_core()
    assert (big.requested, small.requested, done.requested, parallel.splits) == (
        True, False, False, 1)
    near_the_end = Copier()
    parallel.loading = cast(Any, {"a": (near_the_end, segment(900 * mib),
                                        Stream(900 * mib - loader.MIN_SPLIT_BYTES + 1))})
    parallel._lend_a_core()
    assert not near_the_end.requested and parallel.splits == 1


def test_a_restore_whose_largest_table_is_split_verifies_and_matches_the_source(
        pg_server: PostgresCluster, live_db: str, key_file: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every table split as soon as it starts (the loader splits only when a core is idle,
    which a database this small never leaves time for): the restore's own verification
    (the sessions' row counts summed, the stream's SHA-256) passes, and so does a row-by-row
    comparison with the source."""
    _, data = backup(live_db, tmp_path / "b", key_file)
    start = TableCopier.on_table_start
    copiers: list[TableCopier] = []

    def split_at_once(self: TableCopier, entry: TocEntry) -> None:
        start(self, entry)
        self.request_split()
        copiers.append(self)
    monkeypatch.setattr(TableCopier, "on_table_start", split_at_once)
    report = tmp_path / "r.json"

    code = restore_script.main([str(data), "--database-url", live_db, "--key-file",
                                str(key_file), "--no-swap", "--report", str(report)])

    assert code == 0
    split = {name: rows for c in copiers for name, rows in c.split_rows.items()}
    assert split.keys() >= {"public.clinical_notes", "public.appointments"}
    assert all(rows > 0 for rows in split.values())
    restored = json.loads(report.read_text())["result"]["restored_as"]
    query = ("SELECT 'notes', count(*), md5(string_agg(t::text, '|' ORDER BY id)) "
             "FROM clinical_notes t UNION ALL SELECT 'appointments', count(*), "
             "md5(string_agg(t::text, '|' ORDER BY id)) FROM appointments t")
    assert pg_server.psql(query, restored) == pg_server.psql(query, live_db.rsplit("/", 1)[1])
