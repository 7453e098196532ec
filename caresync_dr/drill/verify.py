"""After the failover: each verification re-reads real state; then RTO, RPO, critical path."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
from moto.route53.models import route53_backends

from caresync_dr.drill.backups import CommandRun
from caresync_dr.drill.boot import APP_ROLE
from caresync_dr.drill.load import Ack, WriteLoad, data_loss, write_series
from caresync_dr.drill.result import first_good_write
from caresync_dr.drill.scenarios import Scenario
from caresync_dr.drill.standby_only import (
    AppEvidence,
    app_checks,
    app_figures,
    backup_checks,
    backup_figures,
)
from caresync_dr.drill.timeline import Timeline
from caresync_dr.emulation import rds as emulated_rds
from caresync_dr.emulation.server import ACCOUNT_ID
from caresync_dr.pg.cluster import PostgresCluster

if TYPE_CHECKING:
    from caresync_dr.drill.runner import DrillOptions
    from caresync_dr.drill.world import World

# Performance targets of issue 4 (reported, not asserted: they are measurements).
RATIO_TARGET = 1.15
RPO_TARGET_SECONDS = 1.0
# The drill's probe polls the public URL every 50 ms: it must have seen writable service no
# later than failover.py's verification did, give or take a poll and a request on a busy box.
PROBE_SLACK_SECONDS = 1.0


@dataclass(frozen=True)
class Verification:
    name: str
    ok: bool
    detail: str


def _in_recovery(cluster: PostgresCluster) -> bool:
    return cluster.psql("select pg_is_in_recovery()") == "t"


def _accepts_writes(cluster: PostgresCluster, dbname: str) -> tuple[bool, str]:
    try:
        with psycopg.connect(cluster.dsn(dbname), connect_timeout=2, autocommit=True) as conn:
            conn.execute("insert into patients (seq, name) values (-1, 'drill verification') "
                         "on conflict (seq) do update set name = excluded.name")
        return True, "a test write committed"
    except psycopg.Error as exc:
        return False, str(exc).strip().splitlines()[0]


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except OSError as exc:
        return 0, {"error": str(exc)}


def _present(cluster: PostgresCluster, dbname: str) -> set[int]:
    out = cluster.psql("select seq from patients where seq > 0", dbname=dbname)
    return {int(x) for x in out.split()} if out else set()


def _detection(check_id: str, tick: float) -> float:
    """Fastest possible state change of a check: the first opposite observation can come
    right after the change, the remaining ``threshold - 1`` one tick apart."""
    check = route53_backends[ACCOUNT_ID]["aws"].health_checks[check_id]
    return (int(check.failure_threshold or 3) - 1) * tick


def _one_request_seconds(url: str) -> float:
    started = time.monotonic()
    _get(url)
    return time.monotonic() - started


def _failover_step_seconds(report: dict[str, Any] | None, name: str) -> float:
    """One step's duration from failover.py's report (0 when it is not reported)."""
    for step in (report or {}).get("steps", []) or []:
        if isinstance(step, dict) and step.get("name") == name:
            for key in ("seconds", "duration_seconds", "elapsed_seconds"):
                if isinstance(step.get(key), (int, float)):
                    return float(step[key])
    return 0.0


def _failover_events(timeline: Timeline, report: dict[str, Any] | None) -> None:
    """failover.py's own step timings, placed on the drill's timeline."""
    for step in (report or {}).get("steps", []) or []:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            started = datetime.fromisoformat(step["started_at"]).timestamp()
            timeline.event_at_wall(started, f"failover.py step {step['name']} started")
            timeline.event_at_wall(started + float(step["seconds"]),
                                   f"failover.py step {step['name']}: {step['outcome']} "
                                   f"({float(step['seconds']):.3f} s)")


def late_acknowledgements(acks: list[Ack], fenced_at: float, *, killed: bool) -> list[Ack]:
    """The old primary's acknowledgements that came after it was fenced at ``fenced_at``
    (time.monotonic()). After a kill -9 of every process of it (``killed``), a write is late
    when its COMMIT was sent after the kill: only a surviving process could have acknowledged
    it. A reply to a COMMIT sent before the kill came from a backend that committed before it
    died, whenever this process's load thread got the GIL back to stamp it (:class:`Ack`)."""
    return [a for a in acks if a.database == "primary" and
            (a.committing_at if killed else a.acked_at) > fenced_at]


