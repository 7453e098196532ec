"""The planned-switchover drill: both sites healthy, a steady write load, the real
``scripts/switchover.py`` as a subprocess, then the proof that no acknowledged write was lost.

Nothing breaks. The app writes through whichever site the resolver answers, as ``caresync_app``
(:mod:`caresync_dr.drill.load`: a write counts when COMMIT returned). The command logs in to
both databases as an RDS-like master user -- ``LOGIN NOSUPERUSER CREATEDB CREATEROLE`` with
``pg_signal_backend`` (RDS User Guide, "Understanding the rds_superuser role") -- so the fence
is proven with the privileges RDS gives, not the drill's superuser.

Verified afterwards, from real state:

- every write acknowledged before the fence (by the old writer) is on the new writer;
- the old writer holds nothing the new writer lacks (nothing committed after the final WAL
  position, acknowledged or not);
- writes tried during the fence were refused (never acknowledged), and none was lost: a refused
  write is on neither database, or (its COMMIT reached the old writer and the answer was cut
  by the fence) on both;
- the new writer is promoted and takes the app's writes; the old writer stays fenced;
- the resolver answers the standby site.

Measured: the write-unavailability window as the client saw it (last acknowledged write on the
old writer to the first on the new one) and as switchover.py reports it (fence to verified).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psycopg.conninfo import make_conninfo

from caresync_dr.db.roles import APP_ROLE
from caresync_dr.drill.databases import wait_for_role
from caresync_dr.drill.load import Ack, WriteLoad
from caresync_dr.drill.report import crash_report
from caresync_dr.drill.session import emulated_world
from caresync_dr.drill.timeline import Timeline
from caresync_dr.drill.world import World
from caresync_dr.pg.cluster import PostgresCluster
from caresync_dr.pg.orphans import DRILL_PREFIX, owned_temp_dir

if TYPE_CHECKING:
    from caresync_dr.drill.runner import DrillOptions

log = logging.getLogger(__name__)
MASTER = "caresync_master"   # stands in for the RDS master user (not a superuser)


@dataclass(frozen=True)
class Verification:
    name: str
    ok: bool
    detail: str


def create_master_user(world: World) -> None:
    """An RDS-like master user on the primary (replicated to the standby)."""
    dbs = world.databases
    dbs.primary.psql(f"CREATE ROLE {MASTER} LOGIN NOSUPERUSER CREATEDB CREATEROLE; "
                     f"GRANT pg_signal_backend TO {MASTER}")
    wait_for_role(dbs.standby, MASTER)


def master_url(world: World, cluster: PostgresCluster) -> str:
    return make_conninfo(host="127.0.0.1", port=cluster.port, user=MASTER,
                         dbname=world.databases.app_database)


def switchover_argv(world: World, options: DrillOptions, work: Path, *, to: str = "standby",
                    source: PostgresCluster | None = None,
                    target: PostgresCluster | None = None) -> list[str]:
    """``switchover.py --to <to> --yes`` from ``source`` (default: the primary cluster) to
    ``target`` (default: the standby cluster) as the master user, its report and journal in
    ``work``, against the emulator and the drill's public front."""
    dbs = world.databases
    return [sys.executable, str(options.project_dir / "scripts" / "switchover.py"),
            "--to", to, "--stack", "dr", "--yes",
            "--report", str(work / f"switchover-{to}-report.json"),
            "--journal-file", str(work / f"switchover-{to}-journal.json"),
            "--source-database-url", master_url(world, source or dbs.primary),
            "--target-database-url", master_url(world, target or dbs.standby),
            "--catch-up-timeout", "30",
            "--health-url", world.front.health_url,
            "--poll-seconds", str(options.poll_seconds),
            "--poll-max-seconds", str(options.poll_seconds),
            "--wait-timeout", str(max(30.0, options.promote_seconds * 4)),
            "--verify-timeout", str(options.serve_timeout),
            "--project-dir", str(options.project_dir)]


def switchover_env(world: World) -> dict[str, str]:
    """The environment that sends the command's AWS calls to the emulator."""
    return {**os.environ, **world.emulator.env()}


