"""Load a decrypted pg_dump archive into a scratch database as it streams: no plaintext file.

The decrypted archive never touches the disk (it is patient data; issue 10 item 5). Three ways,
best first:

- **In parallel** (backups with ``segments`` in their manifest): each pg_dump data block is its
  own zstd frame starting at its own encrypted chunk (``create._Framer``), so ``jobs`` workers
  each decrypt, decompress and COPY whole tables from their own place in the file, largest first,
  like ``pg_restore --jobs``; indexes and constraints of tables already loaded are built while
  the last tables load (``schema_steps``).
- **As one stream** (older backups): the same, one table after the other.
- **From an anonymous file** (an archive that cannot be streamed: large objects, another archive
  version): decrypted into an ``O_TMPFILE`` and restored by ``pg_restore --jobs`` from
  ``/proc/self/fd/N``; the rows are then counted by the server after the load.

Every byte of the archive is authenticated before it is used (each chunk's index is its nonce,
so a segment cannot be read from the wrong place), each segment must decompress to exactly the
one data block the manifest says it starts, and the segments cover the file end to end.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from caresync_dr.backup import autovacuum
from caresync_dr.backup.archive import (
    ArchiveHead,
    ArchiveStream,
    NotStreamable,
    TableStats,
    TocEntry,
)
from caresync_dr.backup.copier import CancelledError, LoadedTable, TableCopier
from caresync_dr.backup.errors import IntegrityError
from caresync_dr.backup.pgrestore import (
    RESTORE_PGOPTIONS,
    PgRestore,
    anonymous_file,
    write_all,
)
from caresync_dr.backup.progress import Progress
from caresync_dr.backup.schema_steps import SchemaSteps

log = logging.getLogger(__name__)
__all__ = ["RESTORE_PGOPTIONS", "LoadResult", "LoadedTable", "load_archive", "read_head",
           "scan_only"]

Chunks = Callable[..., Iterator[bytes]]  # (start=(chunk, offset) | None, stop=int | None)
# A table with less than this still to load is not worth a second COPY session (about half a
# second of one backend's COPY on this machine).
MIN_SPLIT_BYTES = 64 << 20


@dataclass
class LoadResult:
    streamed: bool
    parallel: bool = False
    tables: dict[str, LoadedTable] = field(default_factory=dict)
    stats: list[TableStats] = field(default_factory=list)  # as the archive streamed by
    failed: list[str] = field(default_factory=list)  # objects that did not restore
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadOptions:
    jobs: int = 2
    bin_dir: Path | None = None
    work_dir: Path | None = None
    continue_on_error: bool = False
    extension_versions: dict[str, str] | None = None


def _schema(head: ArchiveHead, target_url: str, options: LoadOptions) -> SchemaSteps:
    return SchemaSteps(head, target_url, bin_dir=options.bin_dir, work_dir=options.work_dir,
                       continue_on_error=options.continue_on_error,
                       extension_versions=options.extension_versions)


def read_head(chunks: Iterator[bytes]) -> ArchiveHead:
    """Only the archive's table of contents: decrypts no further than its end."""
    stream = ArchiveStream()
    try:
        for chunk in chunks:
            stream.feed(chunk)
            if stream.head is not None:
                return stream.head
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    raise IntegrityError("the archive ends before its table of contents")


# -- one stream ---------------------------------------------------------------------------------