def fence_instant(timeline: Timeline, report: dict[str, Any] | None) -> tuple[float | None, str]:
    """When the old primary stopped being able to acknowledge writes, and by whose hand.

    failover.py's own fencing counts when its report says ``fenced``: the end of its
    fence-primary-database step (revoking the database's ingress). When it could not confirm
    the fence (the primary region is down) or has none (scope database), the drill's kill -9 of
    the primary database is the only fence there is, and the detail says so.
    """
    report = report or {}
    if report.get("fenced") == "fenced":
        for step in report.get("steps", []) or []:
            if isinstance(step, dict) and step.get("name") == "fence-primary-database":
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    ended = datetime.fromisoformat(step["ended_at"]).timestamp()
                    at = timeline.from_wall(ended)
                    if at is not None:
                        return at, ("from failover.py's fence (fence-primary-database "
                                    f"{step['outcome']} at {step['ended_at']})")
        return None, "failover.py reports fenced but its fence-primary-database step has no end"
    status = report.get("fenced", "no failover report")
    if timeline.primary_killed_at is not None:
        return timeline.primary_killed_at, (
            f"failover.py's fencing: {status}; the drill's kill -9 of the primary database "
            "is the fence here, so this measures the kill, not failover.py")
    return None, f"failover.py's fencing: {status}; the old primary was not killed"


