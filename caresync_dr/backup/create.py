"""Take one backup: a consistent pg_dump streamed through zstd and AES-256-GCM to a file.

This module opens a REPEATABLE READ transaction, exports its snapshot and runs
``pg_dump --snapshot`` on it, so what it records about the database is read in the dump's own
snapshot. pg_dump writes the custom format uncompressed (-Z0) to a pipe; this process reads it
in 1 MiB blocks, fingerprints every table's COPY data as it passes (``archive.ArchiveStream``:
rows and SHA-256, no query and no lock of its own), compresses (zstd) and encrypts.

Locks: pg_dump takes one AccessShareLock per table it dumps, all in one transaction, and nothing
here adds to them. The server's lock table holds max_locks_per_transaction x (max_connections +
background processes + prepared transactions) locks for all sessions together, roughly 8,000 with
the defaults: a database with more tables than that needs max_locks_per_transaction raised, for
this backup as for plain pg_dump.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, BinaryIO

import psycopg
import zstandard

from caresync_dr.backup.archive import FINGERPRINT_METHOD, ArchiveStream, Reframer, TableStats
from caresync_dr.backup.crypto import EncryptingWriter
from caresync_dr.backup.dbstate import capture
from caresync_dr.backup.errors import BackupError
from caresync_dr.backup.keys import DataKey
from caresync_dr.backup.manifest import DATA_SUFFIX, Manifest, backup_name
from caresync_dr.backup.progress import Progress
from caresync_dr.backup.tools import client_command, pg_tool, text
from caresync_dr.backup.verify import TableFingerprint

log = logging.getLogger(__name__)
READ_SIZE = 1 << 20


@dataclass(frozen=True)
class BackupOptions:
    database_url: str
    local_dir: Path
    key: DataKey
    compress_level: int = 3
    compress_threads: int = 0
    bin_dir: Path | None = None


class HashingWriter:
    """Counts and hashes what passes through to the file."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.out.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)


class _Framer:
    """Compresses the archive into zstd frames that start exactly where pg_dump's data blocks
    start, each at a chunk of its own (:meth:`EncryptingWriter.boundary`): a restore can then
    decrypt and load several tables at once, each from its own place in the file. The segment
    list (manifest ``segments``) says where."""

    def __init__(self, encrypter: EncryptingWriter, options: BackupOptions) -> None:
        self.encrypter = encrypter
        self.options = options
        self.segments: list[dict[str, int]] = []
        self._compressor = self._new()

    def _new(self) -> zstandard.ZstdCompressionObj:
        return zstandard.ZstdCompressor(level=self.options.compress_level,
                                        threads=self.options.compress_threads).compressobj()

    def write(self, data: bytes | memoryview) -> None:
        if data:
            self.encrypter.write(self._compressor.compress(data))

    def new_frame(self, dump_id: int, archive_offset: int) -> None:
        self.encrypter.write(self._compressor.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH))
        self._compressor = self._new()
        chunk, offset = self.encrypter.boundary()
        self.segments.append({"dump_id": dump_id, "archive_offset": archive_offset,
                              "chunk": chunk, "offset": offset})

    def close(self) -> None:
        self.encrypter.write(self._compressor.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH))
        self.encrypter.close()


@dataclass
class _Streamed:
    dump_bytes: int                      # bytes of the archive as stored (re-framed)
    pg_dump_bytes: int                   # bytes pg_dump wrote
    tables: dict[str, TableFingerprint]
    segments: list[dict[str, int]]


def _stream(source: IO[bytes], sink: HashingWriter, options: BackupOptions,
            meta: dict[str, str]) -> _Streamed:
    """Read pg_dump's archive, fingerprint every table, re-frame its data into 1 MiB chunks
    (``archive.Reframer``) with a zstd frame and encrypted chunk of its own per table
    (:class:`_Framer`), compress and encrypt. An archive that cannot be parsed that way (large
    objects) is stored as pg_dump wrote it, in one frame, and restored the classic way."""
    framer = _Framer(EncryptingWriter(sink, options.key.plaintext, options.key.info,
                                      compression="zstd", meta=meta), options)
    progress = Progress("backup: dump read")
    head_reader = ArchiveStream()
    start = bytearray()  # what came before the table of contents was complete
    body: ArchiveStream | _RawBody | None = None
    reframer: Reframer | None = None
    while chunk := source.read(READ_SIZE):
        progress.add(len(chunk))
        if body is not None:
            body.feed(chunk)
            continue
        head_reader.feed(chunk)
        if head_reader.head is None:
            start += chunk
            continue
        start += chunk
        head = head_reader.head
        if head.streaming_problem():
            log.info("archive kept as pg_dump wrote it (%s)", head.streaming_problem())
            framer.write(bytes(start))
            start.clear()
            body = _RawBody(head_reader, framer)
            continue
        reframer = Reframer(framer.write, head, on_block=framer.new_frame)
        body = ArchiveStream(reframer, head=head)
        body.feed(bytes(start[len(head.raw):]))
        start.clear()
    if body is None:
        raise BackupError("pg_dump wrote no complete archive")
    body.close()
    framer.close()
    progress.done()
    stats = body.tables.values()
    return _Streamed(
        dump_bytes=reframer.offset if reframer else progress.total,
        pg_dump_bytes=progress.total,
        tables={s.entry.table_name: TableFingerprint(rows=s.rows, fingerprint=s.fingerprint)
                for s in stats},
        segments=framer.segments)


