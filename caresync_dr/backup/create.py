"""Take one backup: a consistent pg_dump streamed through zstd and AES-256-GCM to a file.

pg_dump exports nothing itself here: this module opens a REPEATABLE READ transaction, exports its
snapshot, runs ``pg_dump --snapshot`` on it, and computes the per-table fingerprints in the same
snapshot (concurrently, on its own connection), so the manifest describes exactly the dumped data
even while the application writes. pg_dump writes the custom format uncompressed (-Z0) to a pipe;
compression (zstd) and encryption happen in this process, one chunk at a time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, BinaryIO

import psycopg
import zstandard
from psycopg import sql

from caresync_dr.backup.crypto import EncryptingWriter
from caresync_dr.backup.errors import BackupError
from caresync_dr.backup.keys import DataKey
from caresync_dr.backup.manifest import DATA_SUFFIX, Manifest, backup_name
from caresync_dr.backup.progress import Progress
from caresync_dr.backup.tools import client_command, pg_tool
from caresync_dr.backup.verify import TableFingerprint, table_fingerprints

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


def _stream(source: IO[bytes], sink: HashingWriter, options: BackupOptions) -> int:
    encrypter = EncryptingWriter(sink, options.key.plaintext, options.key.info,
                                 compression="zstd")
    compressor = zstandard.ZstdCompressor(level=options.compress_level,
                                          threads=options.compress_threads).compressobj()
    progress = Progress("backup: dump read")
    while chunk := source.read(READ_SIZE):
        progress.add(len(chunk))
        encrypter.write(compressor.compress(chunk))
    encrypter.write(compressor.flush())
    encrypter.close()
    progress.done()
    return progress.total


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

    with psycopg.connect(options.database_url) as conn, \
            psycopg.connect(options.database_url) as fp_conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        row = conn.execute("SELECT pg_export_snapshot(), current_setting('server_version'), "
                           "current_database()").fetchone()
        assert row is not None
        snapshot, server_version, database = (str(v) for v in row)
        log.info("backup %s of database %s (PostgreSQL %s), snapshot %s", name, database,
                 server_version, snapshot)

        # Fingerprints in the same snapshot, on a second connection, while pg_dump streams.
        fp_conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        fp_conn.read_only = True
        fp_conn.execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
        tables: dict[str, TableFingerprint] = {}
        failure: list[BaseException] = []

        def fingerprint() -> None:
            try:
                tables.update(table_fingerprints(fp_conn))
            except BaseException as exc:  # re-raised in the main thread
                failure.append(exc)

        worker = threading.Thread(target=fingerprint, name="fingerprints")
        worker.start()
        dsn, env = client_command(options.database_url)
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(
                [pg_dump, "--format=custom", "--compress=0", f"--snapshot={snapshot}",
                 "--dbname", dsn],
                stdout=subprocess.PIPE, stderr=errors, env=env)
            assert proc.stdout is not None
            try:
                fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    sink = HashingWriter(out)
                    dump_bytes = _stream(proc.stdout, sink, options)
                    out.flush()
                    os.fsync(out.fileno())
            except BaseException:
                proc.kill()
                partial.unlink(missing_ok=True)
                raise
            finally:
                proc.wait()
            if proc.returncode != 0:
                partial.unlink(missing_ok=True)
                errors.seek(0)
                message = errors.read().decode(errors="replace").strip()
                raise BackupError(f"pg_dump failed (exit {proc.returncode}): {message}")
        worker.join()
        if failure:
            partial.unlink(missing_ok=True)
            raise BackupError(f"fingerprinting failed: {failure[0]}")

    version = subprocess.run([pg_dump, "--version"], capture_output=True, text=True,
                             check=True).stdout.strip()
    partial.replace(data_path)
    manifest = Manifest(
        name=name, database=database, data_file=data_path.name,
        sha256=sink.sha256.hexdigest(), size_bytes=sink.size, dump_bytes=dump_bytes,
        server_version=server_version, pg_dump_version=version,
        started_at=started.isoformat(), finished_at=datetime.now(UTC).isoformat(),
        key=options.key.info, tables=tables)
    path = manifest.write(options.local_dir)
    log.info("backup %s complete: %d tables, %d bytes encrypted, manifest %s", name,
             len(tables), sink.size, path.name)
    return manifest, data_path
