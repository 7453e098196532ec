"""Restore steps, each usable alone: prepare (verify + decrypt), load, verify, swap, drop.

``prepare`` touches no database. It checks the file against the manifest's checksum, then
decrypts and decompresses the whole backup into a private work file: every chunk is authenticated
and truncation is detected before anything is restored. The plaintext archive is needed on disk
because ``pg_restore --jobs`` (parallel restore) needs a seekable archive; it is created mode 600
in a private temp directory and removed when the restore ends (put ``--work-dir`` on an encrypted
volume). A plain ``.sql.gz`` (the seed's format) is decompressed the same way, which checks its
gzip CRC; it has no manifest, so its verification is limited to a successful load.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import psycopg
import zstandard
from psycopg import sql

from caresync_dr.backup.crypto import Header, decrypt_stream
from caresync_dr.backup.errors import BackupError, BackupNotFoundError, IntegrityError
from caresync_dr.backup.manifest import DATA_SUFFIX, MANIFEST_SUFFIX, Manifest, read_manifest
from caresync_dr.backup.progress import Progress, human_bytes
from caresync_dr.backup.storage import latest_local
from caresync_dr.backup.tools import client_command, pg_tool, with_dbname
from caresync_dr.backup.verify import compare, fingerprints_of

log = logging.getLogger(__name__)
READ_SIZE = 1 << 20


@dataclass(frozen=True)
class PreparedBackup:
    """A verified, decrypted backup ready to load. ``manifest`` is None for a plain .sql.gz."""

    source: Path
    archive: Path
    kind: str  # "custom" (pg_restore archive) or "sql" (plain SQL for psql)
    manifest: Manifest | None


def locate(argument: Path) -> tuple[Path, Path | None]:
    """The data file and manifest for what an operator passed: data file, manifest, name, or a
    backup directory (its newest complete backup)."""
    if argument.is_dir():
        newest = latest_local(argument)
        log.info("newest backup in %s is %s", argument, newest.name)
        return newest.data, newest.manifest
    text = str(argument)
    if text.endswith(".sql.gz") or text.endswith(".sql"):
        if not argument.is_file():
            raise BackupNotFoundError(f"backup {argument} does not exist")
        return argument, None
    for suffix in (DATA_SUFFIX, MANIFEST_SUFFIX):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
    data, manifest = Path(text + DATA_SUFFIX), Path(text + MANIFEST_SUFFIX)
    if not data.is_file():
        raise BackupNotFoundError(f"backup {data} does not exist")
    if not manifest.is_file():
        raise BackupNotFoundError(f"manifest {manifest} does not exist; an encrypted backup is "
                                  "only restored with its manifest (checksum and fingerprints)")
    return data, manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as inp:
        while block := inp.read(READ_SIZE):
            digest.update(block)
    return digest.hexdigest()


def _private_file(directory: Path, name: str) -> Path:
    path = directory / name
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return path


def _decrypt_to(data: Path, target: Path, master_key_for: Callable[[Header], bytes]) -> int:
    """Decrypt and decompress into ``target``; a writer thread overlaps disk writes with the
    decompression (both release the GIL). The bounded queue keeps memory flat."""
    progress = Progress("restore: decrypt")
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    pending: queue.Queue[bytes | None] = queue.Queue(maxsize=4)
    write_errors: list[OSError] = []

    def writer(out: BinaryIO) -> None:
        while (block := pending.get()) is not None:
            if not write_errors:
                try:
                    out.write(block)
                except OSError as exc:  # e.g. disk full: reported by the main thread
                    write_errors.append(exc)

    with data.open("rb") as inp, target.open("wb") as out:
        thread = threading.Thread(target=writer, args=(out,), name="restore-writer")
        thread.start()
        try:
            for chunk in decrypt_stream(inp, master_key_for):
                plain = decompressor.decompress(chunk)
                pending.put(plain)
                progress.add(len(plain))
                if write_errors:
                    break
        except zstandard.ZstdError as exc:
            raise IntegrityError(f"backup decrypts but does not decompress: {exc}") from exc
        finally:
            pending.put(None)
            thread.join()
        if write_errors:
            raise BackupError(f"cannot write the decrypted archive to {target}: "
                              f"{write_errors[0].strerror}")
        if not decompressor.eof:
            raise IntegrityError("backup decrypts but its compressed stream is incomplete")
    progress.done()
    return progress.total


def _gunzip_to(data: Path, target: Path) -> int:
    progress = Progress("restore: gunzip")
    try:
        with gzip.open(data, "rb") as inp, target.open("wb") as out:
            while block := inp.read(READ_SIZE):
                out.write(block)
                progress.add(len(block))
    except (OSError, EOFError, zlib.error) as exc:
        raise IntegrityError(f"{data} is not a complete gzip file: {exc}") from exc
    progress.done()
    return progress.total


@contextmanager
def prepared(argument: Path, master_key_for: Callable[[Header], bytes],
             work_dir: Path | None = None,
             bin_dir: Path | None = None) -> Iterator[PreparedBackup]:
    """Verify and decrypt into a private temp dir; removed (with the plaintext) on exit."""
    data, manifest_path = locate(argument)
    private = Path(tempfile.mkdtemp(prefix="caresync-restore-", dir=work_dir))
    try:
        if manifest_path is None:
            archive = _private_file(private, "backup.sql")
            if str(data).endswith(".gz"):
                _gunzip_to(data, archive)
            else:
                shutil.copyfile(data, archive)
            yield PreparedBackup(data, archive, "sql", None)
            return
        manifest = read_manifest(manifest_path)
        size = data.stat().st_size
        if size != manifest.size_bytes:
            raise IntegrityError(f"{data.name} is {size} bytes, the manifest says "
                                 f"{manifest.size_bytes}: truncated or replaced")
        checksum = _sha256(data)
        if checksum != manifest.sha256:
            raise IntegrityError(f"{data.name} fails its checksum (sha256 {checksum[:16]}..., "
                                 f"manifest {manifest.sha256[:16]}...): corrupt or modified")
        log.info("checksum of %s matches the manifest", data.name)
        archive = _private_file(private, "backup.dump")
        written = _decrypt_to(data, archive, master_key_for)
        if written != manifest.dump_bytes:
            raise IntegrityError(f"decrypted dump is {written} bytes, manifest says "
                                 f"{manifest.dump_bytes}")
        toc = subprocess.run([pg_tool("pg_restore", bin_dir), "--list", str(archive)],
                             capture_output=True, text=True, check=False)
        if toc.returncode != 0:
            raise IntegrityError(f"decrypted archive is not readable by pg_restore: "
                                 f"{toc.stderr.strip()}")
        log.info("backup %s decrypted and authenticated (%d bytes)", manifest.name, written)
        yield PreparedBackup(data, archive, "custom", manifest)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def database_exists(maintenance_url: str, name: str) -> bool:
    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                            (name,)).fetchone() is not None


def create_database(maintenance_url: str, name: str) -> None:
    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
            sql.Identifier(name)))


def drop_database(maintenance_url: str, name: str) -> None:
    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


# Session settings for the restore's own connections (never the server's configuration): bigger
# sort memory makes index builds faster; work_mem lets the foreign-key validation queries
# (ALTER TABLE ADD FOREIGN KEY joins both tables) hash in memory instead of spilling to disk;
# a crash mid-restore is harmless (the scratch database is dropped and redone).
RESTORE_PGOPTIONS = ("-c maintenance_work_mem=512MB -c work_mem=128MB "
                     "-c synchronous_commit=off")


def load(prepared_backup: PreparedBackup, target_url: str, jobs: int = 2,
         bin_dir: Path | None = None, progress_seconds: float = 10.0) -> None:
    """Load into an existing, empty database; raise with pg_restore's/psql's own message."""
    dsn, env = client_command(target_url)
    env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " " + RESTORE_PGOPTIONS).strip()
    if prepared_backup.kind == "custom":
        argv = [pg_tool("pg_restore", bin_dir), "--exit-on-error",
                f"--jobs={max(1, jobs)}", "--dbname", dsn, str(prepared_backup.archive)]
    else:
        argv = [pg_tool("psql", bin_dir), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                "--single-transaction", "--dbname", dsn, "-f", str(prepared_backup.archive)]
    log.info("loading with %s (jobs=%d)", Path(argv[0]).name, jobs)
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=errors, env=env)
        started = time.monotonic()
        while True:
            try:
                proc.wait(timeout=progress_seconds)
                break
            except subprocess.TimeoutExpired:
                log.info("loading: %.0f s, restored database is %s", time.monotonic() - started,
                         human_bytes(_database_size(target_url)))
        errors.seek(0)
        message = errors.read().decode(errors="replace").strip()
    if proc.returncode != 0:
        raise BackupError(f"{Path(argv[0]).name} failed (exit {proc.returncode}): "
                          f"{message[-2000:]}")
    log.info("loaded in %.1f s; database is %s", time.monotonic() - started,
             human_bytes(_database_size(target_url)))


def _database_size(url: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            return int(row[0]) if row else 0
    except psycopg.Error:
        return 0


def verify_restored(prepared_backup: PreparedBackup, target_url: str) -> list[str]:
    """Differences between the restored database and the manifest (empty: identical)."""
    if prepared_backup.manifest is None:
        return []
    return compare(prepared_backup.manifest.tables, fingerprints_of(target_url))


def swap(maintenance_url: str, live: str, restored: str, old: str, live_exists: bool) -> None:
    """Put ``restored`` in place of ``live``; the live one becomes ``old``. One transaction.

    New connections to the live database are refused and existing ones terminated first (a
    database cannot be renamed while in use); both renames commit together or not at all.
    """
    ident = sql.Identifier
    with psycopg.connect(maintenance_url, autocommit=True) as conn:
        if live_exists:
            conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(ident(live)))
            try:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                             "WHERE datname = %s AND pid <> pg_backend_pid()", (live,))
                with conn.transaction():
                    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        ident(live), ident(old)))
                    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        ident(restored), ident(live)))
            finally:
                name = old if database_exists(maintenance_url, old) else live
                conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(
                    ident(name)))
        else:
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                ident(restored), ident(live)))


def maintenance_url(database_url: str, maintenance_db: str = "postgres") -> str:
    return with_dbname(database_url, maintenance_db)