def measure_and_verify(world: World, scenario: Scenario, options: DrillOptions, *,
                       timeline: Timeline, load: WriteLoad, served_at: float | None,
                       failover_code: int | None, failover_report: dict[str, Any] | None,
                       failover_seconds: float, backup: CommandRun | None = None,
                       restore: CommandRun | None = None,
                       app: AppEvidence | None = None) -> dict[str, Any]:
    inv = world.inventory
    dbs = world.databases
    checks: list[Verification] = []

    def check(name: str, ok: bool, detail: str) -> None:
        checks.append(Verification(name, bool(ok), detail))

    outage_at = timeline.outage_at or 0.0
    if scenario.failover_scope is not None:
        check("failover.py succeeded", failover_code == 0, f"exit code {failover_code}")

    # 1. The record answers the site that must serve, from health checks alone.
    answer = world.resolver.current()
    expected_set = (inv.dns.primary_set_identifier if scenario.serving_site == "primary"
                    else inv.dns.secondary_set_identifier)
    check("resolver answers the serving site",
          answer is not None and answer.set_identifier == expected_set,
          f"{inv.dns.record_name} -> {answer.set_identifier if answer else None} "
          f"(expected {expected_set})")

    # 2. The serving site's app is healthy, through the public URL and directly.
    code, body = _get(world.front.health_url)
    check("public health URL healthy", code == 200 and body.get("site") == scenario.serving_site,
          f"HTTP {code} {json.dumps(body)[:160]}")
    code, body = _get(world.apps[scenario.serving_site].url + "/api/health")
    database = body.get("database") or {}
    check(f"{scenario.serving_site} app healthy and writable",
          code == 200 and database.get("writable") is True,
          f"HTTP {code}, role {database.get('role')}, writable {database.get('writable')}")

    # 3. The promoted database (or, with no promotion, that nothing was promoted).
    fenced_at, fence_source = fence_instant(timeline, failover_report)
    survivor: PostgresCluster
    survivor_label: str
    if scenario.promotes is not None:
        cluster = dbs.standby if scenario.promotes == "standby" else dbs.local_replica
        assert cluster is not None
        survivor, survivor_label = cluster, scenario.promotes
        ok_writes, detail = _accepts_writes(cluster, dbs.app_database)
        check("promoted database accepts writes", not _in_recovery(cluster) and ok_writes,
              f"port {cluster.port}: {detail}")
        region, ident = ((inv.standby.region, inv.standby.database.identifier)
                         if scenario.promotes == "standby"
                         else (inv.primary.region, inv.primary.database.replica_identifiers[0]))
        emulated = emulated_rds.db_instance(ACCOUNT_ID, region, ident)
        check("emulated replica detached",
              emulated.source_db_instance_identifier is None and emulated.status == "available",
              f"{ident}: status {emulated.status}, source "
              f"{emulated.source_db_instance_identifier}")
        wrote_new = [a for a in load.snapshot() if a.database == survivor_label]
        check("writes continue on the new writer", bool(wrote_new),
              f"{len(wrote_new)} writes acknowledged by {survivor_label}")
    else:
        survivor, survivor_label = dbs.primary, "primary"
        check("nothing was promoted", _in_recovery(dbs.standby) and
              emulated_rds.db_instance(ACCOUNT_ID, inv.standby.region,
                                       inv.standby.database.identifier)
              .source_db_instance_identifier is not None,
              "standby PostgreSQL still in recovery, emulated replica still attached")
    # 4. Fencing: the old primary acknowledged nothing after it was cut off.
    acks = load.snapshot()
    if fenced_at is not None:
        late = late_acknowledgements(acks, fenced_at,
                                     killed=fenced_at == timeline.primary_killed_at)
        check("no write acknowledged by the old primary after fencing", not late,
              f"{len(late)} late acknowledgements"
              + "".join(f" (write {a.seq}: COMMIT sent {a.committing_at - fenced_at:+.4f} s, "
                        f"acknowledged {a.acked_at - fenced_at:+.4f} s from the fence)"
                        for a in late[:3])
              + f"; fence time {fence_source}")
    elif scenario.failover_scope is not None:
        check("no write acknowledged by the old primary after fencing", False,
              f"no fence instant to check against: {fence_source}")

    # 5. The standby region alone suffices: a new standby instance boots and logs in, and the
    # backup restores there, with the primary region down.
    for name, ok, detail in app_checks(app, role=APP_ROLE, standby_region=inv.standby.region):
        check(name, ok, detail)
    for name, ok, detail in backup_checks(backup, restore, primary_region=inv.primary.region,
                                          standby_region=inv.standby.region,
                                          outage_at=outage_at):
        check(name, ok, detail)

    # Measurements.
    loss = data_loss(acks, "primary", _present(survivor, dbs.app_database))
    # One RTO per run. When failover.py ran, its report's figure is the RTO (the stated outage
    # -> its verify step's answer from a writable database: the critical path's end); the
    # drill's own probe of the public URL is the evidence that users had the service by then.
    # Without a failover (or a report from the outage), the probe's figure is the RTO.
    probe_rto = None if served_at is None else round(served_at - outage_at, 3)
    failover_rto = (failover_report or {}).get("rtoSeconds")
    by_failover = (scenario.failover_scope is not None and failover_code == 0
                   and isinstance(failover_rto, (int, float))
                   and (failover_report or {}).get("rtoFrom") == "outage")
    rto = round(float(failover_rto), 3) if by_failover else probe_rto  # type: ignore[arg-type]
    rto_source = ("failover.py's report (--outage-started -> its verified writable service)"
                  if by_failover else "the drill's probe of the public health URL")
    promoted = [r for r in world.promotions.records if r.completed_at is not None]
    real_promote = max((r.completed_at - r.requested_at - options.promote_seconds  # type: ignore[operator]
                        for r in promoted), default=0.0)
    switch = _failover_step_seconds(failover_report, "switch-traffic")
    tick = world.resolver.tick_seconds
    # One verification request (failover.py's verify step may include waiting for the
    # service, e.g. the instance refresh in db-failure, which the model counts on its own).
    verify_s = _one_request_seconds(world.front.health_url)
    if scenario.name == "region-outage":
        # The primary's own health check fails within threshold x tick of the outage, in
        # parallel with the promotion, so DNS detection is not on this path.
        detect = 0.0
        waits = max(options.promote_seconds + real_promote, options.scale_seconds)
        critical = waits + switch + verify_s
    elif scenario.name == "db-failure":
        # Sequential by nature: promote, repoint, replace the app instances (they read the
        # endpoint at boot), then the primary site's check must see the app healthy again.
        detect = _detection(inv.primary.health_check_id, tick)
        critical = (options.promote_seconds + real_promote + options.scale_seconds + detect
                    + verify_s)
    else:
        detect = _detection(inv.primary.health_check_id, tick)
        critical = detect + verify_s
    critical = round(critical, 3)
    ratio = None if rto is None or critical <= 0 else round(rto / critical, 3)
    rpo_limit = inv.objectives.rpo_minutes * 60
    rto_limit = inv.objectives.rto_minutes * 60
    check("RTO within the stack's objective", rto is not None and rto <= rto_limit,
          f"{rto} s (rtoMinutes {inv.objectives.rto_minutes})")
    check("RPO within the stack's objective", loss.seconds <= rpo_limit,
          f"{loss.missing} writes, {loss.seconds} s (rpoMinutes {inv.objectives.rpo_minutes})")
    if scenario.failover_scope is not None and failover_code == 0:
        held = (by_failover and probe_rto is not None
                and probe_rto <= float(failover_rto) + PROBE_SLACK_SECONDS)  # type: ignore[arg-type]
        check("failover.py's RTO is the drill's", held,
              f"failover.py {failover_rto} s from the outage "
              f"({(failover_report or {}).get('rtoFrom')}); the public URL was writable for "
              f"the drill's probe at {probe_rto} s")
    # Degraded service: healthy answers from a read-only database, from the first one until
    # writable service (or the end of the wait, when it never came).
    degraded_from = timeline.degraded_at
    degraded_until = served_at if served_at is not None else time.monotonic()
    degraded = (None if degraded_from is None
                else round(max(0.0, degraded_until - degraded_from), 3))
    _failover_events(timeline, failover_report)
    for record in world.promotions.records:
        timeline.event(f"emulator: promote_read_replica({record.identifier}) received",
                       at=record.requested_at)
        if record.completed_at is not None:
            timeline.event(f"emulator: {record.identifier} promoted (real pg_ctl promote done, "
                           "replica detached)", at=record.completed_at)
    for c in checks:
        timeline.event(f"verify: {'PASS' if c.ok else 'FAIL'} {c.name}: {c.detail}",
                       at=time.monotonic())
    ok = all(c.ok for c in checks)
    ratio_met = ratio is not None and ratio <= RATIO_TARGET
    rpo_met = loss.seconds <= RPO_TARGET_SECONDS
    return {
        "scenario": scenario.name,
        "ok": ok,
        "broken": scenario.summary,
        "seed_requires": scenario.seed_requires,
        "rto_seconds": rto,
        "rto_source": rto_source,
        "public_url_writable_seconds": probe_rto,
        "rto_meaning": f"outage -> the public health URL served by the {scenario.serving_site} "
                       "site with a writable database",
        "degraded_seconds": degraded,
        "degraded_from_seconds": None if degraded_from is None else timeline.rel(degraded_from),
        "rpo_seconds": loss.seconds,
        "rpo_transactions": loss.missing,
        "critical_path_seconds": critical,
        "rto_to_critical_path_ratio": ratio,
        "critical_path_model": {
            "promote_seconds": options.promote_seconds if scenario.promotes else 0,
            "real_pg_promote_seconds": round(real_promote, 3),
            "scale_seconds": options.scale_seconds if scenario.failover_scope else 0,
            "switch_seconds": switch, "dns_detection_seconds": round(detect, 3),
            "verification_seconds": round(verify_s, 3)},
        "targets": {
            "ratio_at_most": RATIO_TARGET,
            "ratio_met": ratio_met,
            "rpo_seconds_at_most": RPO_TARGET_SECONDS,
            "rpo_met": rpo_met},
        "objectives": [
            {"name": "orchestration overhead (RTO / critical path)", "measured": ratio,
             "target": f"<= {RATIO_TARGET}", "met": ratio_met,
             "meaning": "the recovery held, but the tooling added more than "
                        f"{round((RATIO_TARGET - 1) * 100)} % to the modelled recovery time "
                        "(failover.py started its work late; docs/drills.md)"},
            {"name": "drill RPO", "measured": loss.seconds,
             "target": f"<= {RPO_TARGET_SECONDS} s", "met": rpo_met,
             "meaning": "acknowledged writes were lost beyond the drill's 1 s target, though "
                        "within the stack's RPO if that check passed"}],
        "markers": markers(world, timeline, acks=acks, failed_at=load.failures_snapshot(),
                           failover_report=failover_report,
                           served_at=None if rto is None else outage_at + rto),
        "series": write_series(acks, load.failures_snapshot(), outage_at),
        "writes": {"acknowledged": len(acks), "failed": load.failures,
                   "lost": loss.missing,
                   "acknowledged_by_old_primary": loss.acknowledged,
                   "missing_on_survivor": loss.missing, "survivor": survivor_label,
                   "last_error": load.last_error},
        "failover": {"exit_code": failover_code, "seconds": failover_seconds,
                     "report": failover_report},
        "standby_region": {"app": app_figures(app, outage_at),
                           "backup": backup_figures(backup, restore, outage_at)},
        "emulator": {"endpoint": world.emulator.endpoint,
                     "unreachable_regions": sorted(world.emulator.outage.regions),
                     "unreachable_services": sorted(world.emulator.outage.services),
                     "refused_requests": world.emulator.outage.refused},
        "verifications": [asdict(c) for c in checks],
        "steps": [{"name": s.name, "seconds": s.seconds, "ok": s.ok, "detail": s.detail}
                  for s in timeline.steps],
        "timeline": timeline.as_json(),
        "settings": {"promote_seconds": options.promote_seconds,
                     "scale_seconds": options.scale_seconds,
                     "resolver_tick_seconds": tick, "load_interval_seconds":
                     options.load_interval, "poll_seconds": options.poll_seconds},
    }


