"""The seed's ``rollback.sh BACKUP``: restore beside the live database, verify, then swap.

Order matters and is the whole point:

1. check the backup (manifest name and start time, size) touching no database; its SHA-256 is
   computed in a thread while the next steps run (``ChecksumInBackground``) and must match
   before the verification of step 4 (a damaged file is the error reported, whatever failed
   first);
2. take the restore lock of the live database, clear what killed runs left (``leftovers``), and
   check that the restoring role can recreate everything (``preflight``): a missing live
   database needs ``--create`` (a misspelled name must not restore into a new database);
3. restore into a fresh ``<db>_restore_<ts>`` created like the backed-up database (encoding,
   locale, owner: ``dbstate``), by streaming the decrypted archive into it (``loader``; no
   plaintext file) or, for a plain ``.sql.gz``, through psql without its powers
   (``plain_sql``); then the database's settings, comment, connection limit and ACL;
4. verify: the archive's fingerprints, the server's row counts and the database's own state
   against the manifest, field by field; a restore without user tables or rows is refused;
5. only then swap, in one transaction (``swap``), keeping the live database as
   ``<db>_old_<ts>``. Any failure before step 5 drops the scratch database and leaves the live
   one untouched; nothing is destroyed, so the swap itself is reversible by renaming.

``--continue-on-error`` restores what it can: every object that fails is listed, the copy is
swapped in only if all the data verified, and the command exits 1.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from caresync_dr.backup.archive import ArchiveHead
from caresync_dr.backup.crypto import Header
from caresync_dr.backup.dbstate import (
    DatabaseState,
    apply_statements,
    create_statement,
    differences,
    extensions_of,
    restored_state,
)
from caresync_dr.backup.errors import BackupError, UsageError, VerificationError
from caresync_dr.backup.leftovers import clean_leftovers, restore_lock
from caresync_dr.backup.loader import (
    RESTORE_PGOPTIONS,
    LoadOptions,
    LoadResult,
    load_archive,
    read_head,
    scan_only,
)
from caresync_dr.backup.manifest import Manifest
from caresync_dr.backup.plain_sql import SqlScanner, load_plain
from caresync_dr.backup.preflight import Finding, preflight
from caresync_dr.backup.restore import (
    ChecksumInBackground,
    checked_backup,
    create_database,
    database_exists,
    decrypted_chunks,
    drop_database,
    locate,
    maintenance_url,
    plain_chunks,
    refuse_empty,
    sized_backup,
    taken_at,
    verify_archive,
    verify_load,
)
from caresync_dr.backup.swap import swap
from caresync_dr.backup.tools import dbname_of, with_dbname

log = logging.getLogger(__name__)
MAX_IDENTIFIER_BYTES = 63


class PreflightError(BackupError):
    """The restoring role cannot recreate what the backup holds; ``findings`` say how to fix."""

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = findings
        super().__init__(f"the restore would fail: {len(findings)} problem(s) with this role's "
                         "privileges on the target: " + "; ".join(map(str, findings)))


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
    loaded_as: str = ""  # "parallel segments", "one stream", "anonymous file" or "psql"
    preflight: list[str] = field(default_factory=list)
    failed_objects: list[str] = field(default_factory=list)  # --continue-on-error
    problems: list[str] = field(default_factory=list)        # --continue-on-error

    @property
    def complete(self) -> bool:
        return not (self.failed_objects or self.problems)

    def summary(self) -> str:
        if self.dry_run:
            return (f"dry run: {self.backup} is intact, decrypts and {self.verification}; "
                    f"would restore into {self.restored_as} and swap it in for "
                    f"{self.live_database}")
        missing = (f"; {len(self.failed_objects)} object(s) did not restore and "
                   f"{len(self.problems)} verification problem(s) (listed in the report)"
                   if not self.complete else "")
        if not self.swapped:
            return (f"restored {self.backup} as {self.restored_as} ({self.verification}); "
                    f"live database {self.live_database} not swapped{missing}")
        kept = (f"; the previous database is kept as {self.old_database} until you drop it"
                if self.old_database else "")
        return (f"database {self.live_database} restored from {self.backup} "
                f"({self.verification}){kept}{missing}")


def _verification_text(manifest: Manifest | None, result: LoadResult | None) -> str:
    if manifest is None:
        return ("plain .sql.gz without a manifest: verification is limited to a load in one "
                "transaction that holds user tables and rows")
    rows = sum(t.rows for t in manifest.tables.values())
    how = ("row counts and fingerprints" if result is None or result.streamed else
           "row counts (counted after the load) and fingerprints")
    state = " and the database's own state" if manifest.database_state else ""
    return f"{how} of {len(manifest.tables)} tables ({rows} rows){state} match the manifest"


def _remembered(master_key_for: Callable[[Header], bytes]) -> Callable[[Header], bytes]:
    """Ask KMS (or read the key file) once per backup, however often the file is opened."""
    keys: dict[bytes, bytes] = {}

    def key_for(header: Header) -> bytes:
        if header.raw not in keys:
            keys[header.raw] = master_key_for(header)
        return keys[header.raw]
    return key_for


def _names(live: str, label: str, when: datetime) -> tuple[str, str]:
    """(scratch database, name the live database is kept under) for a run at ``when``."""
    stamp = when.strftime("%Y%m%d_%H%M%S")
    return f"{live}_{label}_{stamp}", f"{live}_old_{stamp}"


def _state(manifest: Manifest | None) -> DatabaseState | None:
    if manifest is None or not manifest.database_state:
        return None
    return DatabaseState.from_json(manifest.database_state)


def dry_run(backup: Path, master_key_for: Callable[[Header], bytes],
            target_url: str | None = None, live: str = "",
            swapping: bool = True) -> tuple[str, int, int, list[Finding]]:
    """Check a backup completely without loading it: (what was verified, tables, rows,
    preflight findings). No database is needed; with ``target_url`` the restoring role's
    privileges there are checked too (:mod:`preflight`)."""
    data, manifest_path = locate(backup)
    if manifest_path is None:
        scanner = SqlScanner()
        for chunk in plain_chunks(data):
            scanner.feed(chunk)
        scanner.close()
        findings = preflight(target_url, None, None, live, swapping) if target_url else []
        return (f"its SQL ({scanner.line - 1} lines) holds no psql meta-command or statement "
                "acting outside its database", 0, 0, findings)
    manifest = checked_backup(data, manifest_path)
    stream = scan_only(decrypted_chunks(data, manifest, master_key_for))
    problems = verify_archive(manifest, stream.tables.values())
    if problems:
        raise VerificationError("the backup's data does not match its manifest: "
                                + "; ".join(problems))
    findings = preflight(target_url, stream.head, _state(manifest), live, swapping) \
        if target_url else []
    return (_verification_text(manifest, None), len(manifest.tables),
            sum(t.rows for t in manifest.tables.values()), findings)


@dataclass
class _Run:
    """One restore, step by step; each step a method (see the module's docstring)."""

    backup: Path
    database_url: str
    master_key_for: Callable[[Header], bytes]
    jobs: int
    work_dir: Path | None
    continue_on_error: bool
    allow_empty: bool
    result: RollbackResult
    maint: str
    manifest: Manifest | None = None
    data: Path = Path()
    loaded: LoadResult | None = None

    @property
    def live(self) -> str:
        return self.result.live_database

    @property
    def target(self) -> str:
        return with_dbname(self.database_url, self.result.restored_as)

    def chunks(self, start: tuple[int, int] | None = None,
               stop: int | None = None) -> Iterator[bytes]:
        """The decrypted archive, or one segment of it."""
        assert self.manifest is not None
        return decrypted_chunks(self.data, self.manifest, self.master_key_for, start=start,
                                stop=stop)

    def check_privileges(self, state: DatabaseState | None, swapping: bool) -> None:
        head: ArchiveHead | None = None
        if self.manifest is not None:
            head = read_head(self.chunks())
        findings = preflight(self.maint, head, state, self.live, swapping)
        self.result.preflight = [str(f) for f in findings]
        if findings and not self.continue_on_error:
            raise PreflightError(findings)
        for finding in findings:
            log.warning("preflight: %s (continuing: --continue-on-error)", finding)

    def create(self, state: DatabaseState | None) -> None:
        if state is None:
            create_database(self.maint, self.result.restored_as)
            return
        with psycopg.connect(self.maint, autocommit=True) as conn:
            conn.execute(create_statement(self.result.restored_as, state))

    def load(self, state: DatabaseState | None) -> None:
        seconds = self.result.seconds
        clock = time.monotonic()
        if self.manifest is None:
            load_plain(plain_chunks(self.data), self.target, pgoptions=RESTORE_PGOPTIONS)
            self.result.loaded_as = "psql"
        else:
            manifest = self.manifest

            def reset() -> None:
                drop_database(self.maint, self.result.restored_as)
                self.create(state)
            self.loaded = load_archive(
                self.chunks, self.target, reset=reset, segments=manifest.segments,
                dump_bytes=manifest.dump_bytes, file_size=manifest.size_bytes,
                options=LoadOptions(jobs=self.jobs, work_dir=self.work_dir,
                                    continue_on_error=self.continue_on_error,
                                    extension_versions=state.extensions if state else None))
            seconds.update({f"load_{k}": v for k, v in self.loaded.seconds.items()})
            self.result.loaded_as = ("parallel segments" if self.loaded.parallel else
                                     "one stream" if self.loaded.streamed else "anonymous file")
            self.result.failed_objects = list(self.loaded.failed)
            self._judge(verify_archive(manifest, self.loaded.stats)
                        + verify_load(manifest, self.loaded, self.target), "data")
        seconds["load"] = round(time.monotonic() - clock, 3)

    def finish_database(self, state: DatabaseState | None) -> None:
        """The database's own settings, comment, limit and ACL; then compare its state."""
        if state is None:
            return
        extensions = extensions_of(self.target)
        with psycopg.connect(self.maint, autocommit=True) as conn:
            for statement in apply_statements(self.result.restored_as, state):
                try:
                    conn.execute(statement)
                except psycopg.Error as exc:
                    if not self.continue_on_error:
                        raise
                    self.result.failed_objects.append(
                        f"DATABASE {statement.as_string(conn)}: {str(exc).strip()}")
        self._judge(differences(state, restored_state(self.maint, self.result.restored_as,
                                                      extensions)), "database")

    def _judge(self, problems: list[str], what: str) -> None:
        if not problems:
            return
        if not self.continue_on_error:
            raise VerificationError(f"restored {what} does not match the backup's manifest: "
                                    + "; ".join(problems))
        self.result.problems += problems
        for problem in problems:
            log.error("verification: %s", problem)


def rollback(backup: Path, database_url: str, master_key_for: Callable[[Header], bytes], *,
             jobs: int = 2, dry_run_only: bool = False, swap_in: bool = True,
             work_dir: Path | None = None, maintenance_db: str = "postgres",
             now: datetime | None = None, scratch_label: str = "restore",
             allow_empty: bool = False, discard: bool = False, create: bool = False,
             continue_on_error: bool = False) -> RollbackResult:
    """Restore ``backup`` beside ``database_url``'s database, verify it, swap it in.

    ``swap_in=False`` stops after verification and keeps the copy, or drops it with
    ``discard`` (the restore test). A live database that does not exist is an error unless
    ``create``. Raises :class:`IntegrityError` (backup damaged or renamed),
    :class:`VerificationError` (restored copy differs from the manifest, or is empty),
    :class:`PreflightError`, :class:`UsageError`, :class:`RestoreLockedError`,
    :class:`BackupError` (load or swap failed); in every case before the swap the live database
    is untouched and the scratch copy is dropped. With ``continue_on_error`` failures are
    collected in the result instead (``failed_objects``, ``problems``).
    """
    started = now or datetime.now(UTC)
    live = dbname_of(database_url) if database_url else "(none)"
    master_key_for = _remembered(master_key_for)
    restored, old = _names(live, scratch_label, started)
    for name in (restored, old):
        if len(name.encode()) > MAX_IDENTIFIER_BYTES:  # PostgreSQL would silently truncate it
            raise BackupError(f"database name {name!r} would exceed PostgreSQL's "
                              f"{MAX_IDENTIFIER_BYTES}-byte limit; restore with --no-swap into "
                              "a database with a shorter name")
    result = RollbackResult(backup=str(backup), live_database=live, restored_as=restored,
                            old_database=None, verification="", swapped=False,
                            dry_run=dry_run_only)
    clock = time.monotonic()
    if dry_run_only:
        result.verification, result.tables, result.rows, findings = dry_run(
            backup, master_key_for, maintenance_url(database_url, maintenance_db)
            if database_url else None, live, swap_in)
        result.preflight = [str(f) for f in findings]
        result.seconds["verify"] = round(time.monotonic() - clock, 3)
        if findings:
            raise PreflightError(findings)
        return result
    run = _Run(backup, database_url, master_key_for, jobs, work_dir, continue_on_error,
               allow_empty, result, maintenance_url(database_url, maintenance_db))
    run.data, manifest_path = locate(backup)
    run.manifest = sized_backup(run.data, manifest_path) if manifest_path else None
    checksum = ChecksumInBackground(run.data, run.manifest) if run.manifest else None
    try:
        if run.manifest is not None:
            taken_at(run.data, run.manifest)
        result.seconds["check"] = round(time.monotonic() - clock, 3)
        state = _state(run.manifest)
        _restore(run, checksum, state, started, scratch_label, swap_in=swap_in, create=create,
                 discard=discard, allow_empty=allow_empty)
    except Exception:
        if checksum is not None:
            checksum.verified()  # a damaged file is the failure to report, whatever came first
        raise
    return result


def _restore(run: _Run, checksum: ChecksumInBackground | None,
             state: DatabaseState | None, started: datetime, scratch_label: str, *,
             swap_in: bool, create: bool, discard: bool, allow_empty: bool) -> None:
    """:func:`rollback` from the restore lock on (its steps 2 to 5). The backup's SHA-256 is
    checked meanwhile (``checksum``) and verified before anything is swapped in or reported
    as restored."""
    result, maint, live = run.result, run.maint, run.live
    restored, old = result.restored_as, _names(live, scratch_label, started)[1]
    work_dir = run.work_dir
    with restore_lock(maint, live) as lock_conn:
        result.leftovers_cleaned = clean_leftovers(lock_conn, live, work_dir)
        live_exists = database_exists(maint, live)
        if swap_in and not live_exists and not create:
            raise UsageError(
                f"database {live} does not exist on this server; check the name in "
                "DATABASE_URL, or pass --create to restore into a new database of that name")
        for later in range(1, 3600):  # a run in the same second as the last one: the next free
            if not any(database_exists(maint, name) for name in (restored, old)):
                break
            restored, old = _names(live, scratch_label, started + timedelta(seconds=later))
        else:
            raise BackupError(f"database {restored} already exists; refusing to overwrite it")
        result.restored_as = restored
        clock = time.monotonic()
        run.check_privileges(state, swap_in)
        result.seconds["preflight"] = round(time.monotonic() - clock, 3)
        run.create(state)
        try:
            run.load(state)
            clock = time.monotonic()
            if checksum is not None:
                checksum.verified()
                result.seconds["checksum_in_background"] = round(checksum.seconds, 3)
            if not allow_empty:
                refuse_empty(run.target, "the backup" if run.manifest else
                             "the plain SQL backup")
            run.finish_database(state)
            result.seconds["verify"] = round(time.monotonic() - clock, 3)
            result.verification = _verification_text(run.manifest, run.loaded)
            if run.manifest is not None:
                result.tables = len(run.manifest.tables)
                result.rows = sum(t.rows for t in run.manifest.tables.values())
            log.info("restored copy %s: %s", restored, result.verification)
            if swap_in and not result.problems:
                clock = time.monotonic()
                swap(maint, live, restored, old, live_exists)
                result.seconds["swap"] = round(time.monotonic() - clock, 3)
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
