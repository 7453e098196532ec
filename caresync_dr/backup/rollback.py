"""The seed's ``rollback.sh BACKUP``: restore beside the live database, verify, then swap.

Order matters and is the whole point: (1) verify checksum and decrypt everything, (2) restore into
a fresh ``<db>_restore_<ts>``, (3) verify row counts and fingerprints against the manifest, (4) only
then rename the live database to ``<db>_old_<ts>`` and the restored one into its place. Any failure
before step 4 drops the scratch database and leaves the live one untouched. Nothing is destroyed:
the old database stays until the operator drops it, so the swap itself is reversible by renaming.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from caresync_dr.backup.crypto import Header
from caresync_dr.backup.errors import BackupError, VerificationError
from caresync_dr.backup.restore import (
    create_database,
    database_exists,
    drop_database,
    load,
    maintenance_url,
    prepared,
    swap,
    verify_restored,
)
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

    def summary(self) -> str:
        if self.dry_run:
            return (f"dry run: {self.backup} is intact and decrypts; would restore into "
                    f"{self.restored_as}, verify ({self.verification}) and swap it in for "
                    f"{self.live_database}")
        if not self.swapped:
            return (f"restored and verified {self.backup} as {self.restored_as} "
                    f"({self.verification}); live database {self.live_database} not swapped")
        kept = (f"; the previous database is kept as {self.old_database} until you drop it"
                if self.old_database else "")
        return (f"database {self.live_database} restored from {self.backup} "
                f"({self.verification}){kept}")


def rollback(backup: Path, database_url: str, master_key_for: Callable[[Header], bytes], *,
             jobs: int = 2, dry_run: bool = False, swap_in: bool = True,
             work_dir: Path | None = None, maintenance_db: str = "postgres",
             now: datetime | None = None, scratch_label: str = "restore") -> RollbackResult:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d_%H%M%S")
    live = dbname_of(database_url)
    maint = maintenance_url(database_url, maintenance_db)
    restored, old = f"{live}_{scratch_label}_{stamp}", f"{live}_old_{stamp}"
    for name in (restored, old):
        if len(name.encode()) > MAX_IDENTIFIER_BYTES:  # PostgreSQL would silently truncate it
            raise BackupError(f"database name {name!r} would exceed PostgreSQL's "
                              f"{MAX_IDENTIFIER_BYTES}-byte limit; restore with --no-swap into "
                              "a database with a shorter name")
    seconds: dict[str, float] = {}
    clock = time.monotonic()
    with prepared(backup, master_key_for, work_dir) as ready:
        seconds["verify_and_decrypt"] = time.monotonic() - clock
        verification = ("row counts and fingerprints of "
                        f"{len(ready.manifest.tables)} tables match the manifest"
                        if ready.manifest else
                        "plain .sql.gz without a manifest: verification is limited to a "
                        "successful load")
        result = RollbackResult(backup=str(backup), live_database=live, restored_as=restored,
                                old_database=None, verification=verification, swapped=False,
                                dry_run=dry_run, seconds=seconds)
        if dry_run:
            return result
        for name in (restored, old):
            if database_exists(maint, name):
                raise BackupError(f"database {name} already exists; refusing to overwrite it")
        live_exists = database_exists(maint, live)
        create_database(maint, restored)
        try:
            clock = time.monotonic()
            load(ready, with_dbname(database_url, restored), jobs=jobs)
            seconds["load"] = time.monotonic() - clock
            clock = time.monotonic()
            problems = verify_restored(ready, with_dbname(database_url, restored))
            seconds["verify"] = time.monotonic() - clock
            if problems:
                raise VerificationError("restored database does not match the backup's "
                                        "manifest: " + "; ".join(problems))
            log.info("restored copy %s verified: %s", restored, verification)
        except BaseException:
            log.info("dropping the scratch database %s; %s is untouched", restored, live)
            drop_database(maint, restored)
            raise
    if not swap_in:
        return result
    clock = time.monotonic()
    swap(maint, live, restored, old, live_exists)
    seconds["swap"] = time.monotonic() - clock
    result.swapped = True
    result.old_database = old if live_exists else None
    log.info("swapped: %s is now the restored copy%s", live,
             f", previous kept as {old}" if live_exists else " (there was no live database)")
    return result