class _Sequential:
    """An :class:`~caresync_dr.backup.archive.ArchiveSink` for a whole archive in one stream."""

    def __init__(self, target_url: str, options: LoadOptions) -> None:
        self.target_url, self.options = target_url, options
        self.schema: SchemaSteps | None = None
        self.copier: TableCopier | None = None
        self.seconds: dict[str, float] = {}

    def on_head(self, head: ArchiveHead) -> None:
        clock = time.monotonic()
        self.schema = _schema(head, self.target_url, self.options)
        self.schema.pre_data()
        self.seconds["pre_data"] = round(time.monotonic() - clock, 3)
        self.copier = TableCopier(self.target_url, head,
                                  continue_on_error=self.options.continue_on_error)

    def on_table_start(self, entry: TocEntry) -> None:
        self._copier().on_table_start(entry)

    def on_table_data(self, entry: TocEntry, payload: bytes) -> None:
        self._copier().on_table_data(entry, payload)

    def on_table_end(self, stats: TableStats) -> None:
        self._copier().on_table_end(stats)

    def _copier(self) -> TableCopier:
        if self.copier is None:
            raise IntegrityError("the archive's data came before its table of contents")
        return self.copier

    def close(self) -> None:
        if self.copier is not None:
            self.copier.close()
        if self.schema is not None:
            self.schema.close()


def load_streaming(chunks: Chunks, target_url: str,
                   options: LoadOptions) -> tuple[LoadResult, ArchiveStream]:
    sink = _Sequential(target_url, options)
    stream = ArchiveStream(sink, on_progress=Progress("restore: stream").add)
    try:
        clock = time.monotonic()
        for chunk in chunks():
            stream.feed(chunk)
        stream.close()
        assert sink.schema is not None and sink.copier is not None
        sink.seconds["data"] = round(time.monotonic() - clock - sink.seconds["pre_data"], 3)
        sink.copier.close()
        clock = time.monotonic()
        sink.schema.other_data()
        sink.schema.post_data(None, options.jobs, "indexes, constraints and ACLs")
        sink.seconds["post_data"] = round(time.monotonic() - clock, 3)
        return LoadResult(streamed=True, tables=dict(sink.copier.tables),
                          stats=list(stream.tables.values()),
                          failed=sink.copier.failed + sink.schema.failed,
                          seconds=sink.seconds), stream
    finally:
        sink.close()


# -- in parallel --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Segment:
    dump_id: int
    start: tuple[int, int]     # (chunk index, file offset)
    stop: int | None           # the next segment's first chunk; None: to the end of the file
    size: int                  # decompressed bytes: exactly one data block
    weight: int                # encrypted bytes, to load the largest first


def _segments(manifest_segments: list[dict[str, int]], head: ArchiveHead, dump_bytes: int,
              file_size: int) -> list[_Segment]:
    """Check the manifest's segment list against the archive and the file; raise
    :class:`NotStreamable` when the archive is not segmented as this reader expects."""
    listed = sorted(manifest_segments, key=lambda s: s["chunk"])
    if not listed or listed[0]["archive_offset"] != len(head.raw):
        raise NotStreamable("segments do not start right after the table of contents")
    by_id = head.by_id()
    segments = []
    for i, seg in enumerate(listed):
        entry = by_id.get(seg["dump_id"])
        if entry is None or entry.desc != "TABLE DATA":
            raise NotStreamable(f"segment of entry {seg['dump_id']} is not table data")
        after = listed[i + 1] if i + 1 < len(listed) else None
        end = after["archive_offset"] if after else dump_bytes
        if end <= seg["archive_offset"]:
            raise IntegrityError("the manifest's segments overlap or go backwards")
        segments.append(_Segment(seg["dump_id"], (seg["chunk"], seg["offset"]),
                                 after["chunk"] if after else None, end - seg["archive_offset"],
                                 (after["offset"] if after else file_size) - seg["offset"]))
    return segments


