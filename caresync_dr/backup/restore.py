"""Restore building blocks: find and check a backup, decrypt it as a stream, verify a load.

Checking a backup reads no plaintext and touches no database: the size and SHA-256 of the file
against its manifest, and the manifest's own name and start time against the file's name (a
backup copied under a newer name must not pass for a newer backup; issue 10 item 3). Decryption
is a stream of authenticated chunks (``crypto.decrypt_stream``), decompressed as it goes; the
plaintext exists only in memory and in the server it is loaded into (``loader``).

A plain ``.sql``/``.sql.gz`` (the seed's format) streams the same way through
``plain_sql``; it has no manifest, so its verification is limited to a load that is not empty.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import zstandard
from psycopg import sql

from caresync_dr.backup.archive import TableStats
from caresync_dr.backup.crypto import Header, decrypt_stream, read_header
from caresync_dr.backup.errors import BackupNotFoundError, IntegrityError, VerificationError
from caresync_dr.backup.loader import LoadResult
from caresync_dr.backup.manifest import (
    DATA_SUFFIX,
    FINGERPRINT_V1,
    MANIFEST_SUFFIX,
    Manifest,
    name_time,
    read_manifest,
)
from caresync_dr.backup.progress import Progress
from caresync_dr.backup.storage import latest_local
from caresync_dr.backup.tools import text, with_dbname
from caresync_dr.backup.verify import compare, fingerprints_of

log = logging.getLogger(__name__)
READ_SIZE = 1 << 20


def _missing(path: Path) -> str:
    """Why ``path`` is not a backup file: a FIFO, a device or a dangling link is not missing."""
    if path.exists():
        return "is not a regular file (a device, a FIFO or a socket)"
    if path.is_symlink():
        return "is a symbolic link to nothing"
    return "does not exist"


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
            raise BackupNotFoundError(f"backup {argument} {_missing(argument)}")
        return argument, None
    for suffix in (DATA_SUFFIX, MANIFEST_SUFFIX):
        if text.endswith(suffix):
            text = text[: -len(suffix)]
    data, manifest = Path(text + DATA_SUFFIX), Path(text + MANIFEST_SUFFIX)
    if not data.is_file():
        raise BackupNotFoundError(f"backup {data} {_missing(data)}")
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


def started_at(manifest: Manifest) -> datetime:
    """When the backup was taken, from its manifest (UTC)."""
    try:
        return datetime.fromisoformat(manifest.started_at)
    except ValueError:
        raise IntegrityError(f"manifest {manifest.name} has an invalid start time "
                             f"{manifest.started_at!r}") from None


def check_identity(data: Path, manifest: Manifest) -> None:
    """The file's name, the manifest's name and its start time must all agree: a backup's age
    is decided by what the manifest says, and a renamed copy is refused."""
    stem = data.name[: -len(DATA_SUFFIX)] if data.name.endswith(DATA_SUFFIX) else data.name
    if manifest.name != stem or manifest.data_file != data.name:
        raise IntegrityError(
            f"{data.name} is not the backup its manifest describes ({manifest.data_file}, taken "
            f"{manifest.started_at}): a copy under another name; restore the original name, "
            "refusing to pass an older backup off as a newer one")
    taken, named = started_at(manifest), name_time(manifest.name)
    if named is None or abs((taken - named).total_seconds()) >= 1:
        raise IntegrityError(f"manifest {manifest.name} says it was started at "
                             f"{manifest.started_at}, which its name contradicts")


def header_time(data: Path, manifest: Manifest) -> datetime:
    """The start time recorded in the encrypted file's header, else the manifest's: for
    reporting an age even when the two disagree."""
    try:
        with data.open("rb") as inp:
            meta = read_header(inp).meta
        if meta.get("started_at"):
            return datetime.fromisoformat(str(meta["started_at"]))
    except (OSError, ValueError, IntegrityError):
        pass
    return started_at(manifest)


def taken_at(data: Path, manifest: Manifest) -> datetime:
    """When the backup in ``data`` was taken: the start time the encrypted file's header
    records (authenticated with the data when it is decrypted), which the manifest and the
    file name must agree with; :class:`IntegrityError` if they do not."""
    check_identity(data, manifest)
    with data.open("rb") as inp:
        header = read_header(inp)
    _check_header(header, manifest)
    return started_at(manifest)


def checked_backup(data: Path, manifest_path: Path) -> Manifest:
    """The manifest of a backup whose file is intact (size, SHA-256) and correctly named."""
    manifest = sized_backup(data, manifest_path)
    verify_checksum(data, manifest)
    taken_at(data, manifest)
    return manifest


def sized_backup(data: Path, manifest_path: Path) -> Manifest:
    """The manifest of a backup whose file has its manifest's name and size; its contents are
    not read (:func:`verify_checksum` or :class:`ChecksumInBackground`, then :func:`taken_at`)."""
    manifest = read_manifest(manifest_path)
    check_identity(data, manifest)
    size = data.stat().st_size
    if size != manifest.size_bytes:
        raise IntegrityError(f"{data.name} is {size} bytes, the manifest says "
                             f"{manifest.size_bytes}: truncated or replaced")
    return manifest


def verify_checksum(data: Path, manifest: Manifest) -> None:
    """:class:`IntegrityError` unless the file's SHA-256 is the manifest's."""
    checksum = _sha256(data)
    if checksum != manifest.sha256:
        raise IntegrityError(f"{data.name} fails its checksum (sha256 {checksum[:16]}..., "
                             f"manifest {manifest.sha256[:16]}...): corrupt or modified")
    log.info("checksum of %s matches the manifest", data.name)


class ChecksumInBackground:
    """The file's SHA-256 against its manifest, computed in a thread while the restore goes on
    (hashlib and file reads release the GIL), so it costs no wall-clock time at the start.

    Every chunk the restore decrypts is authenticated on its own (AES-GCM), so nothing
    unverified is loaded either way; this is the whole-file check on top. The caller must call
    :meth:`verified` before it reports success or swaps anything in."""

    def __init__(self, data: Path, manifest: Manifest) -> None:
        self.data, self.manifest = data, manifest
        self.seconds = 0.0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="checksum", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        clock = time.monotonic()
        try:
            verify_checksum(self.data, self.manifest)
        except BaseException as exc:  # raised in the caller's thread by verified()
            self._error = exc
        self.seconds = time.monotonic() - clock

    def verified(self) -> None:
        """Wait for the checksum; raise :class:`IntegrityError` (or the read's error) if the
        file is not the one the manifest describes."""
        self._thread.join()
        if self._error is not None:
            raise self._error


def _check_header(header: Header, manifest: Manifest) -> None:
    """The encrypted header's own record of the backup (authenticated with the data) must be
    the manifest's: catches a manifest renamed along with the file."""
    meta = header.meta
    if meta and (meta.get("name") != manifest.name
                 or meta.get("started_at") != manifest.started_at):
        raise IntegrityError(
            f"the encrypted data is backup {meta.get('name')} taken {meta.get('started_at')}, "
            f"but its manifest says {manifest.name} taken {manifest.started_at}: refusing a "
            "renamed or edited manifest")


def decompressed(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """zstd-decompress a stream of one or more frames (backups with segments have one frame
    per data block); :class:`IntegrityError` if the last frame is incomplete."""
    decompressor = zstandard.ZstdDecompressor()
    current: zstandard.ZstdDecompressionObj | None = None  # None: between two frames
    try:
        for chunk in chunks:
            data = chunk
            while data:
                if current is None:
                    current = decompressor.decompressobj()
                plain = current.decompress(data)
                if plain:
                    yield plain
                if not current.eof:
                    break
                data, current = current.unused_data, None
    except zstandard.ZstdError as exc:
        raise IntegrityError(f"backup decrypts but does not decompress: {exc}") from exc
    if current is not None:
        raise IntegrityError("backup decrypts but its compressed stream is incomplete")


def decrypted_chunks(data: Path, manifest: Manifest,
                     master_key_for: Callable[[Header], bytes], *,
                     start: tuple[int, int] | None = None,
                     stop: int | None = None) -> Iterator[bytes]:
    """The backup's plaintext archive, chunk by chunk, each authenticated before it is yielded;
    :class:`IntegrityError` on any damage (truncation is detected at the end). ``start`` and
    ``stop`` read one segment (``manifest.segments``) instead of the whole archive."""
    progress = Progress("restore: decrypt")

    def key_for(header: Header) -> bytes:
        _check_header(header, manifest)
        return master_key_for(header)

    with data.open("rb") as inp:
        for plain in decompressed(decrypt_stream(inp, key_for, start=start, stop=stop)):
            progress.add(len(plain))
            yield plain
    if start is None and stop is None and progress.total != manifest.dump_bytes:
        raise IntegrityError(f"decrypted dump is {progress.total} bytes, manifest says "
                             f"{manifest.dump_bytes}")
    progress.done()


def plain_chunks(data: Path) -> Iterator[bytes]:
    """A plain ``.sql`` or ``.sql.gz`` as a stream (gzip's CRC checked at its end)."""
    progress = Progress("restore: read")
    try:
        with (gzip.open(data, "rb") if data.name.endswith(".gz") else data.open("rb")) as inp:
            while block := inp.read(READ_SIZE):
                progress.add(len(block))
                yield block
    except (OSError, EOFError, zlib.error) as exc:
        raise IntegrityError(f"{data} is not a complete gzip file: {exc}") from exc
    progress.done()


def verify_archive(manifest: Manifest, stats: Iterable[TableStats]) -> list[str]:
    """Differences between what the archive holds (each table's stats as it streamed by) and
    what the manifest recorded (v2)."""
    if manifest.fingerprint_method == FINGERPRINT_V1:
        return []  # v1 fingerprints are the server's: checked after the load
    problems = []
    seen = {s.entry.table_name: s for s in stats}
    for name in sorted(set(manifest.tables) - set(seen)):
        problems.append(f"table {name} is in the manifest but not in the archive")
    for name in sorted(set(seen) - set(manifest.tables)):
        problems.append(f"table {name} is in the archive but not in the manifest")
    for name in sorted(set(seen) & set(manifest.tables)):
        want, got = manifest.tables[name], seen[name]
        if want.rows != got.rows:
            problems.append(f"table {name}: the archive holds {got.rows} rows, the manifest "
                            f"recorded {want.rows}")
        elif want.fingerprint != got.fingerprint:
            problems.append(f"table {name}: its data's SHA-256 differs from the manifest's "
                            "(same row count)")
    return problems


def verify_load(manifest: Manifest, result: LoadResult, target_url: str) -> list[str]:
    """Differences between the restored database and the manifest; empty means identical.

    v2: every table's rows as the server counted them (its COPY result, or ``count(*)`` after a
    classic load) against the manifest; the streamed bytes were checked by
    :func:`verify_archive`. v1: the server's fingerprints of the restored tables (a full read).
    """
    if manifest.fingerprint_method == FINGERPRINT_V1:
        return compare(manifest.tables, fingerprints_of(target_url))
    problems = []
    for name in sorted(manifest.tables):
        loaded = result.tables.get(name)
        if loaded is None:
            problems.append(f"table {name} was not loaded")
        elif loaded.error:
            problems.append(f"table {name} did not load: {loaded.error}")
        elif loaded.rows_loaded != manifest.tables[name].rows:
            problems.append(f"table {name}: {loaded.rows_loaded} rows restored, backup "
                            f"recorded {manifest.tables[name].rows}")
    return problems


def user_data_summary(target_url: str) -> tuple[int, bool]:
    """(number of user tables, whether any of them holds a row) in a database."""
    with psycopg.connect(target_url) as conn:
        tables = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', "
            "'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' "
            "AND n.nspname NOT LIKE 'pg\\_temp%'").fetchall()
        for schema, table in tables:
            row = conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(
                sql.Identifier(text(schema), text(table)))).fetchone()
            if row and row[0]:
                return len(tables), True
        return len(tables), False


def refuse_empty(target_url: str, what: str) -> None:
    """A restore that produced no user table, or tables without a single row, is not swapped
    in: the live database would be replaced by an empty one (issue 10 item 1)."""
    tables, has_rows = user_data_summary(target_url)
    if tables == 0:
        raise VerificationError(f"{what} restored no user tables at all: an empty or "
                                "truncated backup; refusing to use it (--allow-empty to "
                                "restore an empty database on purpose)")
    if not has_rows:
        raise VerificationError(f"{what} restored {tables} table(s) without a single row; "
                                "refusing to use it (--allow-empty to restore an empty "
                                "database on purpose)")


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


def maintenance_url(database_url: str, maintenance_db: str = "postgres") -> str:
    return with_dbname(database_url, maintenance_db)
