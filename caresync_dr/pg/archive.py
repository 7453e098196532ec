"""Continuous archiving and point-in-time recovery of a local PostgreSQL: what RDS does behind
its automated backups, done for real on a throwaway cluster (the drill's emulated RDS).

RDS keeps a daily snapshot plus every transaction log, uploaded to S3 every five minutes, and
restores any time between the oldest snapshot and ``LatestRestorableTime`` (RDS user guide,
"Introduction to backups", "Restoring a DB instance to a specified time"). Here:

- :meth:`WalArchive.conf` is the primary's ``archive_mode``/``archive_command``: every finished
  WAL segment is copied into the archive (small segments, ``--wal-segsize``, keep it small);
- :meth:`WalArchive.base_backup` is the snapshot (``pg_basebackup``); the time it ends is the
  earliest restorable time;
- :meth:`WalArchive.upload` is the log upload: it notes the server's clock, switches to a new
  segment (``pg_switch_wal``) and waits until the finished one is archived; that noted time is
  the latest restorable time. A commit stamped before it is in an archived segment. A
  background :meth:`start_uploads` does it every ``interval`` (RDS: five minutes; scaled);
- :meth:`WalArchive.restore` makes a new cluster from the base backup that replays the archive
  up to ``recovery_target_time`` and is then promoted: a new, writable instance as of T.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from caresync_dr.pg.cluster import (
    PostgresCluster,
    free_port,
    run_as_server_user,
    server_owned_temp_dir,
)

log = logging.getLogger(__name__)


@dataclass
class WalArchive:
    """One primary's base backup and WAL archive, in a directory the server user owns."""

    directory: Path
    primary: PostgresCluster | None = None
    earliest: datetime | None = None   # the base backup's end
    latest: datetime | None = None     # the last completed upload
    lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @classmethod
    def create(cls, prefix: str = "caresync-wal-") -> WalArchive:
        directory = server_owned_temp_dir(prefix)
        archive = cls(directory=directory)
        run_as_server_user(["mkdir", "-p", str(archive.wal_dir)])
        return archive

    @property
    def wal_dir(self) -> Path:
        return self.directory / "wal"

    @property
    def base_dir(self) -> Path:
        return self.directory / "base"

    def conf(self) -> dict[str, str]:
        """What the primary's ``postgresql.conf`` needs to archive into this directory."""
        return {"archive_mode": "on",
                "archive_command": f"'test ! -f {self.wal_dir}/%f && cp %p {self.wal_dir}/%f'"}

    def base_backup(self, primary: PostgresCluster) -> datetime:
        """The snapshot: a base backup of the running primary; returns the earliest time a
        restore can reach (the server's clock once the backup is complete)."""
        run_as_server_user([primary.tool("pg_basebackup"), "-D", str(self.base_dir),
                            "-h", "127.0.0.1", "-p", str(primary.port), "-U",
                            primary.superuser, "-X", "fetch", "-c", "fast"])
        earliest = datetime.fromisoformat(primary.psql("select clock_timestamp()"))
        self.primary, self.earliest = primary, earliest.astimezone(UTC)
        log.info("base backup of port %d done; restorable from %s", primary.port, earliest)
        return self.earliest

    def upload(self, timeout: float = 30) -> datetime:
        """Close the current WAL segment and wait until it is archived; returns the new latest
        restorable time."""
        primary = self.primary
        if primary is None:
            raise RuntimeError("no base backup yet: nothing to restore from")
        with self.lock:
            raw = primary.psql("select clock_timestamp() || '|' || "
                               "pg_walfile_name(pg_switch_wal() - 1)")
            stamp, _, segment = raw.partition("|")
            deadline = time.monotonic() + timeout
            while not (self.wal_dir / segment).exists():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"WAL segment {segment} was not archived in {timeout} s")
                time.sleep(0.02)
            self.latest = datetime.fromisoformat(stamp).astimezone(UTC)
            return self.latest

    def start_uploads(self, interval: float) -> None:
        """Upload every ``interval`` seconds until :meth:`stop_uploads` (or the primary
        dies: then the archive keeps what it has, like RDS's)."""
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.upload(timeout=max(5.0, interval * 4))
                except Exception as exc:  # the primary is gone: the window stops growing
                    log.info("WAL upload stopped: %s", exc)
                    return

        self._stop.clear()
        self._thread = threading.Thread(target=loop, daemon=True, name="wal-uploads")
        self._thread.start()

    def stop_uploads(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def restore(self, when: datetime, port: int | None = None,
                prefix: str = "caresync-pitr-", timeout: float = 120) -> PostgresCluster:
        """A new cluster holding the data as of ``when``, promoted and writable."""
        if self.earliest is None or self.latest is None:
            raise RuntimeError("nothing to restore from: no base backup or upload yet")
        if not self.earliest <= when <= self.latest:
            raise ValueError(f"{when.isoformat()} is outside {self.earliest.isoformat()} - "
                             f"{self.latest.isoformat()}")
        base = server_owned_temp_dir(prefix)
        data = base / "data"
        run_as_server_user(["cp", "-a", str(self.base_dir), str(data)])
        with contextlib.suppress(FileNotFoundError):
            (data / "postmaster.pid").unlink()
        cluster = (PostgresCluster(data_dir=data, port=port or free_port())
                   if self.primary is None else
                   PostgresCluster(data_dir=data, port=port or free_port(),
                                   bin_dir=self.primary.bin_dir,
                                   superuser=self.primary.superuser))
        target = when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")
        cluster.append_conf({
            "port": str(cluster.port), "archive_mode": "off",
            "restore_command": f"'cp {self.wal_dir}/%f %p'",
            "recovery_target_time": f"'{target}'", "recovery_target_inclusive": "on",
            "recovery_target_action": "'promote'"})
        run_as_server_user(["touch", str(data / "recovery.signal")])
        cluster.start(timeout=timeout)
        deadline = time.monotonic() + timeout
        while cluster.psql("select pg_is_in_recovery()") != "f":
            if time.monotonic() > deadline:
                raise TimeoutError(f"the restore to {target} did not finish in {timeout} s")
            time.sleep(0.05)
        log.info("restored to %s on port %d", target, cluster.port)
        return cluster

    def remove(self) -> None:
        self.stop_uploads()
        shutil.rmtree(self.directory, ignore_errors=True)
