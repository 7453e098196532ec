"""The in-region drills (issue 14): recovery inside the primary region, by the real commands.

- ``app-crash``   the primary app dies; ``app.py restart`` (an instance refresh that keeps
                  capacity) brings writable service back *in the primary region*. Traffic that
                  Route 53 moves to the read-only standby meanwhile is degraded service, not
                  recovery: the report gives both durations.
- ``bad-release`` a broken release (a new AMI) goes out the way CI ships one: ``pulumi up`` of
                  prod with the new ``appAmiId`` (a new launch template version; the group is
                  not switched), then ``app.py deploy``. Auto Scaling's refresh watches the 5xx
                  and unhealthy-host alarms (evaluated from the app as the load balancer sees
                  it) and rolls back by itself; ``app.py deploy`` exits 1, ROLLED BACK.
- ``corruption``  rows are destroyed on the real PostgreSQL primary (a DELETE with the wrong
                  WHERE); ``pitr.py`` restores the writer to T, just before the damage, from a
                  real WAL archive (the emulated RDS point-in-time restore), fences the damaged
                  instance and moves the app to the restored one. The rows are back; the writes
                  between T and the damage are the data lost (RPO).

Each reports the time to writable service in the primary region and the drill's common result
shape (``scenario``, ``ok``, ``verifications``, ``steps``, ``timeline``, ``rto_seconds``,
``rpo_seconds``, ``rpo_transactions``, ``writes``), plus its own section (``in_region``).

Timing is scaled like the rest of the drill: CloudWatch periods of 60 s are
:data:`ALARM_PERIOD_SECONDS`, the deploy's bake time shrinks by the same factor, RDS's log
upload every five minutes is :data:`LOG_UPLOAD_SECONDS`; an instance refresh takes
``--scale-seconds``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from caresync_dr.app.rollout import ALB_5XX, UNHEALTHY_HOSTS
from caresync_dr.db.roles import APP_ROLE
from caresync_dr.drill.load import WriteLoad
from caresync_dr.drill.report import crash_report
from caresync_dr.drill.result import common_fields
from caresync_dr.drill.session import emulated_world
from caresync_dr.drill.timeline import Timeline
from caresync_dr.drill.world import World, db_address
from caresync_dr.emulation.alarms import AlarmEvaluator
from caresync_dr.emulation.rds_fence import SecurityGroupFences
from caresync_dr.emulation.rds_pitr import BackupSource, PointInTimeRestores
from caresync_dr.emulation.server import ACCOUNT_ID
from caresync_dr.names import alarm_name
from caresync_dr.pg.archive import WalArchive
from caresync_dr.pg.cluster import PostgresCluster
from caresync_dr.pg.orphans import DRILL_PREFIX, owned_temp_dir

if TYPE_CHECKING:
    from caresync_dr.drill.runner import DrillOptions

log = logging.getLogger(__name__)

# CloudWatch's 60-second period, scaled (the drill's Route 53 checks tick every 0.1 s).
ALARM_PERIOD_SECONDS = 0.2
SCALE = ALARM_PERIOD_SECONDS / 60.0          # real seconds -> drill seconds
LOG_UPLOAD_SECONDS = 0.5                     # RDS uploads transaction logs every 5 minutes
BROKEN_AMI = "ami-0badbadbadbadbad0"         # the bad release's image
# How long before the damage the operator's restore time is: writes in between are lost.
RESTORE_LEAD_SECONDS = 0.4
PGENV = {"PGHOSTADDR": "127.0.0.1", "PGSSLMODE": "disable"}  # the emulated VPC's network


@dataclass
class ServiceWatch:
    """Samples what the public record answers, and the answering site's health, every 50 ms:
    when the primary served writable, when traffic sat on the read-only standby, when nothing
    answered."""

    world: World
    samples: list[tuple[float, str]] = field(default_factory=list)   # (at, state)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def state(self) -> str:
        try:
            with urllib.request.urlopen(self.world.front.health_url, timeout=1) as resp:
                body = json.loads(resp.read())
        except (OSError, ValueError):
            return "down"
        database = body.get("database") or {}
        if body.get("status") != "ok":
            return "down"
        if body.get("site") == "primary" and database.get("writable") is True:
            return "primary-writable"
        return "standby-read-only" if body.get("site") == "standby" else "degraded"

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                self.samples.append((time.monotonic(), self.state()))
                self._stop.wait(0.05)

        self._thread = threading.Thread(target=loop, daemon=True, name="service-watch")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def first(self, state: str, after: float) -> float | None:
        return next((at for at, s in self.samples if at >= after and s == state), None)

    def seconds_in(self, state: str, start: float, end: float) -> float:
        total = 0.0
        for (at, s), (nxt, _) in zip(self.samples, self.samples[1:], strict=False):
            if s == state and at >= start and nxt <= end:
                total += nxt - at
        return round(total, 3)


@dataclass
class CommandRun:
    argv: list[str]
    exit_code: int | None = None
    seconds: float = 0.0
    report: dict[str, Any] | None = None
    started_at: float = 0.0


@dataclass
class InRegionRun:
    """What one drill's scenario flow works with."""

    world: World
    options: DrillOptions
    work: Path
    timeline: Timeline
    load: WriteLoad
    watch: ServiceWatch


