"""The drill: deploy, load, inject the scenario, run the real failover, verify and measure.

RTO is measured from the instant the scenario is injected until the public health URL (the
front, following the resolver's answer) first returns a healthy answer from the site that must
serve with a *writable* database: writable service, the one RTO figure of a run. A healthy
answer from a read-only replica before that (Route 53 moving traffic to the standby site) is
degraded service, measured on its own. RPO is measured from the write ledger against the
surviving database. The critical path is the modelled lower bound of the same run: the longest
of the concurrent waits (emulated promotion plus the real ``pg_ctl promote``; scale-up) plus
the traffic switch, Route 53's detection (failure threshold x resolver tick) and one
verification request; see docs/drills.md.
"""

from __future__ import annotations

import compileall
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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from caresync_dr.aws import warm_model_cache
from caresync_dr.drill.backups import BackupBeforeOutage, start_restore_test
from caresync_dr.drill.databases import kill_hard
from caresync_dr.drill.load import WriteLoad
from caresync_dr.drill.report import crash_report
from caresync_dr.drill.round_trip import RoundTrip, continue_round_trip
from caresync_dr.drill.scenarios import Scenario
from caresync_dr.drill.standby_only import AppEvidence, new_standby_instance
from caresync_dr.drill.timeline import Timeline
from caresync_dr.drill.verify import measure_and_verify
from caresync_dr.drill.world import World, build_world
from caresync_dr.emulation import cloudwatch
from caresync_dr.emulation.network import GLOBAL_CONTROL_PLANES
from caresync_dr.emulation.notify_doubles import ChatDouble
from caresync_dr.emulation.patching import restore_all
from caresync_dr.emulation.server import Emulator, reset_backends
from caresync_dr.emulation.warmup import prime_moto
from caresync_dr.failover.context import CLIENT_SERVICES, client_operations
from caresync_dr.notify.secrets import ENV_CHAT_WEBHOOK
from caresync_dr.pg.orphans import DRILL_PREFIX, owned_temp_dir, sweep

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[2]


class DrillAbortedError(RuntimeError):
    """The drill could not finish; ``report`` holds the error and the steps recorded so far."""

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__(report["error"])
        self.report = report


@dataclass(frozen=True)
class DrillOptions:
    scenario: Scenario
    promote_seconds: float = 8.0
    scale_seconds: float = 5.0
    keep: bool = False
    project_dir: Path = REPO_ROOT
    failover_script: Path = REPO_ROOT / "scripts" / "failover.py"
    poll_seconds: float = 0.1        # failover.py's state polling against the emulator
    steady_seconds: float = 1.0      # steady write load before the outage
    load_interval: float = 0.025     # one write every 25 ms
    serve_timeout: float = 60.0      # give up waiting for the service after this long


@dataclass
class Probe:
    """Polls the public health URL; remembers the first answer that meets ``wanted`` (and,
    before it, the first that meets ``degraded``). One poller for both: the drill's own
    requests compete with the emulator failover.py talks to."""

    url: str
    wanted: Callable[[dict[str, Any]], bool]
    degraded: Callable[[dict[str, Any]], bool] = lambda _body: False
    served_at: float | None = None
    degraded_at: float | None = None
    last: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.is_set() and self.served_at is None:
            try:
                with urllib.request.urlopen(self.url, timeout=1) as resp:
                    body = json.loads(resp.read())
                if isinstance(body, dict) and self.wanted(body):
                    self.served_at = time.monotonic()
                    return
                if self.degraded_at is None and isinstance(body, dict) and self.degraded(body):
                    self.degraded_at = time.monotonic()
                self.last = json.dumps(body)[:200]
            except (OSError, ValueError) as exc:
                self.last = str(exc)[:200]
            self._stop.wait(0.05)

    def stop(self) -> None:
        self._stop.set()


_CLOUDWATCH: dict[tuple[str, str], Any] = {}
_CLOUDWATCH_LOCK = threading.Lock()