def _step_end(timeline: Timeline, report: dict[str, Any] | None, name: str) -> float | None:
    for step in (report or {}).get("steps", []) or []:
        if isinstance(step, dict) and step.get("name") == name and step.get("ended_at"):
            with contextlib.suppress(TypeError, ValueError):
                return timeline.from_wall(datetime.fromisoformat(step["ended_at"]).timestamp())
    return None


def markers(world: World, timeline: Timeline, *, acks: list[Ack], failed_at: list[float],
            failover_report: dict[str, Any] | None,
            served_at: float | None) -> list[dict[str, Any]]:
    """The chart's phase markers, seconds from the outage: outage, detection (Route 53 first
    moves the record away), promotion (done), traffic switch (failover.py's switch-traffic
    step), degraded and writable service, first good write
    (the first acknowledged write after the write path broke). Only those that happened."""
    outage = timeline.outage_at
    if outage is None:
        return []
    found: list[tuple[str, float | None]] = [("outage", outage)]
    after = [(at, answer) for at, answer in list(world.resolver.history) if at > outage]
    found.append(("detection", after[0][0] if after else None))
    done = [r.completed_at for r in world.promotions.records if r.completed_at is not None]
    found.append(("promotion", min(done) if done else None))
    found.append(("traffic switch", _step_end(timeline, failover_report, "switch-traffic")))
    found.append(("degraded service", timeline.degraded_at))
    found.append(("writable service (RTO)", served_at))
    found.append(("first good write", first_good_write(acks, failed_at, outage)))
    return [{"label": label, "t": timeline.rel(at)} for label, at in found if at is not None]