class _RawBody:
    """The rest of an archive stored as pg_dump wrote it: fingerprinted, then compressed."""

    def __init__(self, reader: ArchiveStream, framer: _Framer) -> None:
        self.reader, self.framer = reader, framer

    @property
    def tables(self) -> dict[int, TableStats]:
        return self.reader.tables

    def feed(self, data: bytes) -> None:
        self.reader.feed(data)
        self.framer.write(data)

    def close(self) -> None:
        self.reader.close()


def take_backup(options: BackupOptions, now: datetime | None = None) -> tuple[Manifest, Path]:
    """Write ``<name>.dump.enc`` and then ``<name>.manifest.json``; returns the manifest."""
    started = now or datetime.now(UTC)
    name = backup_name(started)
    options.local_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_path = options.local_dir / f"{name}{DATA_SUFFIX}"
    if data_path.exists():
        raise BackupError(f"{data_path} already exists; refusing to overwrite a backup")
    partial = data_path.with_name(data_path.name + ".partial")
    pg_dump = pg_tool("pg_dump", options.bin_dir)

    # The name is claimed by creating the partial file exclusively, before anything else: a
    # backup started in the same second (a timer and an operator) must fail without touching
    # this one's file, and only the run that created the partial may remove it.
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BackupError(f"{partial} exists: another backup started in the same second is "
                          "being written (or a killed one left it); not touching it, try "
                          "again") from None
    out_file = os.fdopen(fd, "wb")
    try:
        meta = {"name": name, "started_at": started.isoformat()}
        with psycopg.connect(options.database_url) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            row = conn.execute("SELECT pg_export_snapshot(), current_setting('server_version'), "
                               "current_database()").fetchone()
            assert row is not None
            snapshot, server_version, database = (text(v) for v in row)
            meta["database"] = database
            state = capture(conn)
            log.info("backup %s of database %s (PostgreSQL %s), snapshot %s", name, database,
                     server_version, snapshot)
            dsn, env = client_command(options.database_url)
            with tempfile.TemporaryFile() as errors:
                proc = subprocess.Popen(
                    [pg_dump, "--format=custom", "--compress=0", f"--snapshot={snapshot}",
                     "--dbname", dsn],
                    stdout=subprocess.PIPE, stderr=errors, env=env)
                assert proc.stdout is not None
                stream_error: BackupError | None = None
                try:
                    with out_file as out:
                        sink = HashingWriter(out)
                        try:
                            streamed = _stream(proc.stdout, sink, options, meta)
                        except BackupError as exc:  # pg_dump's own message explains it better
                            stream_error = exc
                        out.flush()
                        os.fsync(out.fileno())
                except BaseException:
                    proc.kill()
                    partial.unlink(missing_ok=True)
                    raise
                finally:
                    proc.wait()
                if proc.returncode == 0 and stream_error is not None:
                    partial.unlink(missing_ok=True)
                    raise BackupError(f"pg_dump's output could not be read: {stream_error}")
                if proc.returncode != 0:
                    partial.unlink(missing_ok=True)
                    errors.seek(0)
                    message = errors.read().decode(errors="replace").strip()
                    raise BackupError(f"pg_dump failed (exit {proc.returncode}): {message}")
        version = subprocess.run([pg_dump, "--version"], capture_output=True, text=True,
                                 check=True).stdout.strip()
        # link, not rename: never replace a backup that appeared under this name meanwhile
        os.link(partial, data_path)
    except FileExistsError:
        out_file.close()
        partial.unlink(missing_ok=True)
        raise BackupError(f"{data_path} already exists; refusing to overwrite a backup") \
            from None
    except BaseException:
        out_file.close()
        partial.unlink(missing_ok=True)
        raise
    partial.unlink()
    manifest = Manifest(
        name=name, database=database, data_file=data_path.name,
        sha256=sink.sha256.hexdigest(), size_bytes=sink.size, dump_bytes=streamed.dump_bytes,
        server_version=server_version, pg_dump_version=version,
        started_at=started.isoformat(), finished_at=datetime.now(UTC).isoformat(),
        key=options.key.info, tables=streamed.tables, fingerprint_method=FINGERPRINT_METHOD,
        database_state=state.to_json(), segments=streamed.segments)
    path = manifest.write(options.local_dir)
    log.info("backup %s complete: %d tables, %d bytes encrypted, manifest %s", name,
             len(streamed.tables), sink.size, path.name)
    return manifest, data_path
