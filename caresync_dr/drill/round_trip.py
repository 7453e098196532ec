"""The round trip (issue 15 item 2, scenario ``round-trip``): after the region-outage failover
the old region recovers, ``caresync-failback`` re-protects it from the promoted writer, the
planned switchover returns home, and the same command re-protects the standby site. The data
is checked at each stage against the write ledger.

What is real: PostgreSQL 15 (the new generation is a streaming replica made with
``pg_basebackup`` from the promoted writer), the failback command and its engine (in this
process, with the emulator as AWS), the program (``__main__.py`` under the mock runtime for
every ``pulumi up`` the command runs). :class:`DrillPulumi` stands in for the Pulumi CLI: it
runs the program with the stack files the command wrote, creates what is new in the emulator
through the bootstrap's handlers, judges the update with the lifecycle model
(``caresync_dr.emulation.lifecycle``: a refused update fails the drill) and carries out the
plan's deletions (a retired generation, a replication rule the program dropped), after a
refresh of what RDS changed behind Pulumi's back (a promotion).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from caresync_dr.db.roles import ROLES
from caresync_dr.drill.databases import _standby_of, kill_hard, wait_for_role
from caresync_dr.drill.deploy import Deployment
from caresync_dr.drill.load import Ack, WriteLoad
from caresync_dr.drill.timeline import Timeline
from caresync_dr.drill.world import World, db_address
from caresync_dr.emulation import cloudwatch
from caresync_dr.emulation.lifecycle import LifecycleRefusedError, check, plan
from caresync_dr.failback.deploy import DeployFailedError
from caresync_dr.offline.runtime import ProgramRun, RegisteredResource, run_program
from caresync_dr.pg.cluster import PostgresCluster
from caresync_dr.settings import read_stack_file

if TYPE_CHECKING:
    from caresync_dr.drill.runner import DrillOptions

log = logging.getLogger(__name__)
RDS_INSTANCE = "aws:rds/instance:Instance"
REPLICATION_CONFIG = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
SSM_PARAMETER = "aws:ssm/parameter:Parameter"
HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
STACK_FILES = ("Pulumi.yaml", "Pulumi.prod.yaml", "Pulumi.dr.yaml")


def _config_value(value: object) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class NewReplica:
    """A database generation the drill built as a real streaming replica."""

    identifier: str
    region: str
    cluster: PostgresCluster
    source_label: str


ReplicaBuilt = Callable[[str, str, str], "NewReplica | None"]


@dataclass
class DrillPulumi:
    """``pulumi up --refresh`` of one stack against the emulator (a failback ``Deployer``).

    ``on_replica(identifier, region, source ARN)`` is RDS's copy of the data for each new
    cross-region replica the update created (the drill: ``pg_basebackup`` from the real
    writer); what it returns is kept in ``built``."""

    deployment: Deployment
    regions: dict[str, str]              # stack -> its region
    project: Path                        # the stack files the failback command edits
    program_dir: Path                    # where __main__.py lives
    event: Callable[[str], None]
    on_replica: ReplicaBuilt
    runs: dict[str, ProgramRun] = field(default_factory=dict)
    built: list[NewReplica] = field(default_factory=list)
    plans: list[dict[str, Any]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        for stack in ("prod", "dr"):
            run = ProgramRun(stack, list(self.deployment.resources[stack]),
                             dict(self.deployment.outputs[stack]))
            self.runs[stack] = run
            self.seen.update(_replica_ids(run))

    # --- the Deployer protocol -------------------------------------------------------------
    def command_line(self, stack: str) -> str:
        return (f"pulumi up --stack {stack} --refresh --yes (drill: the program under the mock "
                "runtime against the emulator)")

    def unavailable(self) -> str | None:
        return None

    def up(self, stack: str, progress: Callable[[str], None]) -> None:
        values, _ = read_stack_file(stack, self.project)
        overrides = {key: _config_value(value) for key, value in values.items()}
        overrides.setdefault("dbRetiring", "")
        other = "dr" if stack == "prod" else "prod"
        before = self._refreshed(stack)
        try:
            after = run_program(stack, project_dir=self.program_dir,
                                config_overrides=overrides,
                                stack_references={other: self.runs[other].outputs},
                                handler=self.deployment.handlers[stack])
        except Exception as exc:  # a setting or AWS rule the program refuses
            raise DeployFailedError(f"pulumi up -s {stack}: {exc}") from exc
        try:
            result = check(plan(before, after))
        except LifecycleRefusedError as exc:
            raise DeployFailedError(f"pulumi up -s {stack} refused: {exc}") from exc
        actions = {a: len(result.with_action(a)) for a in
                   ("create", "update", "replace", "delete", "retain")}
        self.plans.append({"stack": stack, "summary": result.summary().splitlines(),
                           "actions": actions})
        progress(f"pulumi up -s {stack}: " + ", ".join(f"{a} {n}" for a, n in actions.items()
                                                        if n))
        by_urn = {r.urn: r for r in before.resources}
        for step in result.with_action("delete"):
            self._delete(by_urn[step.urn], stack)
        self._restore_calculated_checks(after)
        self.runs[stack] = after
        for ident, (region, source) in _replica_ids(after).items():
            if ident not in self.seen:
                self.seen.add(ident)
                built = self.on_replica(ident, region, source)
                if built is not None:
                    self.built.append(built)
        self.event(f"pulumi up -s {stack} (emulated): {actions}")

    # --- what the provider and RDS do --------------------------------------------------------
    def _client(self, service: str, region: str) -> Any:
        return self.deployment.handlers["prod"].client(service, region)

    def _refreshed(self, stack: str) -> ProgramRun:
        """``--refresh``: an instance RDS promoted is no longer a replica in the state."""
        run = self.runs[stack]
        rds = self._client("rds", self.regions[stack])

        def refresh(r: RegisteredResource) -> RegisteredResource | None:
            if r.type != RDS_INSTANCE or not r.inputs.get("replicateSourceDb"):
                return r
            ident = str(r.outputs.get("identifier") or r.inputs.get("identifier"))
            try:
                found = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
            except rds.exceptions.DBInstanceNotFoundFault:
                return None     # gone behind Pulumi's back: a refresh drops it from the state
            if found.get("ReadReplicaSourceDBInstanceIdentifier"):
                return r
            inputs = {k: v for k, v in r.inputs.items() if k != "replicateSourceDb"}
            return dataclasses.replace(r, inputs=inputs)

        kept = [refreshed for r in run.resources if (refreshed := refresh(r)) is not None]
        return ProgramRun(run.stack, kept, run.outputs)

    def _restore_calculated_checks(self, run: ProgramRun) -> None:
        """``--refresh`` then update: a calculated check changed behind Pulumi's back (a
        reversed failover's pin-primary-record) is read back by the refresh, differs from the
        program, and the provider's update (UpdateHealthCheck, in place) restores its children
        and threshold. Without ``--refresh`` Pulumi would not see the change."""
        route53 = self._client("route53", "us-east-1")
        for r in run.resources:
            if r.type != HEALTH_CHECK or r.inputs.get("type") != "CALCULATED":
                continue
            declared = [str(c) for c in r.inputs.get("childHealthchecks") or []]
            threshold = int(r.inputs.get("childHealthThreshold") or 0)
            ident = str(r.outputs.get("id") or r.resource_id)
            live = route53.get_health_check(HealthCheckId=ident)["HealthCheck"][
                "HealthCheckConfig"]
            if (sorted(live.get("ChildHealthChecks") or []) == sorted(declared)
                    and live.get("HealthThreshold") == threshold):
                continue
            route53.update_health_check(HealthCheckId=ident, ChildHealthChecks=declared,
                                        HealthThreshold=threshold)
            self.event(f"Route 53: {ident} restored to {declared} (threshold {threshold}); "
                       "the refresh saw it changed")

    def _delete(self, resource: RegisteredResource, stack: str) -> None:
        region = str(resource.inputs.get("region") or self.regions[stack])
        if resource.type == RDS_INSTANCE:
            ident = str(resource.outputs.get("identifier") or resource.inputs["identifier"])
            final = resource.inputs.get("finalSnapshotIdentifier")
            extra: dict[str, Any] = ({"FinalDBSnapshotIdentifier": final}
                                     if not resource.inputs.get("skipFinalSnapshot") and final
                                     else {"SkipFinalSnapshot": True})
            self._client("rds", region).delete_db_instance(DBInstanceIdentifier=ident, **extra)
            self.event(f"RDS: {ident} deleted" + (f" (final snapshot {final})"
                                                  if "FinalDBSnapshotIdentifier" in extra
                                                  else ""))
        elif resource.type == REPLICATION_CONFIG:
            bucket = str(resource.inputs["bucket"])
            self._client("s3", region).delete_bucket_replication(Bucket=bucket)
            self.event(f"S3: replication of {bucket} removed")
        elif resource.type == SECURITY_GROUP:
            self._client("ec2", region).delete_security_group(GroupId=resource.resource_id)
        elif resource.type == SSM_PARAMETER:  # e.g. the reversed direction's inventory copy
            name = str(resource.inputs.get("name") or resource.resource_id)
            self._client("ssm", region).delete_parameter(Name=name)
            self.event(f"SSM: {name} in {region} deleted")
        # Gone from the state: declared again later, it is created again.
        self.deployment.handlers[stack].created.pop((resource.type, resource.name, region),
                                                    None)


def _replica_ids(run: ProgramRun) -> dict[str, tuple[str, str]]:
    """identifier -> (region, source ARN) of every cross-region-addressed replica."""
    found: dict[str, tuple[str, str]] = {}
    for r in run.resources:
        source = str(r.inputs.get("replicateSourceDb") or "")
        if r.type == RDS_INSTANCE and ":db:" in source:
            ident = str(r.outputs.get("identifier") or r.inputs["identifier"])
            found[ident] = (str(r.outputs.get("arn", "::::")).split(":")[3], source)
    return found


def streaming_replica(world: World, event: Callable[[str], None]) -> ReplicaBuilt:
    """RDS's copy of the writer for a new replica: ``pg_basebackup`` from the real writer,
    then streaming (RDS takes a snapshot and streams WAL the same way)."""

    def build(ident: str, region: str, source: str) -> NewReplica | None:
        address = db_address(region, ident)
        source_region, source_id = source.split(":")[3], source.split(":db:")[1]
        found = world.clusters_by_address.get(db_address(source_region, source_id))
        if found is None:
            raise DeployFailedError(f"{ident}: its source {source_id} has no database")
        label, writer = found
        started = time.monotonic()
        cluster, base = _standby_of(writer, f"caresync-drill-{ident}-")
        world.databases.dirs.append(base)
        world.databases.extra.append(cluster)
        for role in ROLES:
            wait_for_role(cluster, role.name)
        world.clusters_by_address[address] = (ident, cluster)
        world.promotions.bind(region, ident, cluster.promote)
        event(f"RDS: {ident} in {region} created from {label} (pg_basebackup + streaming, "
              f"{time.monotonic() - started:.2f} s)")
        return NewReplica(ident, region, cluster, label)

    return build


class LagPublisher:
    """What RDS publishes every minute for each replica, from the real servers: ReplicaLag
    (``now() - pg_last_xact_replay_timestamp()``, 0 while nothing is written)."""

    def __init__(self, world: World, replicas: Callable[[], list[NewReplica]]) -> None:
        self.world = world
        self.replicas = replicas
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="replica-lag")

    def start(self) -> LagPublisher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        session = boto3.session.Session()
        while not self._stop.wait(0.2):
            for replica in self.replicas():
                with contextlib.suppress(Exception):
                    raw = replica.cluster.psql(
                        "select case when pg_is_in_recovery() then coalesce(extract(epoch "
                        "from now() - pg_last_xact_replay_timestamp()), 0) end")
                    if not raw:  # promoted: RDS publishes no ReplicaLag for a writer
                        continue
                    lag = max(0.0, float(raw))
                    cloudwatch.publish_replica_lag(session.client(
                        "cloudwatch", region_name=replica.region,
                        endpoint_url=self.world.emulator.endpoint,
                        aws_access_key_id="testing", aws_secret_access_key="testing"),
                        replica.identifier, lag, at=datetime.now(UTC))


@contextlib.contextmanager
def _emulator_env(world: World) -> Iterator[None]:
    """The in-process command's AWS calls go to the emulator (as the subprocess's do)."""
    saved = {k: os.environ.get(k) for k in world.emulator.env()}
    os.environ.update(world.emulator.env())
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_failback(world: World, deployer: DrillPulumi, work: Path, name: str,
                 timeline: Timeline) -> tuple[int, dict[str, Any] | None, float]:
    """``caresync-failback --yes`` in this process, its ``pulumi up`` the drill's."""
    from caresync_dr.commands.failback import main

    report = work / f"{name}.json"
    argv = ["--stack", "dr", "--yes", "--project-dir", str(deployer.project),
            "--report", str(report), "--poll-seconds", "0.1", "--wait-timeout", "60"]
    started = time.monotonic()
    timeline.event(f"running: failback.py --yes ({name})")
    with _emulator_env(world):
        code = main(argv, deployer=deployer, stdin=io.StringIO(""), out=io.StringIO())
    seconds = round(time.monotonic() - started, 3)
    timeline.event(f"failback.py ({name}) exited {code} after {seconds:.3f} s")
    data: dict[str, Any] | None = None
    with contextlib.suppress(OSError, ValueError):
        data = json.loads(report.read_text())
    return code, data, seconds