def run_command(run_: InRegionRun, script: str, args: list[str],
                extra_env: dict[str, str] | None = None) -> CommandRun:
    """An operator command as a subprocess that talks only to the emulator."""
    options, world, work, timeline = run_.options, run_.world, run_.work, run_.timeline
    name = Path(script).stem
    report = work / f"{name}-report.json"
    argv = [sys.executable, str(options.project_dir / "scripts" / script), *args,
            "--report", str(report), "--journal-file", str(work / f"{name}-journal.json"),
            "--project-dir", str(options.project_dir)]
    env = {**os.environ, **world.emulator.env(), **(extra_env or {})}
    run = CommandRun(argv=argv, started_at=time.monotonic())
    timeline.event(f"running: {script} {' '.join(args)}")
    proc = subprocess.Popen(argv, cwd=options.project_dir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            log.info("  %s | %s", name, line.rstrip())
        run.exit_code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    run.seconds = round(time.monotonic() - run.started_at, 3)
    timeline.event(f"{script} exited {run.exit_code} after {run.seconds:.3f} s")
    with contextlib.suppress(OSError, ValueError):
        run.report = json.loads(report.read_text())
    return run


def _verification(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": bool(ok), "detail": detail}


def _present(cluster: PostgresCluster, dbname: str) -> set[int]:
    out = cluster.psql("select seq from patients where seq > 0", dbname=dbname)
    return {int(x) for x in out.split()} if out else set()


# --- the scenarios' own moves ----------------------------------------------------------------

def _arm_alarms(world: World, timeline: Timeline) -> AlarmEvaluator:
    """CloudWatch evaluating the primary's deploy alarms from the app as the ALB sees it."""
    app = world.apps["primary"]
    region = world.inventory.primary.region

    def failing() -> float:
        if not app.running:
            return 1.0
        return 0.0 if app.health()[0] == 200 else 1.0

    def five_xx_percent() -> float:
        answers = [app.health()[0] if app.running else 0 for _ in range(4)]
        return 100.0 * sum(1 for code in answers if code >= 500) / len(answers)

    evaluator = AlarmEvaluator(ACCOUNT_ID, ALARM_PERIOD_SECONDS)
    evaluator.watch(region, alarm_name("primary", UNHEALTHY_HOSTS), failing, lambda v: v > 0,
                    datapoints=3)
    evaluator.watch(region, alarm_name("primary", ALB_5XX), five_xx_percent, lambda v: v > 5.0,
                    datapoints=1)
    world.shims.append(evaluator.start())
    timeline.event(f"CloudWatch alarm evaluation of the deploy alarms every "
                   f"{ALARM_PERIOD_SECONDS} s (60 s scaled)")
    return evaluator


def _arm_pitr(world: World, archive: WalArchive, timeline: Timeline) -> PointInTimeRestores:
    """The primary's automated backups are the real WAL archive; restores build real clusters."""
    inv = world.inventory
    region, identifier = inv.primary.region, inv.primary.database.identifier

    def restore(source: BackupSource, when: datetime, target_region: str, target: str) -> int:
        cluster = archive.restore(when, prefix="caresync-drill-pitr-")
        world.restored.append(cluster)
        world.clusters_by_address[db_address(target_region, target)] = ("restored", cluster)
        timeline.event(f"emulated RDS: {target} restored to {when.isoformat()} on a real "
                       f"cluster (port {cluster.port})")
        return cluster.port

    pitr = PointInTimeRestores(restore_action=restore)
    pitr.bind(ACCOUNT_ID, region, identifier, lambda: (archive.earliest, archive.latest))
    # What AutomatedBackupReplication does: the backups, in the standby region, its key.
    standby_key = world.deployment.outputs["dr"].get("kmsKeyArn", "")
    pitr.replicate(ACCOUNT_ID, region, identifier, inv.standby.region, str(standby_key))
    world.shims.append(pitr.arm())

    def fenced(fence_region: str, fenced_id: str) -> None:
        found = world.clusters_by_address.get(db_address(fence_region, fenced_id))
        if found is not None:
            _refuse_app_logins(found[1])
            timeline.event(f"{fenced_id} fenced: its stand-in refuses every app login")

    world.shims.append(SecurityGroupFences(on_fenced=fenced).arm())
    return pitr


def _refuse_app_logins(cluster: PostgresCluster) -> None:
    """Nothing reaches the fenced instance: app logins refused, app sessions ended (both of
    the app's alternating logins: after a scheduled rotation it runs as the clone)."""
    hba = cluster.data_dir / "pg_hba.conf"
    rules = hba.read_text()
    with hba.open("w") as out:  # in place: keeps the server user's ownership
        out.writelines(f"host all {login} 127.0.0.1/32 reject\n" for login in APP_ROLE.logins)
        out.write(rules)
    cluster.psql("select pg_reload_conf()")
    listed = ", ".join(f"'{login}'" for login in APP_ROLE.logins)
    cluster.psql("select pg_terminate_backend(pid) from pg_stat_activity "
                 f"where usename in ({listed})")


# --- one drill ----------------------------------------------------------------------------

def run_in_region(options: DrillOptions) -> dict[str, Any]:
    """Run one in-region drill end to end; returns its report."""
    scenario = options.scenario
    timeline = Timeline()
    work = owned_temp_dir(DRILL_PREFIX)
    load: WriteLoad | None = None
    watch: ServiceWatch | None = None
    archive = WalArchive.create(prefix="caresync-drill-wal-") \
        if scenario.name == "corruption" else None
    try:
        with emulated_world(options, timeline, archive=archive, bake_scale=SCALE,
                            deploy_step="deploy prod, dr, prod and start the data path"
                            ) as session:
            world = session.world
            try:
                if archive is not None:
                    with timeline.step("automated backups: base backup and log uploads"):
                        archive.base_backup(world.databases.primary)
                        archive.upload()
                        archive.start_uploads(LOG_UPLOAD_SECONDS)
                        _arm_pitr(world, archive, timeline)
                if scenario.name == "bad-release":
                    _arm_alarms(world, timeline)
                    world.broken_images.add(BROKEN_AMI)
                with timeline.step("baseline: primary serves, steady write load") as step:
                    answer = world.resolver.current()
                    if answer is None or answer.failover != "PRIMARY":
                        raise RuntimeError(f"before the outage the record answers {answer}")
                    load = WriteLoad(target=world.write_target, interval=options.load_interval)
                    load.start()
                    watch = ServiceWatch(world)
                    watch.start()
                    time.sleep(options.steady_seconds)
                    step.detail = f"{len(load.acks)} writes acknowledged by the primary"
                from caresync_dr.drill.breach import breach_flow
                from caresync_dr.drill.rotation import rotation_flow

                flows = {"app-crash": _app_crash, "bad-release": _bad_release,
                         "corruption": _corruption, "breach": breach_flow,
                         "credential-rotation": rotation_flow}
                return flows[scenario.name](
                    InRegionRun(world, options, work, timeline, load, watch))
            finally:   # before the world stops
                if watch is not None:
                    watch.stop()
                if load is not None:
                    load.stop()
    except (Exception, KeyboardInterrupt) as exc:
        error = ("interrupted" if isinstance(exc, KeyboardInterrupt)
                 else f"{type(exc).__name__}: {exc}")
        raise _aborted(crash_report(scenario.name, error, timeline)) from exc
    finally:
        if archive is not None:   # made before the world: also when the emulator never started
            archive.stop_uploads()
            if not options.keep:
                archive.remove()
        if not options.keep:
            shutil.rmtree(work, ignore_errors=True)


def _aborted(report: dict[str, Any]) -> Exception:
    from caresync_dr.drill.runner import DrillAbortedError

    return DrillAbortedError(report)


def _result(scenario: str, timeline: Timeline, load: WriteLoad,
            verifications: list[dict[str, Any]], rto: float | None, *,
            rpo_seconds: float, rpo_transactions: int, survivor: str,
            section: dict[str, Any], watch: ServiceWatch | None = None) -> dict[str, Any]:
    acks = load.snapshot()
    outage = timeline.outage_at
    degraded = section.get("degraded_read_only_seconds")
    common = common_fields(
        scenario, timeline, acks, load.failures_snapshot(),
        served_at=None if rto is None or outage is None else outage + rto,
        degraded_from=(watch.first("standby-read-only", outage)
                       if watch is not None and outage is not None else None),
        degraded_seconds=degraded)
    return {
        **common,
        "scenario": scenario,
        "ok": all(v["ok"] for v in verifications),
        "rto_seconds": rto,
        "rto_meaning": "outage -> the public health URL served by the primary site with a "
                       "writable database",
        "rpo_seconds": rpo_seconds,
        "rpo_transactions": rpo_transactions,
        "critical_path_seconds": None,
        "rto_to_critical_path_ratio": None,
        "targets": None,
        "writes": {"acknowledged": len(acks), "failed": load.failures, "survivor": survivor,
                   "last_error": load.last_error},
        "verifications": verifications,
        "steps": [{"name": s.name, "seconds": s.seconds, "ok": s.ok, "detail": s.detail}
                  for s in timeline.steps],
        "timeline": timeline.as_json(),
        "in_region": section,
    }


def _served_primary(watch: ServiceWatch, after: float, limit: float) -> float | None:
    deadline = after + limit
    while time.monotonic() < deadline:
        found = watch.first("primary-writable", after)
        if found is not None:
            return found
        time.sleep(0.05)
    return None


def _app_crash(run_: InRegionRun) -> dict[str, Any]:
    world, options, timeline = run_.world, run_.options, run_.timeline
    load, watch = run_.load, run_.watch
    outage = time.monotonic()
    timeline.outage_at, timeline.outage_wall = outage, time.time()
    world.apps["primary"].kill()
    timeline.event("OUTAGE (app-crash): the primary app crashed; its database is fine", at=outage)
    with timeline.step("app.py restart") as step:
        command = run_command(run_, "app.py", [
            "restart", "--stack", "prod", "--yes", "--poll-seconds", str(options.poll_seconds),
            "--wait-timeout", str(options.serve_timeout)])
        step.ok, step.detail = command.exit_code == 0, f"exit {command.exit_code}"
    served = _served_primary(watch, outage, options.serve_timeout)
    time.sleep(0.3)
    load.stop()
    end = time.monotonic()
    dbs = world.databases
    present = _present(dbs.primary, dbs.app_database)
    acked = [a for a in load.snapshot() if a.database == "primary"]
    lost = [a for a in acked if a.seq not in present]
    degraded = watch.seconds_in("standby-read-only", outage, served or end)
    down = watch.seconds_in("down", outage, served or end)
    verifications = [
        _verification("app.py restart succeeded", command.exit_code == 0,
                      f"exit {command.exit_code}, outcome "
                      f"{(command.report or {}).get('outcome')}"),
        _verification("writable service back in the primary region", served is not None,
                      f"public URL served by the primary, writable, {timeline.rel(served)} s "
                      "after the crash" if served else "the primary never served again"),
        _verification("the standby was degraded service, not recovery",
                      served is not None,
                      f"{degraded} s answered by the read-only standby, {down} s nothing"),
        _verification("no acknowledged write lost", not lost,
                      f"{len(acked)} acknowledged by the primary, {len(lost)} missing"),
    ]
    return _result("app-crash", timeline, load, verifications,
                   None if served is None else round(served - outage, 3),
                   rpo_seconds=0.0, rpo_transactions=len(lost), survivor="primary",
                   section={"command": command.argv[1:], "exit_code": command.exit_code,
                            "command_seconds": command.seconds,
                            "degraded_read_only_seconds": degraded, "no_service_seconds": down,
                            "report": command.report}, watch=watch)


def _bad_release(run_: InRegionRun) -> dict[str, Any]:
    world, options, timeline = run_.world, run_.options, run_.timeline
    load, watch = run_.load, run_.watch
    from caresync_dr.drill.deploy import redeploy

    broke: list[float] = []
    healed: list[float] = []
    app = world.apps["primary"]

    def replaced(site: str, version: str | None) -> None:
        if site == "primary":
            (broke if app.broken else healed).append(time.monotonic())
            timeline.event(f"primary instances now run template version {version} "
                           f"({app.release}{', BROKEN' if app.broken else ''})")

    world.on_replaced.append(replaced)
    with timeline.step("pulumi up -s prod with the new appAmiId (a new template version)"):
        redeploy(world.deployment, options.project_dir, "prod", {"appAmiId": BROKEN_AMI})
    with timeline.step("app.py deploy (CI's deploy job)") as step:
        command = run_command(run_, "app.py", [
            "deploy", "--stack", "prod", "--yes", "--poll-seconds", str(options.poll_seconds),
            "--wait-timeout", str(options.serve_timeout)])
        step.ok = command.exit_code == 1
        step.detail = f"exit {command.exit_code} (1 expected: rolled back)"
    outage = broke[0] if broke else None
    timeline.outage_at = outage
    served = (_served_primary(watch, healed[-1] if healed else outage, options.serve_timeout)
              if outage is not None else None)
    time.sleep(0.3)
    load.stop()
    report = command.report or {}
    rolled = report.get("rolledBack") or {}
    dbs = world.databases
    present = _present(dbs.primary, dbs.app_database)
    lost = [a for a in load.snapshot() if a.database == "primary" and a.seq not in present]
    verifications = [
        _verification("the broken release was deployed", outage is not None,
                      "the primary's instances ran the broken AMI" if outage else
                      "the broken release never served"),
        _verification("Auto Scaling rolled it back by itself", bool(rolled)
                      and command.exit_code == 1,
                      f"app.py deploy exit {command.exit_code}: {rolled.get('status')} "
                      f"({rolled.get('reason')})"),
        _verification("the group still runs the good version",
                      str(rolled.get("runningVersion")) == "1" and not app.broken,
                      f"template version {rolled.get('runningVersion')}, release "
                      f"{app.release}"),
        _verification("writable service back in the primary region", served is not None,
                      f"{timeline.rel(served)} s after the broken release started serving"
                      if served and outage else "not served"),
        _verification("no acknowledged write lost", not lost, f"{len(lost)} missing"),
    ]
    return _result("bad-release", timeline, load, verifications,
                   None if served is None or outage is None else round(served - outage, 3),
                   rpo_seconds=0.0, rpo_transactions=len(lost), survivor="primary",
                   section={"command": command.argv[1:], "exit_code": command.exit_code,
                            "command_seconds": command.seconds,
                            "broken_serving_seconds": round((healed[-1] if healed else
                                                             time.monotonic()) - outage, 3)
                            if outage else None,
                            "rolled_back": rolled, "report": report})


def _corruption(run_: InRegionRun) -> dict[str, Any]:
    world, options, timeline = run_.world, run_.options, run_.timeline
    load, watch = run_.load, run_.watch
    dbs = world.databases
    primary, dbname = dbs.primary, dbs.app_database
    # T on a whole second (pitr.py restores to the second): the operator's "just before";
    # and after the base backup, or no backup holds it.
    earliest = _earliest_restorable(world)
    while True:
        asked = time.monotonic()
        server_now = datetime.fromisoformat(primary.psql("select clock_timestamp()"))
        answered = time.monotonic()
        restore_time = server_now.replace(microsecond=0)
        if earliest is None or restore_time >= earliest:
            break
        time.sleep(0.05)
    # T happened somewhere in [asked, answered] minus the fraction: a write acknowledged before
    # the window's start committed before T (it must be restored), one acknowledged after its
    # end committed after T (it is lost by design); the few in between are not judged.
    fraction = server_now.microsecond / 1e6
    surely_before, at_restore_time = asked - fraction, answered - fraction
    time.sleep(RESTORE_LEAD_SECONDS)
    before = int(primary.psql("select count(*) from patients where seq > 0", dbname=dbname))
    damage_wall = datetime.fromisoformat(primary.psql("select clock_timestamp()"))
    destroyed = int(primary.psql("with gone as (delete from patients where seq > 0 and "
                                 "seq % 2 = 0 returning 1) select count(*) from gone",
                                 dbname=dbname))
    outage = time.monotonic()
    timeline.outage_at, timeline.outage_wall = outage, time.time()
    timeline.event(f"DAMAGE (corruption): {destroyed} of {before} patient rows deleted on the "
                   f"primary at {damage_wall.isoformat()}", at=outage)
    timeline.event(f"restore time T = {restore_time.isoformat()} "
                   f"({outage - at_restore_time:.3f} s before the damage)", at=at_restore_time)
    archive_latest = _wait_restorable(world, restore_time)
    with timeline.step("pitr.py") as step:
        command = run_command(run_, "pitr.py", [
            "--stack", "prod", "--restore-time", restore_time.astimezone(UTC).isoformat(),
            "--yes", "--count", "patients", "--poll-seconds", str(options.poll_seconds),
            "--restore-timeout", str(options.serve_timeout),
            "--refresh-timeout", str(options.serve_timeout)], extra_env=PGENV)
        step.ok, step.detail = command.exit_code == 0, f"exit {command.exit_code}"

    def on_restored() -> bool:
        found = world.locate("primary")
        return found is not None and found[0] == "restored"

    served = None
    deadline = outage + options.serve_timeout
    while time.monotonic() < deadline and served is None:
        if on_restored():
            served = watch.first("primary-writable", time.monotonic() - 0.05)
        time.sleep(0.05)
    time.sleep(0.3)
    load.stop()
    acks = load.snapshot()
    restored = world.locate("primary")
    kept: set[int] = set()
    if restored is not None and restored[0] == "restored":
        kept = _present(restored[1], dbname)
    before_t = [a for a in acks if a.database == "primary" and a.acked_at <= surely_before]
    between = [a for a in acks if a.database == "primary"
               and at_restore_time < a.acked_at <= outage]
    after_damage = [a for a in acks if a.database == "primary" and a.acked_at > outage]
    on_restored_acks = [a for a in acks if a.database == "restored"]
    missing_before_t = [a for a in before_t if a.seq not in kept]
    lost_between = [a for a in between if a.seq not in kept]
    report = command.report or {}
    verifications = [
        _verification("pitr.py succeeded", command.exit_code == 0,
                      f"exit {command.exit_code}: {report.get('message')}"),
        _verification("the rows are back as they were at T", bool(kept) and not
                      missing_before_t, f"{len(before_t)} rows acknowledged before T, "
                      f"{len(missing_before_t)} missing in the restored database; "
                      f"{destroyed} deleted rows restored" if kept else
                      "the app does not use the restored database"),
        _verification("the damaged writer is fenced", bool(report.get("fenced")),
                      f"{report.get('damaged')} moved into the no-access group, kept"),
        _verification("writable service on the restored writer", served is not None,
                      f"{timeline.rel(served)} s after the damage" if served else
                      "not served from the restored database"),
        _verification("writes continue on the restored writer", bool(on_restored_acks),
                      f"{len(on_restored_acks)} writes acknowledged after the cut-over"),
    ]
    lost_seconds = round(outage - at_restore_time, 3)
    return _result("corruption", timeline, load, verifications,
                   None if served is None else round(served - outage, 3),
                   rpo_seconds=lost_seconds, rpo_transactions=len(lost_between),
                   survivor="restored",
                   section={"command": command.argv[1:], "exit_code": command.exit_code,
                            "command_seconds": command.seconds,
                            "restore_time": restore_time.isoformat(),
                            "damage_at": damage_wall.isoformat(),
                            "rows_destroyed": destroyed,
                            "lost_between_t_and_damage": {"transactions": len(lost_between),
                                                          "seconds": lost_seconds},
                            "written_to_damaged_after_damage": len(after_damage),
                            "latest_restorable_at_start": archive_latest,
                            "report": report})


def _earliest_restorable(world: World) -> datetime | None:
    pitr = next((s for s in world.shims if isinstance(s, PointInTimeRestores)), None)
    return None if pitr is None else next(iter(pitr.sources.values())).window()[0]


def _wait_restorable(world: World, when: datetime, timeout: float = 10) -> str | None:
    """RDS can restore only up to its last log upload (``LatestRestorableTime``): wait for one
    after T, as an operator would see the time move in the console."""
    from caresync_dr.emulation.rds_pitr import PointInTimeRestores as Restores

    pitr = next((s for s in world.shims if isinstance(s, Restores)), None)
    if pitr is None:
        return None
    source = next(iter(pitr.sources.values()))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latest = source.window()[1]
        if latest is not None and latest >= when:
            return latest.isoformat()
        time.sleep(0.05)
    return None