def _cloudwatch(world: World, region: str) -> Any:
    """One CloudWatch client per emulator and region, built before the outage: building it
    at the outage would take CPU from the emulator just as failover.py starts talking to it."""
    key = (world.emulator.endpoint, region)
    with _CLOUDWATCH_LOCK:
        if key not in _CLOUDWATCH:
            _CLOUDWATCH[key] = boto3.session.Session().client(
                "cloudwatch", region_name=region, endpoint_url=world.emulator.endpoint,
                aws_access_key_id="testing", aws_secret_access_key="testing")
        return _CLOUDWATCH[key]


def publish_replica_lag(world: World, timeline: Timeline) -> None:
    """What RDS publishes every minute: ReplicaLag of each replica, measured on the real one.

    Stamped a minute ago: RDS's last datapoint before an outage is up to a minute old, and the
    -1 that follows it (``replication_stops``) falls in the next minute, as on RDS -- in the
    same minute CloudWatch's Maximum would hide it."""
    dbs = world.databases
    raw = dbs.primary.psql("select coalesce(max(extract(epoch from replay_lag)), 0) "
                           "from pg_stat_replication")
    lag = round(float(raw or 0), 3)
    inv = world.inventory
    targets = [(inv.standby.region, inv.standby.database.identifier)]
    targets += [(inv.primary.region, r) for r in inv.primary.database.replica_identifiers]
    for region, identifier in targets:
        cloudwatch.publish_replica_lag(_cloudwatch(world, region), identifier, lag,
                                       at=datetime.now(UTC) - timedelta(minutes=1))
    timeline.event(f"RDS ReplicaLag published from the real standbys: {lag:.3f} s "
                   "(RDS's last datapoint before the outage, stamped a minute ago)")


def replication_stops(world: World, timeline: Timeline) -> threading.Thread:
    """The primary database is gone: RDS now reports every replica of it broken -- read
    replication ``error`` and ``ReplicaLag`` -1 (RDS User Guide, "Monitoring read
    replication"), in a real regional outage from the first minute (decision D11). The drill
    shows the worst case at once; a datapoint in a region that is down goes nowhere. The
    replication status changes now; the returned thread publishes the metric once started."""
    inv = world.inventory
    replicas = [(inv.standby.region, inv.standby.database.identifier)]
    replicas += [(inv.primary.region, r) for r in inv.primary.database.replica_identifiers]
    world.replication_broken.update(identifier for _, identifier in replicas)

    def publish() -> None:  # RDS's doing, beside the operator's: not on the drill's path
        for region, identifier in replicas:
            if region not in world.emulator.outage.regions:
                cloudwatch.publish_replica_lag(_cloudwatch(world, region), identifier, -1)
        timeline.event("RDS reports read replication 'error' and ReplicaLag -1 for "
                       f"{', '.join(i for _, i in replicas)} (their source is gone)")

    return threading.Thread(target=publish, daemon=True, name="rds-replication-stopped")


def inject(world: World, scenario: Scenario, timeline: Timeline,
           after: list[Callable[[], None]] | None = None) -> float:
    """Break what the scenario breaks, all at one instant; returns that instant.

    ``after`` receives what follows from the outage without being the outage itself: RDS
    publishing the broken replicas' ReplicaLag (~15 ms of this process's CPU in moto, which
    delayed the operator's command, a subprocess, by as much). The caller starts it as soon as
    failover.py is started (still ~0.2 s before that reads a metric; judged as of the stated
    outage start, the reading is the same either way); without ``after`` it starts here."""
    at = time.monotonic()
    timeline.outage_at = at
    timeline.outage_wall = time.time()
    primary_region = world.inventory.primary.region
    if scenario.region_down:
        world.emulator.take_down(regions=[primary_region], services=GLOBAL_CONTROL_PLANES)
    if scenario.kill_primary_db:
        kill_hard(world.databases.primary)
        # From here no process of the old primary exists. This is the drill's kill -9, not
        # failover.py's fencing; verify.py uses it only where failover.py could not fence.
        timeline.primary_killed_at = time.monotonic()
    if scenario.kill_primary_app:
        # Its port closes within one poll of the server loop (50 ms); the operator's
        # command does not wait for that.
        threading.Thread(target=world.apps["primary"].kill, daemon=True,
                         name="kill-primary-app").start()
    timeline.event(f"OUTAGE ({scenario.name}): {scenario.summary}", at=at)
    if scenario.kill_primary_db:
        publisher = replication_stops(world, timeline)
        if after is None:
            publisher.start()
        else:
            after.append(publisher.start)
    return at