class _Parallel:
    """Workers loading whole tables from their segments; the main thread schedules the schema
    after the data as tables finish."""

    def __init__(self, chunks: Chunks, head: ArchiveHead, schema: SchemaSteps,
                 target_url: str, options: LoadOptions, *, segments: list[_Segment]) -> None:
        self.chunks, self.head, self.schema = chunks, head, schema
        self.target_url, self.options = target_url, options
        self.work: queue.Queue[_Segment] = queue.Queue()
        for segment in sorted(segments, key=lambda s: -s.weight):
            self.work.put(segment)
        self.cancel = threading.Event()
        self.lock = threading.Lock()
        self.loaded: set[int] = set()
        self.busy = 0
        self.errors: list[BaseException] = []
        self.copiers: list[TableCopier] = []
        # worker name -> what it is loading now, so an idle core can join the largest rest
        self.loading: dict[str, tuple[TableCopier, _Segment, ArchiveStream]] = {}
        self.splits = 0
        self.finished = 0  # workers that have nothing more to load (or failed)
        # set by a worker when a table is loaded, it fails or it ends: the main thread builds
        # what became ready at once instead of polling (each poll left a core idle)
        self.changed = threading.Event()

    def _worker(self) -> None:
        copier: TableCopier | None = None
        try:
            copier = TableCopier(self.target_url, self.head,
                                 continue_on_error=self.options.continue_on_error,
                                 cancel=self.cancel)
            with self.lock:
                self.copiers.append(copier)
            while not self.cancel.is_set():
                try:
                    segment = self.work.get_nowait()
                except queue.Empty:
                    return
                with self.lock:
                    self.busy += 1
                self._load(copier, segment)
                with self.lock:
                    self.busy -= 1
                    self.loaded.add(segment.dump_id)
                self.changed.set()
        except BaseException as exc:  # handed to the main thread, which re-raises it
            with self.lock:
                self.errors.append(exc)
            self.cancel.set()
        finally:
            if copier is not None:
                copier.close()
            with self.lock:
                self.finished += 1
            self.changed.set()

    def _load(self, copier: TableCopier, segment: _Segment) -> None:
        stream = ArchiveStream(copier, head=self.head)
        name = threading.current_thread().name
        with self.lock:
            self.loading[name] = (copier, segment, stream)
        try:
            for chunk in self.chunks(start=segment.start, stop=segment.stop):
                stream.feed(chunk)
            stream.close()
        finally:
            with self.lock:
                del self.loading[name]
        if stream.bytes_seen != segment.size or \
                [d for _, d in stream.block_starts] != [segment.dump_id]:
            raise IntegrityError(f"segment of entry {segment.dump_id} does not hold exactly "
                                 "its one data block: the manifest does not match the file")

    def _lend_a_core(self) -> None:
        """Nothing else to do: the table with the most rows still to come takes a second
        COPY session (``TableCopier.request_split``), so no core idles while it loads."""
        with self.lock:
            candidates = [(segment.size - stream.bytes_seen, copier)
                          for copier, segment, stream in self.loading.values()
                          if not copier.split]
        if not candidates:
            return
        rest, copier = max(candidates, key=lambda c: c[0])
        if rest >= MIN_SPLIT_BYTES:
            copier.request_split()
            self.splits += 1

    def run(self) -> dict[str, float]:
        seconds: dict[str, float] = {}
        workers = [threading.Thread(target=self._worker, name=f"restore-{i}")
                   for i in range(max(1, min(self.options.jobs, self.work.qsize())))]
        clock = time.monotonic()
        for worker in workers:
            worker.start()
        early = 0.0
        acted = False
        try:
            # sequence values need no table data: set them now, not in the serial tail
            self.schema.other_data()
            while True:
                if not acted:  # the timeout only re-checks whether a split is due
                    self.changed.wait(timeout=0.1)
                self.changed.clear()
                acted = False
                with self.lock:
                    if self.errors or self.finished == len(workers):
                        break
                    idle = self.work.empty() and self.busy < len(workers)
                    loaded, finished = set(self.loaded), self.finished
                if not idle:
                    continue
                ready = self.schema.ready(loaded)  # a core is free: build what is ready
                if ready:
                    started = time.monotonic()
                    self.schema.post_data(ready, 1, f"indexes and constraints of {len(loaded)} "
                                                    "loaded table(s), while the rest loads")
                    early += time.monotonic() - started
                    acted = True
                elif self.splits < finished:
                    self._lend_a_core()
            if early:
                seconds["post_data_early"] = round(early, 3)
        except BaseException:
            self.cancel.set()
            raise
        finally:
            for worker in workers:
                worker.join()
        seconds["data"] = round(time.monotonic() - clock, 3)
        real = [e for e in self.errors if not isinstance(e, CancelledError)]
        if real or self.errors:
            raise (real or self.errors)[0]
        return seconds


