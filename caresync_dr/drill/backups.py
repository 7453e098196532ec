"""The latest logical backup, restored from the standby bucket while the primary region is down.

Before the outage, with both regions up, the drill runs the real ``scripts/backup.py`` the way
the ops host's systemd unit does (``--kms-key-id alias/caresync-primary --region <primary>
--stack prod --bucket <primary backup bucket>``): the data key is wrapped under both sites'
keys (decision D2). S3 replication then copies the backup into the standby bucket; moto copies
nothing, so ``caresync_dr.emulation.s3`` does what the bucket's replication rule says.

After the outage the real ``scripts/restore_check.py`` restores the newest backup of the
standby bucket into a scratch server with ``--region <standby>`` while every primary-region
endpoint is refused. Both commands run as subprocesses against the emulator, each with its own
``AWS_SDK_UA_APP_ID``, so the emulator's call log shows which endpoints each one called.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from caresync_dr import names
from caresync_dr.emulation.s3 import Replicated, replicate
from caresync_dr.emulation.server import ACCOUNT_ID, AwsRequest, Emulator

if TYPE_CHECKING:
    from caresync_dr.drill.timeline import Timeline
    from caresync_dr.drill.world import World

log = logging.getLogger(__name__)

BACKUP_APP = "caresync-backup"
RESTORE_CHECK_APP = "caresync-restore-check"


@dataclass
class CommandRun:
    """One operator command the drill ran: exit code, its JSON report, when, what it called."""

    app: str
    exit_code: int | None = None
    report: dict[str, Any] = field(default_factory=dict)
    started_at: float | None = None  # time.monotonic()
    ended_at: float | None = None
    output: str = ""
    requests: list[AwsRequest] = field(default_factory=list)

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return round(self.ended_at - self.started_at, 3)

    def endpoints(self) -> list[str]:
        """Each endpoint called (``service.region``, refused ones marked), in first-call order."""
        seen: dict[str, None] = {}
        for r in self.requests:
            seen[f"{r.endpoint}{' (refused)' if r.refused else ''}"] = None
        return list(seen)


def _run(emulator: Emulator, project_dir: Path, script: str, args: list[str], *,
         run: CommandRun, report_path: Path) -> CommandRun:
    emulator.calls.watch(run.app)
    # Its own temp dir: the drill removes it, and no other process's clean-up can reach it.
    tmp = report_path.parent / f"tmp-{run.app}"
    tmp.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, **emulator.env(), "AWS_SDK_UA_APP_ID": run.app, "TMPDIR": str(tmp)}
    run.started_at = time.monotonic()
    done = subprocess.run([sys.executable, str(project_dir / "scripts" / script), *args,
                           "--report", str(report_path)], cwd=project_dir, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    run.ended_at = time.monotonic()
    run.exit_code = done.returncode
    run.output = done.stderr[-2000:]
    try:
        run.report = json.loads(report_path.read_text())
    except (OSError, ValueError):
        run.report = {}
    run.requests = emulator.calls.of(run.app, since=run.started_at)
    return run


def take_backup(emulator: Emulator, project_dir: Path, work: Path, *, database_url: str,
                region: str, bucket: str) -> CommandRun:
    """``scripts/backup.py`` as the primary site's systemd unit runs it (both regions up)."""
    run = _run(emulator, project_dir, "backup.py", [
        "--database-url", database_url, "--local-dir", str(work / "backups"),
        "--kms-key-id", names.site_key_alias("primary"), "--region", region, "--stack", "prod",
        "--bucket", bucket], run=CommandRun(BACKUP_APP), report_path=work / "backup-report.json")
    log.info("backup.py exited %s after %.2f s: %s", run.exit_code, run.seconds or 0,
             run.report.get("backup") or run.output.strip().splitlines()[-1:])
    return run


def replicate_backups(source_bucket: str) -> list[Replicated]:
    """What S3 replication does with the new backup (moto's gap)."""
    copied = replicate(ACCOUNT_ID, source_bucket)
    for item in copied:
        log.info("emulator: S3 replication copied %s to s3://%s (SSE-KMS %s)", item.key,
                 item.destination_bucket, item.replica_kms_key_id)
    return copied