def run_switchover(world: World, options: DrillOptions, work: Path, timeline: Timeline, *,
                   to: str = "standby", source: PostgresCluster | None = None,
                   target: PostgresCluster | None = None
                   ) -> tuple[int, dict[str, Any] | None, float]:
    """The operator's command (:func:`switchover_argv`) as a subprocess talking only to the
    emulator and the two local databases; (exit code, its report, seconds)."""
    report = work / f"switchover-{to}-report.json"
    argv = switchover_argv(world, options, work, to=to, source=source, target=target)
    env = switchover_env(world)
    started = time.monotonic()
    timeline.event(f"running: switchover.py --to {to} --stack dr --yes")
    proc = subprocess.Popen(argv, cwd=options.project_dir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            log.info("  switchover | %s", line.rstrip())
        code = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    seconds = round(time.monotonic() - started, 3)
    timeline.event(f"switchover.py exited {code} after {seconds:.3f} s")
    data: dict[str, Any] | None = None
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(report.read_text())
    return code, data, seconds


def _present(cluster: PostgresCluster, dbname: str) -> set[int]:
    out = cluster.psql("select seq from patients where seq > 0", dbname=dbname)
    return {int(x) for x in out.split()} if out else set()


def _login(cluster: PostgresCluster) -> bool | None:
    out = cluster.psql(f"select rolcanlogin from pg_roles where rolname = '{APP_ROLE.name}'")
    return {"t": True, "f": False}.get(out)


def _milestone(report: dict[str, Any] | None, event: str) -> float | None:
    for m in ((report or {}).get("switchover") or {}).get("milestones") or []:
        if m.get("event") == event:
            return float(m["secondsAfterFence"])
    return None


def verify(world: World, load: WriteLoad, attempted: int, code: int,
           report: dict[str, Any] | None) -> tuple[list[Verification], dict[str, Any]]:
    """Every verification re-reads the two databases; returns them and the figures."""
    dbs = world.databases
    db = dbs.app_database
    acks = load.snapshot()
    old = [a for a in acks if a.database == "primary"]
    new = [a for a in acks if a.database == "standby"]
    on_new, on_old = _present(dbs.standby, db), _present(dbs.primary, db)
    acked = {a.seq for a in acks}
    refused = set(range(1, attempted + 1)) - acked
    lost_old = sorted(a.seq for a in old if a.seq not in on_new)
    lost_new = sorted(a.seq for a in new if a.seq not in on_new)
    only_old = sorted(on_old - on_new)
    refused_lost = sorted(s for s in refused if s in on_old and s not in on_new)
    ambiguous = sorted(s for s in refused if s in on_new)
    section = (report or {}).get("switchover") or {}
    checks: list[Verification] = []

    def check(name: str, ok: bool, detail: str) -> None:
        checks.append(Verification(name, ok, detail))

    check("switchover.py succeeded", code == 0,
          f"exit {code}: {(report or {}).get('message', 'no report')}")
    check("every write acknowledged before the fence is on the new writer", not lost_old,
          f"{len(old)} acknowledged by the old writer, {len(lost_old)} missing"
          + (f" (first {lost_old[:5]})" if lost_old else ""))
    check("the old writer holds nothing the new writer lacks", not only_old,
          f"{len(on_old)} rows on the old writer, {len(only_old)} not on the new one"
          + (f" (first {only_old[:5]})" if only_old else ""))
    check("writes during the fence were refused, not lost", bool(refused) and not refused_lost,
          f"{len(refused)} refused (never acknowledged); {len(ambiguous)} of them committed "
          f"before the fence cut the answer and are on the new writer; {len(refused_lost)} "
          "only on the old writer")
    check("writes continue on the new writer", bool(new) and not lost_new,
          f"{len(new)} acknowledged by the new writer, {len(lost_new)} missing")
    in_recovery = dbs.standby.psql("select pg_is_in_recovery()")
    check("the standby was promoted", in_recovery == "f", f"pg_is_in_recovery = {in_recovery}")
    check("the old writer stays fenced", _login(dbs.primary) is False,
          f"{APP_ROLE.name} rolcanlogin on the old writer = {_login(dbs.primary)}")
    answer = world.resolver.current()
    check("resolver answers the standby site", answer is not None and answer.failover
          == "SECONDARY", f"record answers {answer.failover if answer else None}")
    check("switchover.py reports 0 acknowledged writes lost",
          section.get("acknowledgedWritesLost") == 0,
          f"acknowledgedWritesLost = {section.get('acknowledgedWritesLost')}, final position "
          f"{section.get('finalLsn')}")
    window = client_window(old, new)
    figures = {
        "write_unavailable_seconds": window,
        "command_write_unavailable_seconds": section.get("writeUnavailableSeconds"),
        "final_lsn": section.get("finalLsn"),
        "fence_to_caught_up_seconds": _milestone(report, "replica replayed it"),
        "fence_to_promoted_seconds": _milestone(report, "new writer open to the app"),
        "writes": {"attempted": attempted, "acknowledged": len(acks),
                   "acknowledged_by_old_writer": len(old),
                   # the common result shape's names (caresync_dr/drill/report.py)
                   "acknowledged_by_old_primary": len(old),
                   "missing_on_survivor": len(lost_old) + len(lost_new),
                   "acknowledged_by_new_writer": len(new), "refused": len(refused),
                   "refused_but_committed": len(ambiguous),
                   "acknowledged_lost": len(lost_old) + len(lost_new),
                   "failed": load.failures, "survivor": "standby",
                   "last_error": load.last_error},
    }
    return checks, figures


def client_window(old: list[Ack], new: list[Ack]) -> float | None:
    """Last write acknowledged by the old writer to the first acknowledged by the new one."""
    if not old or not new:
        return None
    return round(min(a.acked_at for a in new) - max(a.acked_at for a in old), 3)


@contextlib.contextmanager
def switchover_world(options: DrillOptions, timeline: Timeline) -> Iterator[World]:
    """The emulator, both stacks deployed, the real primary and standby with the RDS-like
    master user; everything stopped and removed on exit (``options.keep`` leaves it)."""
    with emulated_world(options, timeline, prepare=create_master_user) as session:
        yield session.world


def run_switchover_drill(options: DrillOptions) -> dict[str, Any]:
    """One planned-switchover drill end to end; returns the report (``ok``: all checks held).
    Raises :class:`~caresync_dr.drill.runner.DrillAbortedError` when it cannot finish."""
    from caresync_dr.drill.runner import DrillAbortedError

    scenario = options.scenario
    script = options.project_dir / "scripts" / "switchover.py"
    if not script.is_file():
        raise FileNotFoundError(f"{script} does not exist: the drill runs the real command")
    timeline = Timeline()
    work = owned_temp_dir(DRILL_PREFIX)
    loads: list[WriteLoad] = []
    try:
        with switchover_world(options, timeline) as world:
            try:
                return _drill(world, options, work, timeline, loads)
            finally:
                for load in loads:
                    load.stop()
    except (Exception, KeyboardInterrupt) as exc:
        error = ("interrupted" if isinstance(exc, KeyboardInterrupt)
                 else f"{type(exc).__name__}: {exc}")
        raise DrillAbortedError(crash_report(scenario.name, error, timeline)) from exc
    finally:
        if not options.keep:
            shutil.rmtree(work, ignore_errors=True)


def _drill(world: World, options: DrillOptions, work: Path, timeline: Timeline,
           loads: list[WriteLoad]) -> dict[str, Any]:
    scenario = options.scenario
    with timeline.step("baseline: primary serves, steady write load") as step:
        answer = world.resolver.current()
        if answer is None or answer.failover != "PRIMARY":
            raise RuntimeError(f"before the switchover the record answers {answer}")
        load = WriteLoad(target=world.write_target, interval=options.load_interval)
        loads.append(load)
        load.start()
        time.sleep(options.steady_seconds)
        step.detail = f"{len(load.acks)} writes acknowledged by the primary"
    timeline.outage_at = time.monotonic()
    timeline.outage_wall = time.time()
    timeline.event(f"SWITCHOVER ({scenario.name}): {scenario.summary}")
    with timeline.step("switchover.py") as step:
        code, report, seconds = run_switchover(world, options, work, timeline)
        step.ok = code == 0
        step.detail = f"exit {code}"
    for m in ((report or {}).get("switchover") or {}).get("milestones") or []:
        with contextlib.suppress(KeyError, TypeError, ValueError):
            timeline.event_at_wall(datetime.fromisoformat(m["at"]).timestamp(),
                                   f"switchover.py: {m['event']}")
    time.sleep(0.5)   # writes on the new writer prove the write path end to end
    load.stop()
    with timeline.step("verify and measure"):
        checks, figures = verify(world, load, load.attempted, code, report)
    ok = all(c.ok for c in checks)
    lost = figures["writes"]["acknowledged_lost"]
    return {
        "scenario": scenario.name, "ok": ok, "error": None,
        # The common result shape (caresync_dr/drill/report.py): for a planned switchover the
        # RTO is the write-unavailability window and the RPO is data loss (0).
        "rto_seconds": figures["write_unavailable_seconds"],
        "rpo_seconds": 0.0 if not lost else None,
        "rpo_transactions": lost,
        "critical_path_seconds": None, "rto_to_critical_path_ratio": None,
        "targets": {"ratio_at_most": None, "ratio_met": True, "rpo_seconds_at_most": 0.0,
                    "rpo_met": lost == 0},
        "writes": figures["writes"],
        "switchover": {"exit_code": code, "seconds": seconds,
                       **{k: v for k, v in figures.items() if k != "writes"},
                       "report": report},
        "verifications": [asdict(c) for c in checks],
        "steps": [{"name": s.name, "seconds": s.seconds, "ok": s.ok, "detail": s.detail}
                  for s in timeline.steps],
        "timeline": timeline.as_json(),
        "settings": {"promote_seconds": options.promote_seconds,
                     "scale_seconds": options.scale_seconds,
                     "load_interval_seconds": options.load_interval,
                     "poll_seconds": options.poll_seconds},
    }