def load_parallel(chunks: Chunks, manifest_segments: list[dict[str, int]], target_url: str,
                  options: LoadOptions, *, dump_bytes: int,
                  file_size: int) -> tuple[LoadResult, None]:
    head = read_head(chunks(stop=min(s["chunk"] for s in manifest_segments)))
    problem = head.streaming_problem()
    if problem:
        raise NotStreamable(problem)
    segments = _segments(manifest_segments, head, dump_bytes, file_size)
    schema = _schema(head, target_url, options)
    try:
        clock = time.monotonic()
        schema.pre_data()
        by_id = head.by_id()
        paused = autovacuum.pause(target_url, autovacuum.largest(
            {(by_id[s.dump_id].namespace, by_id[s.dump_id].tag): s.size for s in segments}))
        seconds = {"pre_data": round(time.monotonic() - clock, 3)}
        loader = _Parallel(chunks, head, schema, target_url, options, segments=segments)
        seconds.update(loader.run())
        clock = time.monotonic()
        schema.post_data(None, options.jobs, "indexes, constraints and ACLs")
        autovacuum.resume(target_url, paused)
        seconds["post_data"] = round(time.monotonic() - clock, 3)
        result = LoadResult(streamed=True, parallel=True, seconds=seconds,
                            failed=schema.failed)
        for copier in loader.copiers:
            result.tables.update(copier.tables)
            result.stats += copier.stats.values()
            result.failed = copier.failed + result.failed
        missing = [e.table_name for e in head.table_data if e.table_name not in result.tables]
        if missing:
            raise IntegrityError(f"no data was loaded for {', '.join(missing)}")
        return result, None
    finally:
        schema.close()


# -- from an anonymous file -----------------------------------------------------------------------

def load_classic(chunks: Chunks, target_url: str,
                 options: LoadOptions) -> tuple[LoadResult, ArchiveStream]:
    """For archives that cannot be streamed: decrypt into an anonymous file, then
    ``pg_restore --jobs`` from it; the rows are counted by the server afterwards."""
    stream = ArchiveStream()
    fd = anonymous_file(options.work_dir)
    try:
        for chunk in chunks():
            stream.feed(chunk)
            write_all(fd, chunk)
        stream.close()
        restore = PgRestore(fd, target_url, options.bin_dir, options.work_dir,
                            options.continue_on_error, head=stream.head)
        clock = time.monotonic()
        restore.run(f"--jobs={max(1, options.jobs)}", what="whole archive")
        result = LoadResult(streamed=False, failed=restore.failed,
                            stats=list(stream.tables.values()),
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
    for chunk in chunks:
        stream.feed(chunk)
    stream.close()
    return stream


def load_archive(chunks: Chunks, target_url: str, *, options: LoadOptions,
                 segments: list[dict[str, int]] | None = None, dump_bytes: int = 0,
                 file_size: int = 0,
                 reset: Callable[[], None] | None = None) -> LoadResult:
    """Restore the archive that ``chunks(start=..., stop=...)`` decrypts into ``target_url``
    (an empty database): in parallel when the backup has ``segments``, else as one stream,
    else (:class:`NotStreamable`) the classic way, after ``reset`` empties the target."""
    try:
        if segments:
            return load_parallel(chunks, segments, target_url, options, dump_bytes=dump_bytes,
                                 file_size=file_size)[0]
        return load_streaming(chunks, target_url, options)[0]
    except NotStreamable as why:
        log.info("archive cannot be streamed (%s): restoring from an anonymous file", why)
        if reset is not None:
            reset()
    return load_classic(chunks, target_url, options)[0]