def rows_of(cluster: PostgresCluster, database: str) -> set[int]:
    return {int(x) for x in cluster.psql("select seq from patients", dbname=database).split()}


def caught_up(replica: PostgresCluster, writer: PostgresCluster, timeout: float = 30) -> bool:
    """Until the replica has replayed the writer's WAL as of now."""
    target = writer.psql("select pg_current_wal_lsn()")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        behind = replica.psql(f"select pg_wal_lsn_diff('{target}', "
                              "pg_last_wal_replay_lsn()) > 0")
        if behind == "f":
            return True
        time.sleep(0.05)
    return False


def missing(acks: list[Ack], present: set[int]) -> list[int]:
    return [a.seq for a in acks if a.seq not in present]


def project_copy(options: DrillOptions, work: Path) -> Path:
    """The stack files the failback command edits: never the repository's own."""
    project = work / "project"
    project.mkdir(parents=True, exist_ok=True)
    for name in STACK_FILES:
        shutil.copy2(options.project_dir / name, project / name)
    return project


@dataclass
class RoundTrip:
    """The stages after the failover, each with its data check (``verifications``)."""

    world: World
    options: DrillOptions
    work: Path
    timeline: Timeline
    verifications: list[tuple[str, bool, str]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str, ok: bool, detail: str) -> bool:
        self.verifications.append((name, bool(ok), detail))
        self.timeline.event(f"verify: {'PASS' if ok else 'FAIL'} {name}: {detail}")
        return bool(ok)

    def writer(self) -> tuple[str, PostgresCluster]:
        """The database the serving site's app writes to."""
        site = self.world.serving_site()
        found = self.world.locate(site) if site else None
        if found is None:
            raise RuntimeError(f"the serving site {site} has no database")
        return found

    def run(self) -> None:
        world, timeline = self.world, self.timeline
        app_db = world.databases.app_database
        regions = {"prod": world.inventory.primary.region,
                   "dr": world.inventory.standby.region}
        deployer = DrillPulumi(world.deployment, regions,
                               project_copy(self.options, self.work),
                               self.options.project_dir, timeline.event,
                               streaming_replica(world, timeline.event))
        lag = LagPublisher(world, lambda: list(deployer.built)).start()
        load = WriteLoad(target=world.write_target, interval=self.options.load_interval)
        try:
            with timeline.step("recovery: the old region answers again") as step:
                world.emulator.restore()
                world.apps["primary"].start()   # its instances come back with the region
                world.boot("primary", "region recovered")
                step.detail = (f"{world.inventory.primary.region} reachable; "
                               f"the resolver answers {world.serving_site()}")
                self.check("after recovery the standby still serves",
                           world.serving_site() == "standby",
                           f"resolver answers {world.serving_site()} (the switch holds "
                           "FAILOVER; the old writer is fenced and never serves again)")
            load.start()
            with timeline.step("re-protection: failback.py") as step:
                code, report, seconds = run_failback(world, deployer, self.work,
                                                     "failback-1", timeline)
                step.ok = code == 0
                step.detail = f"exit {code}"
                self.figures["reprotect"] = {"exit_code": code, "seconds": seconds,
                                             "report": report}
            self._check_reprotected(code, report, deployer, "primary")
            time.sleep(0.3)
            acks = load.snapshot()
            label, writer = self.writer()
            new = self.built_in(deployer, world.inventory.primary.region)
            if new is not None and caught_up(new.cluster, writer):
                gone = missing([a for a in acks if a.database == label],
                               rows_of(new.cluster, app_db))
                self.check("new generation holds every write acknowledged by the writer",
                           not gone, f"{len(acks)} acknowledged on {label}; "
                           f"{len(gone)} missing on {new.identifier}")
            if self.options.scenario.after_reprotection == "reverse-outage":
                self.reverse_outage(deployer, load, lag)
            elif self.switch_back(deployer, load):
                self.reprotect_standby(deployer, load)
        finally:
            load.stop()
            lag.stop()
            self.figures["writes"] = {"acknowledged": len(load.acks),
                                      "failed": load.failures,
                                      "last_error": load.last_error}
            self.figures["plans"] = deployer.plans

    def _check_reprotected(self, code: int, report: dict[str, Any] | None,
                           deployer: DrillPulumi, site: str) -> None:
        region = (self.world.inventory.primary.region if site == "primary"
                  else self.world.inventory.standby.region)
        built = [b for b in deployer.built if b.region == region]
        self.check(f"failback.py re-protected the {site} site", code == 0 and bool(built),
                   f"exit {code}; " + (f"{built[-1].identifier} streams from "
                                       f"{built[-1].source_label}" if built else
                                       "no new generation"))
        steps = {s.get("name"): s.get("outcome") for s in (report or {}).get("steps", [])}
        # "skipped": found done by its check (the inventory already named the new generation
        # because the retirement's `pulumi up -s dr` wrote it).
        self.check(f"every failback step done ({site})",
                   bool(steps) and all(o in ("done", "skipped") for o in steps.values())
                   and steps.get("deploy-protected-stack") == "done",
                   ", ".join(f"{k}: {v}" for k, v in steps.items()) or "no report")

    def switch_back(self, deployer: DrillPulumi, load: WriteLoad) -> bool:
        """The planned switchover home (issue 15 item 1, ``caresync-switchover --to
        primary``), from the promoted standby to the primary site's new generation."""
        from caresync_dr.drill.switchover import MASTER, run_switchover

        world, timeline = self.world, self.timeline
        new = self.built_in(deployer, world.inventory.primary.region)
        if new is None:
            return self.check("planned switchback home", False, "no new generation to return to")
        _label, writer = self.writer()
        # The RDS master user (not a superuser) the switchover fences with; on RDS it exists on
        # every instance, here it is created on the writer and replicated.
        writer.psql(f"CREATE ROLE {MASTER} LOGIN NOSUPERUSER CREATEDB CREATEROLE; "
                    f"GRANT pg_signal_backend TO {MASTER}")
        wait_for_role(new.cluster, MASTER)
        before = load.snapshot()
        with timeline.step("planned switchback: switchover.py --to primary") as step:
            code, report, seconds = run_switchover(world, self.options, self.work, timeline,
                                                   to="primary", source=writer,
                                                   target=new.cluster)
            step.ok = code == 0
            step.detail = f"exit {code}"
        figures = (report or {}).get("switchover") or {}
        self.figures["switchback"] = {"exit_code": code, "seconds": seconds,
                                      "write_unavailable_seconds":
                                          figures.get("writeUnavailableSeconds"),
                                      "report": report}
        ok = self.check("planned switchback home", code == 0,
                        f"exit {code}; write-unavailability window "
                        f"{figures.get('writeUnavailableSeconds')} s")
        time.sleep(0.5)  # writes land on the new writer
        acks = load.snapshot()
        present = rows_of(new.cluster, world.databases.app_database)
        lost = missing(acks, present)
        self.check("no acknowledged write lost by the switchback",
                   not lost, f"{len(acks)} acknowledged so far ({len(before)} before the "
                   f"switchback); {len(lost)} missing on {new.identifier}")
        self.check("the original region serves again",
                   world.serving_site() == "primary" and not _in_recovery(new.cluster),
                   f"resolver answers {world.serving_site()}; {new.identifier} "
                   f"{'writes' if not _in_recovery(new.cluster) else 'is still a replica'}")
        return ok

    def reverse_outage(self, deployer: DrillPulumi, load: WriteLoad,
                       lag: LagPublisher) -> None:
        """Issue 15, the reverse direction: after the re-protection the standby region, where
        the writer now is, is lost (every endpoint refused, its database and app killed hard).
        failover.py, reading the stack files the failback wrote (activeSite standby), promotes
        the primary site's new generation with nothing from the standby region."""
        from caresync_dr.drill.runner import run_failover  # the runner imports this module

        world, timeline = self.world, self.timeline
        inv = world.inventory
        new = self.built_in(deployer, inv.primary.region)
        if new is None:
            self.check("reverse failover to the primary site", False,
                       "no new generation in the primary region")
            return
        label, writer = self.writer()
        time.sleep(0.3)                     # a steady load on the standby's writer first
        lag.stop()                          # RDS's datapoints from here: -1 (D11)
        outage_wall, refused_before = time.time(), world.emulator.outage.refused
        with timeline.step("reverse outage: the standby region is lost") as step:
            world.emulator.take_down(regions=[inv.standby.region])
            kill_hard(writer)
            acks = load.snapshot()          # everything acknowledged up to the outage
            threading.Thread(target=world.apps["standby"].kill, daemon=True,
                             name="kill-standby-app").start()
            world.replication_broken.add(new.identifier)
            cloudwatch.publish_replica_lag(
                self.world.deployment.handlers["prod"].client("cloudwatch", new.region),
                new.identifier, -1)
            step.detail = (f"{inv.standby.region} refused, {label} and the standby app "
                           f"killed; {len(acks)} writes acknowledged until then")
        with timeline.step("reverse failover: failover.py to the primary site") as step:
            code, report, seconds = run_failover(world, self.options, self.work, timeline,
                                                 name="reverse-failover",
                                                 project_dir=deployer.project,
                                                 outage_wall=outage_wall)
            step.ok = code == 0
            step.detail = f"exit {code}"
        report = report or {}
        refused = world.emulator.outage.refused - refused_before
        self.figures["reverse_failover"] = {
            "exit_code": code, "seconds": seconds, "rto_seconds": report.get("rtoSeconds"),
            "data_loss_exposure_seconds": report.get("dataLossExposureSeconds"),
            "refused_requests": refused, "report": report}
        self.check("reverse failover.py succeeded with the standby region refused",
                   code == 0 and refused > 0,
                   f"exit {code}; {refused} requests to {inv.standby.region} refused; "
                   f"RTO {report.get('rtoSeconds')} s")
        promoted = not _in_recovery(new.cluster)
        self.check("the primary site serves writes again",
                   world.serving_site() == "primary" and promoted,
                   f"resolver answers {world.serving_site()} (the switch in "
                   f"{inv.standby.region} does not answer: read as PRIMARY); "
                   f"{new.identifier} {'writes' if promoted else 'is still a replica'}")
        present = rows_of(new.cluster, world.databases.app_database)
        lost = [a for a in acks if a.seq not in present]
        rpo_s = inv.objectives.rpo_minutes * 60
        outage_at = time.monotonic() - (time.time() - outage_wall)
        old_losses = [a for a in lost if outage_at - a.acked_at > rpo_s]
        self.figures["reverse_failover"]["acknowledged_writes_lost"] = len(lost)
        self.check("reverse failover lost no acknowledged write older than the RPO",
                   not old_losses, f"{len(acks)} acknowledged on {label} until the outage; "
                   f"{len(lost)} missing on {new.identifier} (asynchronous replication), "
                   f"{len(old_losses)} of them older than the RPO ({rpo_s} s)")
        time.sleep(0.5)
        later = [a for a in load.snapshot() if a.database == new.identifier]
        self.check("writes continue on the primary site's new writer", bool(later),
                   f"{len(later)} writes acknowledged by {new.identifier} since")
        if code != 0:
            return
        # The standby region answers again. The runbook's first step there: the switch still
        # says FAILOVER; write PRIMARY before anything else (the pinned DNS check held the
        # traffic meanwhile, and the failback's `pulumi up -s dr --refresh` un-pins it).
        sw = inv.traffic_switch
        with timeline.step("recovery of the standby region") as step:
            # It comes back whole: its APIs, the old writer's instance (RDS restarts it; it
            # was never fenced, the region was unreachable) and its app instances.
            world.emulator.restore()
            writer.start()
            world.apps["standby"].start()
            world.boot("standby", "region recovered")
            time.sleep(1.0)     # ten observations of the emulated Route 53 checkers
            serving = world.serving_site()
            step.detail = (f"{inv.standby.region} reachable, {label} and the standby app up "
                           f"again, the switch still {sw.failover_value}; the resolver "
                           f"answers {serving}")
        self.check("the recovered standby region does not take the traffic back",
                   serving == "primary",
                   f"resolver answers {serving} with s3://{sw.bucket}/{sw.key} still "
                   f"{sw.failover_value} and the old writer {label} writable again "
                   "(pin-primary-record)")
        with timeline.step("the operator writes PRIMARY into the switch") as step:
            self.world.deployment.handlers["dr"].client("s3", sw.region).put_object(
                Bucket=sw.bucket, Key=sw.key, Body=sw.primary_value.encode())
            step.detail = f"s3://{sw.bucket}/{sw.key} = {sw.primary_value}"
        # RDS publishes ReplicaLag again for the replicas the re-protection builds (the
        # promoted generation publishes none).
        lag_again = LagPublisher(world, lambda: list(deployer.built)).start()
        try:
            self.reprotect_standby(deployer, load)
        finally:
            lag_again.stop()
        route53 = self.world.deployment.handlers["dr"].client("route53", "us-east-1")
        config = route53.get_health_check(HealthCheckId=sw.primary_health_check_id)[
            "HealthCheck"]["HealthCheckConfig"]
        children = list(config.get("ChildHealthChecks") or [])
        self.check("the switch moves traffic again (the DNS pin is undone)",
                   sw.health_check_id in children,
                   f"{sw.primary_health_check_id} follows {children} after the failback's "
                   "`pulumi up -s dr --refresh`")

    @staticmethod
    def built_in(deployer: DrillPulumi, region: str) -> NewReplica | None:
        """The newest cross-region generation built in ``region``."""
        found = [b for b in deployer.built if b.region == region
                 and re.search(r"-db-g\d+$", b.identifier)]
        return found[-1] if found else None

    def reprotect_standby(self, deployer: DrillPulumi, load: WriteLoad) -> None:
        """Back home: the same command re-protects the standby site from the new writer."""
        world, timeline = self.world, self.timeline
        with timeline.step("re-protection of the standby site: failback.py") as step:
            code, report, seconds = run_failback(world, deployer, self.work, "failback-2",
                                                 timeline)
            step.ok = code == 0
            step.detail = f"exit {code}"
        self.figures["reprotect_standby"] = {"exit_code": code, "seconds": seconds,
                                             "report": report}
        self._check_reprotected(code, report, deployer, "standby")
        time.sleep(0.3)
        load.stop()
        new = self.built_in(deployer, world.inventory.standby.region)
        label, writer = self.writer()
        if new is None or not caught_up(new.cluster, writer):
            self.check("the standby's new generation holds every acknowledged write", False,
                       "no new generation, or it did not catch up")
            return
        acks = load.snapshot()
        lost = missing(acks, rows_of(new.cluster, world.databases.app_database))
        lost_on_writer = missing(acks, rows_of(writer, world.databases.app_database))
        self.check("every write acknowledged in the round trip is on the writer",
                   not lost_on_writer, f"{len(acks)} acknowledged over the whole round trip; "
                   f"{len(lost_on_writer)} missing on {label}")
        self.check("the standby's new generation holds every acknowledged write", not lost,
                   f"{len(lost)} missing on {new.identifier}")
        self.check("ends home: original region primary and protected",
                   world.serving_site() == "primary" and _in_recovery(new.cluster)
                   and not _in_recovery(writer),
                   f"resolver answers {world.serving_site()}; writer {label}; "
                   f"{new.identifier} streams from it")


def _in_recovery(cluster: PostgresCluster) -> bool:
    return cluster.psql("select pg_is_in_recovery()") == "t"


def continue_round_trip(world: World, options: DrillOptions, work: Path,
                        timeline: Timeline) -> RoundTrip:
    trip = RoundTrip(world, options, work, timeline)
    trip.run()
    return trip