def run_failover(world: World, options: DrillOptions, work: Path,
                 timeline: Timeline, *, name: str = "failover",
                 project_dir: Path | None = None, outage_wall: float | None = None,
                 chat: ChatDouble | None = None,
                 after_start: Callable[[], None] | None = None,
                 ) -> tuple[int | None, dict[str, Any] | None, float]:
    """The operator's command, as a subprocess talking only to the emulator. ``project_dir``:
    the stack files it reads (default the drill's); ``outage_wall``: the outage start it is
    given (default the timeline's); ``chat``: the incident channel's webhook double, when the
    caller started it already (before the outage: the channel exists before the incident);
    ``after_start``: called once the command is started (or found not to be run)."""
    scope = options.scenario.failover_scope
    if scope is None:
        if after_start is not None:
            after_start()
        timeline.event("no failover is run: traffic must move by health checks alone")
        return None, None, 0.0
    report = work / f"{name}-report.json"
    outage_wall = timeline.outage_wall if outage_wall is None else outage_wall
    argv = [sys.executable, str(options.failover_script), "--stack", "dr", "--scope", scope,
            "--yes", "--report", str(report), "--journal-file", str(work / f"{name}.journal.json"),
            "--health-url", world.front.health_url,
            "--poll-seconds", str(options.poll_seconds),
            "--poll-max-seconds", str(options.poll_seconds),
            "--wait-timeout", str(max(30.0, options.promote_seconds * 4)),
            "--verify-timeout", str(options.serve_timeout),
            "--project-dir", str(project_dir or options.project_dir)]
    if outage_wall is not None:  # the operator states when the primary stopped (D11)
        argv += ["--outage-started", datetime.fromtimestamp(outage_wall, UTC).isoformat()]
    # The chat channel posts to a local Slack-compatible webhook that records every call
    # (docs/communication.md): the drill's report shows what the incident channel was told.
    with contextlib.ExitStack() as stack:
        if chat is None:
            chat = stack.enter_context(ChatDouble())
        env = {**os.environ, **world.emulator.env(), ENV_CHAT_WEBHOOK: chat.url}
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=options.project_dir, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        timeline.event(f"running: failover.py --stack dr --scope {scope} --yes", at=started)
        assert proc.stdout is not None
        try:
            if after_start is not None:
                after_start()
            for line in proc.stdout:
                log.debug("  failover | %s", line.rstrip())
            code = proc.wait()
        finally:
            if proc.poll() is None:  # interrupted (Ctrl-C) or failed reading its output
                proc.kill()
                proc.wait()
    seconds = round(time.monotonic() - started, 3)
    timeline.event(f"failover.py exited {code} after {seconds:.3f} s")
    data: dict[str, Any] | None = None
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(report.read_text())
    return code, data, seconds


def wanted_answer(world: World, scenario: Scenario) -> Callable[[dict[str, Any]], bool]:
    """Writable service: the serving site answers ok with a database that accepts writes."""
    site = scenario.serving_site
    region = (world.inventory.primary.region if site == "primary"
              else world.inventory.standby.region)

    def ok(body: dict[str, Any]) -> bool:
        database = body.get("database") or {}
        if body.get("status") != "ok" or body.get("site") != site or body.get("region") != region:
            return False
        return database.get("writable") is True

    return ok


def with_round_trip(report: dict[str, Any], trip: RoundTrip,
                    timeline: Timeline) -> dict[str, Any]:
    """The failover's report with the round trip's stages, checks and figures added."""
    verifications = report["verifications"] + [
        {"name": name, "ok": ok, "detail": detail} for name, ok, detail in trip.verifications]
    return {**report, "ok": all(v["ok"] for v in verifications),
            "verifications": verifications, "round_trip": trip.figures,
            "steps": [{"name": s.name, "seconds": s.seconds, "ok": s.ok, "detail": s.detail}
                      for s in timeline.steps],
            "timeline": timeline.as_json()}


