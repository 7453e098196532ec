"""The seed's ``rollback.sh BACKUP``: restore beside the live database, verify, then swap.

Order matters and is the whole point:

1. check the backup (manifest name and start time, size, SHA-256) touching no database;
2. take the restore lock of the live database and clear what killed runs left (``leftovers``);
3. restore into a fresh ``<db>_restore_<ts>`` by streaming the decrypted archive into it
   (``loader``; no plaintext file) or, for a plain ``.sql.gz``, through psql without its
   meta-commands (``plain_sql``);
4. verify: the archive's fingerprints and the server's row counts against the manifest, and a
   restore that holds no user tables or rows is refused;
5. only then swap, in one transaction (``swap``), keeping the live database as
   ``<db>_old_<ts>``. Any failure before step 5 drops the scratch database and leaves the live
   one untouched; nothing is destroyed, so the swap itself is reversible by renaming.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from caresync_dr.backup.crypto import Header
from caresync_dr.backup.errors import BackupError, VerificationError
from caresync_dr.backup.leftovers import clean_leftovers, restore_lock
from caresync_dr.backup.loader import RESTORE_PGOPTIONS, LoadResult, load_archive, scan_only
from caresync_dr.backup.manifest import Manifest
from caresync_dr.backup.plain_sql import SqlScanner, load_plain
from caresync_dr.backup.restore import (
    checked_backup,
    create_database,
    database_exists,
    decrypted_chunks,
    drop_database,
    locate,
    maintenance_url,
    plain_chunks,
    refuse_empty,
    verify_archive,
    verify_load,
)
from caresync_dr.backup.swap import swap
from caresync_dr.backup.tools import dbname_of, with_dbname

log = logging.getLogger(__name__)
MAX_IDENTIFIER_BYTES = 63


@dataclass
class RollbackResult:
    backup: str
    live_database: str
    restored_as: str
    old_database: str | None
    verification: str
    swapped: bool
    dry_run: bool
    seconds: dict[str, float] = field(default_factory=dict)
    leftovers_cleaned: list[str] = field(default_factory=list)
    tables: int = 0
    rows: int = 0

    def summary(self) -> str:
        if self.dry_run:
            return (f"dry run: {self.backup} is intact, decrypts and {self.verification}; "
                    f"would restore into {self.restored_as} and swap it in for "
                    f"{self.live_database}")
        if not self.swapped:
            return (f"restored and verified {self.backup} as {self.restored_as} "
                    f"({self.verification}); live database {self.live_database} not swapped")
        kept = (f"; the previous database is kept as {self.old_database} until you drop it"
                if self.old_database else "")
        return (f"database {self.live_database} restored from {self.backup} "
                f"({self.verification}){kept}")


def _verification_text(manifest: Manifest | None, result: LoadResult | None) -> str:
    if manifest is None:
        return ("plain .sql.gz without a manifest: verification is limited to a load in one "
                "transaction that holds user tables and rows")
    rows = sum(t.rows for t in manifest.tables.values())
    how = ("row counts and fingerprints" if result is None or result.streamed else
           "row counts (counted after the load) and fingerprints")
    return f"{how} of {len(manifest.tables)} tables ({rows} rows) match the manifest"


def _names(live: str, label: str, when: datetime) -> tuple[str, str]:
    """(scratch database, name the live database is kept under) for a run at ``when``."""
    stamp = when.strftime("%Y%m%d_%H%M%S")
    return f"{live}_{label}_{stamp}", f"{live}_old_{stamp}"


def dry_run(backup: Path, master_key_for: Callable[[Header], bytes]) -> tuple[str, int, int]:
    """Check a backup completely without any database: (what was verified, tables, rows)."""
    data, manifest_path = locate(backup)
    if manifest_path is None:
        scanner = SqlScanner()
        for chunk in plain_chunks(data):
            scanner.feed(chunk)
        scanner.close()
        return (f"its SQL ({scanner.line - 1} lines) holds no psql meta-command or statement "
                "acting outside its database", 0, 0)
    manifest = checked_backup(data, manifest_path)
    stream = scan_only(decrypted_chunks(data, manifest, master_key_for))
    problems = verify_archive(manifest, stream)
    if problems:
        raise VerificationError("the backup's data does not match its manifest: "
                                + "; ".join(problems))
    return (_verification_text(manifest, None), len(manifest.tables),
            sum(t.rows for t in manifest.tables.values()))


def rollback(backup: Path, database_url: str, master_key_for: Callable[[Header], bytes], *,
             jobs: int = 2, dry_run_only: bool = False, swap_in: bool = True,
             work_dir: Path | None = None, maintenance_db: str = "postgres",
             now: datetime | None = None, scratch_label: str = "restore",
             allow_empty: bool = False, discard: bool = False) -> RollbackResult:
    """Restore ``backup`` beside ``database_url``'s database, verify it, swap it in.

    ``swap_in=False`` stops after verification and keeps the copy, or drops it with
    ``discard`` (the restore test). Raises :class:`IntegrityError` (backup damaged or renamed),
    :class:`VerificationError` (restored copy differs from the manifest, or is empty),
    :class:`RestoreLockedError`, :class:`BackupError` (load or swap failed); in every case before
    the swap the live database is untouched and the scratch copy is dropped.
    """
    started = now or datetime.now(UTC)
    live = dbname_of(database_url)
    restored, old = _names(live, scratch_label, started)
    for name in (restored, old):
        if len(name.encode()) > MAX_IDENTIFIER_BYTES:  # PostgreSQL would silently truncate it
            raise BackupError(f"database name {name!r} would exceed PostgreSQL's "
                              f"{MAX_IDENTIFIER_BYTES}-byte limit; restore with --no-swap into "
                              "a database with a shorter name")
    seconds: dict[str, float] = {}
    result = RollbackResult(backup=str(backup), live_database=live, restored_as=restored,
                            old_database=None, verification="", swapped=False,
                            dry_run=dry_run_only, seconds=seconds)
    clock = time.monotonic()
    if dry_run_only:
        result.verification, result.tables, result.rows = dry_run(backup, master_key_for)
        seconds["verify"] = round(time.monotonic() - clock, 3)
        return result
    data, manifest_path = locate(backup)
    manifest = checked_backup(data, manifest_path) if manifest_path else None
    seconds["check"] = round(time.monotonic() - clock, 3)
    maint = maintenance_url(database_url, maintenance_db)
    with restore_lock(maint, live) as lock_conn:
        result.leftovers_cleaned = clean_leftovers(lock_conn, live, work_dir)
        for later in range(1, 3600):  # a run in the same second as the last one: the next free
            if not any(database_exists(maint, name) for name in (restored, old)):
                break
            restored, old = _names(live, scratch_label, started + timedelta(seconds=later))
        else:
            raise BackupError(f"database {restored} already exists; refusing to overwrite it")
        result.restored_as = restored
        target = with_dbname(database_url, restored)
        live_exists = database_exists(maint, live)
        create_database(maint, restored)
        try:
            clock = time.monotonic()
            loaded: LoadResult | None = None
            stream = None
            if manifest is None:
                load_plain(plain_chunks(data), target, pgoptions=RESTORE_PGOPTIONS)
            else:
                def reset() -> None:
                    drop_database(maint, restored)
                    create_database(maint, restored)
                loaded, stream = load_archive(
                    lambda: decrypted_chunks(data, manifest, master_key_for), target,
                    jobs=jobs, work_dir=work_dir, reset=reset)
                seconds.update({f"load_{k}": v for k, v in loaded.seconds.items()})
            seconds["load"] = round(time.monotonic() - clock, 3)
            clock = time.monotonic()
            if manifest is not None and loaded is not None and stream is not None:
                problems = verify_archive(manifest, stream) + verify_load(manifest, loaded,
                                                                          target)
                if problems:
                    raise VerificationError("restored database does not match the backup's "
                                            "manifest: " + "; ".join(problems))
            if not allow_empty:
                refuse_empty(target, "the backup" if manifest else "the plain SQL backup")
            seconds["verify"] = round(time.monotonic() - clock, 3)
            result.verification = _verification_text(manifest, loaded)
            if manifest is not None:
                result.tables = len(manifest.tables)
                result.rows = sum(t.rows for t in manifest.tables.values())
            log.info("restored copy %s verified: %s", restored, result.verification)
            if swap_in:
                clock = time.monotonic()
                swap(maint, live, restored, old, live_exists)
                seconds["swap"] = round(time.monotonic() - clock, 3)
                result.swapped = True
                result.old_database = old if live_exists else None
            elif discard:
                drop_database(maint, restored)
        except BaseException:
            if not result.swapped:
                log.info("dropping the scratch database %s; %s is untouched", restored, live)
                drop_database(maint, restored)
            raise
    if result.swapped:
        log.info("swapped: %s is now the restored copy%s", live,
                 f", previous kept as {old}" if live_exists else " (there was no live database)")
    return result