@dataclass
class StandbyRestoreTest:
    """``scripts/restore_check.py`` against the standby bucket, in a thread of the drill."""

    emulator: Emulator
    project_dir: Path
    work: Path
    region: str
    bucket: str
    target_url: str
    run: CommandRun = field(default_factory=lambda: CommandRun(RESTORE_CHECK_APP))
    _thread: threading.Thread | None = None

    def start(self, when: Callable[[], bool] = lambda: True, wait_at_most: float = 10.0,
              on_start: Callable[[], None] = lambda: None) -> None:
        """Run it in a thread, once ``when()`` holds (or ``wait_at_most`` seconds passed)."""
        self._thread = threading.Thread(target=self._run, args=(when, wait_at_most, on_start),
                                        daemon=True, name="restore-test")
        self._thread.start()

    def _run(self, when: Callable[[], bool], wait_at_most: float,
             on_start: Callable[[], None]) -> None:
        deadline = time.monotonic() + wait_at_most
        while not when() and time.monotonic() < deadline:
            time.sleep(0.05)
        on_start()
        _run(self.emulator, self.project_dir, "restore_check.py", [
            "--bucket", self.bucket, "--region", self.region, "--target-url", self.target_url],
             run=self.run, report_path=self.work / "restore-test-report.json")
        log.info("restore_check.py exited %s after %.2f s (%s)", self.run.exit_code,
                 self.run.seconds or 0, self.run.report.get("result", "no report"))

    def join(self, timeout: float) -> bool:
        """Wait for it; False when it is still running after ``timeout`` seconds."""
        if self._thread is None:
            return False
        self._thread.join(timeout)
        return not self._thread.is_alive()


@dataclass
class BackupBeforeOutage:
    """``backup.py`` in a thread while the steady load runs, then S3 replication's copy."""

    world: World
    project_dir: Path
    work: Path
    run: CommandRun | None = None
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._take, daemon=True, name="backup")
        self._thread.start()

    def _take(self) -> None:
        inv, dbs = self.world.inventory, self.world.databases
        self.run = take_backup(self.world.emulator, self.project_dir, self.work,
                               database_url=dbs.dsn(dbs.primary), region=inv.primary.region,
                               bucket=self.world.deployment.outputs["prod"]["backupBucketName"])

    def finish(self, timeline: Timeline) -> None:
        """Wait for the backup, then replicate it to the standby bucket."""
        assert self._thread is not None
        self._thread.join(300)
        run = self.run
        if run is None or run.started_at is None:
            timeline.event("backup.py did not finish")
            return
        timeline.event(f"backup.py (primary site, both regions up) started: "
                       f"{run.report.get('backup') or 'no backup'}", at=run.started_at)
        wraps = sorted(w.get("region", "?") for w in run.report.get("key_wraps") or [])
        timeline.event(f"backup.py exited {run.exit_code} after {run.seconds:.3f} s; data key "
                       f"wrapped in {', '.join(wraps) or 'no region'}", at=run.ended_at)
        copied = replicate_backups(self.world.deployment.outputs["prod"]["backupBucketName"])
        run.report["replicated"] = [f"s3://{c.destination_bucket}/{c.key}" for c in copied]
        timeline.event(f"S3 replication (emulated): {len(copied)} object(s) copied to the "
                       "standby bucket")


def start_restore_test(world: World, project_dir: Path, work: Path, timeline: Timeline, *,
                       served: Callable[[], bool], wait_at_most: float) -> StandbyRestoreTest:
    """restore_check.py on the standby bucket, in the standby region, primary region down.

    Its target is the promoted standby's server, as the ops host's ``DATABASE_URL`` names the
    live writer (the scratch database goes next to the live one). It starts once the standby
    site serves (the RTO is failover.py's, not shared with a restore), or after the serve
    timeout."""
    dbs, inv = world.databases, world.inventory
    restore = StandbyRestoreTest(
        emulator=world.emulator, project_dir=project_dir, work=work,
        region=inv.standby.region,
        bucket=world.deployment.outputs["dr"]["backupBucketName"],
        target_url=dbs.dsn(dbs.standby))
    restore.start(when=served, wait_at_most=wait_at_most,
                  on_start=lambda: timeline.event(
                      f"running: restore_check.py --bucket {restore.bucket} --region "
                      f"{restore.region} ({inv.primary.region} unreachable)"))
    return restore