def degraded_answer(body: dict[str, Any]) -> bool:
    """Degraded service: some site answers ok, but its database is a read-only replica."""
    return body.get("status") == "ok" and (body.get("database") or {}).get("writable") is False


def cache_bytecode(failover_script: Path) -> None:
    """As on an operator's host that has run failover.py before (its daily ``--check``): the
    package's bytecode and the botocore model cache are current. Without bytecode, a host
    with ``PYTHONDONTWRITEBYTECODE`` (as the drill machine has) or a read-only checkout
    compiles every module the command imports at each start, ~40 ms of CPU the RTO would
    count. Only stale files are rewritten (into the gitignored ``__pycache__``); a tree that
    cannot be written is left as it is."""
    package = failover_script.resolve().parents[1] / "caresync_dr"
    if package.is_dir():
        with contextlib.suppress(OSError):
            compileall.compile_dir(str(package), quiet=2)
    # Likewise the parsed botocore models its clients load (caresync_dr.model_cache): the
    # daily --check leaves them; without them each start parses ~0.07 CPU-s of JSON.
    warm_model_cache(CLIENT_SERVICES, client_operations())


def run_drill(options: DrillOptions) -> dict[str, Any]:
    """Run one drill end to end; returns the report (``ok`` says whether all checks passed)."""
    sweep()  # what killed drills left: their servers hold ports, memory and patient-like data
    scenario = options.scenario
    if scenario.in_region:
        from caresync_dr.drill.in_region import run_in_region

        return run_in_region(options)
    if scenario.operation == "switchover":   # its own steps: caresync_dr/drill/switchover.py
        from caresync_dr.drill.switchover import run_switchover_drill

        return run_switchover_drill(options)
    if scenario.failover_scope is not None and not options.failover_script.is_file():
        raise FileNotFoundError(f"{options.failover_script} does not exist: the drill runs the "
                                "real failover command and cannot stand in for it")
    if scenario.failover_scope is not None:
        cache_bytecode(options.failover_script)
    timeline = Timeline()
    work = owned_temp_dir(DRILL_PREFIX)
    cleanups: list[Callable[[], None]] = []
    emulator = Emulator()
    world: World | None = None
    load: WriteLoad | None = None
    try:
        with timeline.step("start emulated AWS"):
            restore_all()  # moto as moto, whatever ran in this process before
            reset_backends()
            emulator.start()
            cleanups.append(emulator.stop)
            timeline.event(f"emulated AWS listening on {emulator.endpoint}")
        with timeline.step("deploy prod, dr, prod and start the data path"):
            world = build_world(emulator, project_dir=options.project_dir,
                                promote_seconds=options.promote_seconds,
                                scale_seconds=options.scale_seconds,
                                with_local_replica=scenario.needs_local_replica,
                                on_cleanup=lambda stop: cleanups.append(
                                    lambda: stop(options.keep)))
            timeline.event(f"stacks deployed into the emulator in "
                           f"{world.deployment.seconds:.2f} s; PostgreSQL primary + "
                           f"{len(world.databases.all()) - 1} streaming replica(s) running")
        with timeline.step("baseline: primary serves, steady write load") as step:
            answer = world.resolver.current()
            if answer is None or answer.failover != "PRIMARY":
                raise RuntimeError(f"before the outage the record answers {answer}, "
                                   "not the primary")
            load = WriteLoad(target=world.write_target, interval=options.load_interval)
            load.start()
            backup = (BackupBeforeOutage(world, options.project_dir, work)
                      if scenario.standby_alone else None)
            # moto's first-use costs (caresync_dr.emulation.warmup) are paid during the
            # steady load, not by failover.py's first calls after the outage.
            primer = threading.Thread(target=prime_moto, args=(CLIENT_SERVICES,),
                                      daemon=True, name="prime-moto")
            primer.start()
            time.sleep(options.steady_seconds)
            primer.join()
            if backup is not None:
                backup.finish(timeline)
            publish_replica_lag(world, timeline)
            step.detail = f"{len(load.acks)} writes acknowledged by the primary"
        probe = Probe(world.front.health_url, wanted_answer(world, scenario),
                      degraded=degraded_answer)
        # The incident channel (its webhook double) is there before the incident.
        chat = ChatDouble()
        cleanups.append(chat.close)
        # Started once failover.py is: RDS's metric publication (inject) and the drill's probe
        # of the public URL take this process's CPU, which the command's start would wait for.
        after_start: list[Callable[[], None]] = []
        with timeline.step("inject the outage"):
            outage_at = inject(world, scenario, timeline, after_start)
        probe_thread = threading.Thread(target=probe.run, daemon=True, name="rto-probe")
        after_start.append(probe_thread.start)
        restore = (start_restore_test(world, options.project_dir, work, timeline,
                                      served=lambda: probe.served_at is not None,
                                      wait_at_most=options.serve_timeout)
                   if backup is not None else None)

        def start_after() -> None:
            for start in after_start:
                start()

        with timeline.step("failover.py") as step:
            code, failover_report, failover_seconds = run_failover(
                world, options, work, timeline, chat=chat, after_start=start_after)
            step.ok = code in (None, 0)
            step.detail = "not run" if code is None else f"exit {code}"
        with timeline.step("wait until the public health URL is served") as step:
            # A failed failover gets a short grace (it may have done enough), not the full wait.
            limit = options.serve_timeout if code in (None, 0) else 3.0
            probe_thread.join(max(0.0, limit - (time.monotonic() - outage_at)))
            probe.stop()
            step.ok = probe.served_at is not None
            step.detail = "served" if step.ok else f"not served; last answer: {probe.last}"
            if probe.degraded_at is not None:
                timeline.degraded_at = probe.degraded_at
                timeline.event("public health URL answers from a read-only database "
                               "(degraded service)", at=probe.degraded_at)
            if probe.served_at is not None:
                timeline.event(f"public health URL served by the {scenario.serving_site} "
                               "site, database writable", at=probe.served_at)
        evidence: AppEvidence | None = None
        if scenario.standby_alone:
            with timeline.step(f"a new standby instance boots, "
                               f"{world.inventory.primary.region} down") as step:
                evidence = new_standby_instance(world, outage_at)
                step.ok = bool(evidence.boots) and evidence.boots[-1].ok
                step.detail = (f"HTTP {evidence.health_code}, user "
                               f"{(evidence.health.get('database') or {}).get('user')}")
        time.sleep(0.3)  # a few writes on the new writer prove the write path end to end
        load.stop()
        if restore is not None:
            with timeline.step("restore test in the standby region") as step:
                step.ok = restore.join(max(60.0, options.serve_timeout -
                                           (time.monotonic() - outage_at)))
                step.detail = (f"exit {restore.run.exit_code}" if step.ok
                               else "still running: gave up waiting")
        with timeline.step("verify and measure"):
            report = measure_and_verify(
                world, scenario, options, timeline=timeline, load=load,
                served_at=probe.served_at, failover_code=code,
                failover_report=failover_report, failover_seconds=failover_seconds,
                backup=backup.run if backup is not None else None,
                restore=restore.run if restore is not None else None, app=evidence)
        if scenario.round_trip:
            report = with_round_trip(report, continue_round_trip(world, options, work,
                                                                  timeline), timeline)
        return report
    except (Exception, KeyboardInterrupt) as exc:
        error = ("interrupted" if isinstance(exc, KeyboardInterrupt)
                 else f"{type(exc).__name__}: {exc}")
        raise DrillAbortedError(crash_report(scenario.name, error, timeline)) from exc
    finally:
        cleanup_started = time.monotonic()
        if load is not None:
            load.stop()
        if world is not None:
            world.stop(keep=options.keep)
        for undo in reversed(cleanups):
            with contextlib.suppress(Exception):
                undo()
        reset_backends()
        if options.keep:
            log.info("--keep: drill files kept in %s", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
        log.debug("cleaned up in %.1f s", time.monotonic() - cleanup_started)
