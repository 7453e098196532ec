"""The breach drill (issue 13 item 3): an attacker inside, ``breach.py`` contains it, on the
emulated AWS and the real PostgreSQL, while the app keeps serving.

The attacker holds three things at once: the app's database password (read from the leaked
secret value) with an open session on the real primary, an IAM access key of a user
(``contractor``), and one of the primary's app instances. ``breach.py`` runs as the operator
runs it (a subprocess that talks only to the emulator, ``--yes``, a report, the scope inputs);
the drill then checks, against the real server and the emulated APIs, that the attacker's
session is gone and the old passwords are refused, the key is inactive, the instance sits in
the quarantine group with its evidence snapshots, and the app serves on with the rotated
credentials (the write load is measured through the whole response).

**Time to containment** is the seed's "immediately isolate ... revoke": from the first command
(``breach.py`` launched) to the last revocation verified (its ``containedAt``, the instant its
verification step found every named credential refused and every instance isolated).

The result's ``rto_seconds`` is discovery -> the first write acknowledged on the rotated
password (after the primary's instances booted with it); besides, the longest gap between the
app's acknowledged writes, the seconds the public health URL had no answer, failed writes.
The app, like the user data, reads its password at boot only: from the rotation until its
refreshed instances boot (``--scale-seconds`` here, an instance refresh on AWS) it cannot log in
again, and ``breach.py`` ends its pre-rotation sessions with the attacker's (docs/drills.md).

**How a subprocess reaches the real database.** The app and every operator command find the
database where production does: the site's endpoint parameter (``host:port``, written by the
stack from the RDS instance). Two things make that address lead to the local stand-in, both on
the emulation side, none in the commands: :func:`serve_endpoints_locally` gives each emulated
RDS instance its stand-in's port and rewrites the endpoint parameter as the stack would have
written it with that port, and the command's environment carries libpq's own
``PGHOSTADDR=127.0.0.1`` (the emulated VPC's DNS: every RDS hostname resolves to this machine),
as the corruption drill does for ``pitr.py``. ``breach.py`` runs unchanged, with no override
hook of ours; on AWS neither variable is set.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
import psycopg
from moto.rds.models import rds_backends

from caresync_dr.db.roles import APP_ROLE
from caresync_dr.db.secrets import APP_SECRET_NAME, MASTER_SECRET_NAME
from caresync_dr.db.sessions import Endpoint, login_refused
from caresync_dr.drill.boot import read_secret
from caresync_dr.emulation.cloudtrail import TrailDelivery, api_record
from caresync_dr.emulation.ec2_groups import SecurityGroupReplacement
from caresync_dr.emulation.secret_rotation import SecretRotationShim
from caresync_dr.emulation.server import ACCOUNT_ID
from caresync_dr.names import backup_bucket_name, quarantine_group_name, trail_log_group_name

if TYPE_CHECKING:
    from caresync_dr.drill.in_region import InRegionRun
    from caresync_dr.drill.world import World

LEAKED_USER = "contractor"          # the IAM user whose access key leaked
INCIDENT = "breach-drill"
AFFECTED = 1200                      # individuals the operator reports (HHS notice at >= 500)
PGENV = {"PGHOSTADDR": "127.0.0.1", "PGSSLMODE": "disable"}  # the emulated VPC's network


@dataclass
class Attacker:
    """What the attacker holds when the breach is discovered."""

    db_session: psycopg.Connection[Any]
    app_password: str          # the leaked app password
    master_password: str       # the master password as it was (rotated by the response)
    access_key: str
    instance: str


def _client(world: World, service: str, region: str) -> Any:
    return boto3.session.Session().client(  # type: ignore[call-overload]
        service, region_name=region, endpoint_url=world.emulator.endpoint,
        aws_access_key_id="testing", aws_secret_access_key="testing")


def serve_endpoints_locally(world: World) -> dict[str, str]:
    """Each emulated RDS instance answers where its stand-in listens: its port becomes the
    local cluster's, and its site's endpoint parameter says ``address:port`` as the stack
    writes it. Returns parameter -> value. The hostname is kept (the app's boot maps it to
    the stand-in); commands reach it through ``PGHOSTADDR`` (:data:`PGENV`)."""
    inv = world.inventory
    written: dict[str, str] = {}
    for site_inv, cluster in ((inv.primary, world.databases.primary),
                              (inv.standby, world.databases.standby)):
        region, identifier = site_inv.region, site_inv.database.identifier
        instance = rds_backends[ACCOUNT_ID][region].databases[identifier]
        instance.port = cluster.port
        ssm = _client(world, "ssm", region)
        name = site_inv.database.endpoint_parameter
        current = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        host = str(current).rpartition(":")[0] or str(instance.address)
        value = f"{host}:{cluster.port}"
        described = ssm.describe_parameters(
            ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"]
        key = described[0].get("KeyId") if described else None
        ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True,
                          **({"KeyId": key} if key else {}))
        written[name] = value
    return written


def install_master_user(world: World) -> tuple[str, str]:
    """The RDS master user as RDS makes it (``caresync/db/master``'s username and password):
    no superuser, CREATEROLE, and what ``rds_superuser`` holds that a response needs
    (``pg_signal_backend``, ``pg_monitor``: it sees and ends every session; AWS "PostgreSQL
    roles"); logs in by password (SCRAM) on the primary and the standby. Returns (user,
    password)."""
    dbs = world.databases
    secret = read_secret(world.emulator, world.inventory.primary.region, MASTER_SECRET_NAME)
    user, password = secret["username"], secret["password"]
    dbs.primary.psql(f"CREATE ROLE {user} LOGIN CREATEROLE "
                     f"IN ROLE pg_signal_backend, pg_monitor PASSWORD '{password}'")
    dbs.primary.psql(f'GRANT ALL ON DATABASE "{dbs.app_database}" TO {user}')
    # As on RDS, the master user created the database and runs the migrations: it owns them
    # and so may grant on the tables (a rotation's first run moves the app's grants to its
    # NOLOGIN group, caresync_dr/db/roles.py).
    dbs.primary.psql(f'ALTER DATABASE "{dbs.app_database}" OWNER TO {user}')
    dbs.primary.psql(
        "DO $$ DECLARE t record; BEGIN FOR t IN SELECT tablename FROM pg_catalog.pg_tables "
        "WHERE schemaname = 'public' LOOP EXECUTE format('ALTER TABLE public.%I OWNER TO %I', "
        f"t.tablename, '{user}'); END LOOP; END $$", dbs.app_database)
    for cluster in dbs.all():
        cluster.require_password([user])
    return user, password


def _stand_in(world: World) -> Endpoint:
    return Endpoint("127.0.0.1", world.databases.primary.port, world.databases.app_database,
                    "disable")


def prepare_attack(run_: InRegionRun) -> Attacker:
    """Arm the emulator's EC2 and Secrets Manager shims, install the master user, and give the
    attacker the app's password with an open session, an access key and an instance."""
    world, timeline = run_.world, run_.timeline
    world.shims.append(SecurityGroupReplacement().arm())
    world.shims.append(SecretRotationShim().arm())
    written = serve_endpoints_locally(world)
    timeline.event("emulated RDS endpoints answer where their PostgreSQL stand-ins listen: "
                   + ", ".join(f"{k} = {v}" for k, v in written.items()))
    master, master_password = install_master_user(world)
    timeline.event(f"RDS master user {master} (CREATEROLE, pg_signal_backend, pg_monitor)")
    primary_region = world.inventory.primary.region
    app_secret = read_secret(world.emulator, primary_region, APP_SECRET_NAME)
    endpoint = _stand_in(world)
    session = psycopg.connect(host=endpoint.host, port=endpoint.port, dbname=endpoint.dbname,
                              user=APP_ROLE.name, password=app_secret["password"],
                              autocommit=True, application_name="attacker")
    iam = _client(world, "iam", primary_region)
    iam.create_user(UserName=LEAKED_USER)
    key = iam.create_access_key(UserName=LEAKED_USER)["AccessKey"]["AccessKeyId"]
    # What CloudTrail records of the key's use (moto records nothing): the attacker read the
    # latest backup, a data event of the primary's trail, in its log group within minutes.
    delivery = TrailDelivery(lambda region: _client(world, "logs", region)).arm()
    world.shims.append(delivery)
    bucket = backup_bucket_name("primary", ACCOUNT_ID)
    delivery.deliver(api_record(
        region=primary_region, event_source="s3.amazonaws.com", event_name="GetObject",
        account=ACCOUNT_ID, user=LEAKED_USER, access_key=key,
        request_parameters={"bucketName": bucket, "key": "backups/latest.dump"},
        data_event=True), trail_region=primary_region,
        log_group=trail_log_group_name("primary"))
    group = world.inventory.primary.app.auto_scaling_group_name
    instances = _client(world, "autoscaling", primary_region).describe_auto_scaling_groups(
        AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"]
    if not instances:
        raise RuntimeError(f"{group} has no instances for the attacker to hold")
    instance = str(instances[0]["InstanceId"])
    timeline.event(f"ATTACKER: session as {APP_ROLE.name} (pid "
                   f"{session.info.backend_pid}) with the leaked password, access key {key} "
                   f"of {LEAKED_USER}, instance {instance} of {group}")
    return Attacker(db_session=session, app_password=app_secret["password"],
                    master_password=master_password, access_key=key, instance=instance)


def _session_gone(session: psycopg.Connection[Any]) -> tuple[bool, str]:
    try:
        session.execute("SELECT 1")
    except psycopg.Error as exc:
        return True, str(exc).strip().splitlines()[0][:120]
    return False, "SELECT 1 still answers"


def _isolation(world: World, instance: str) -> tuple[set[str], list[str]]:
    ec2 = _client(world, "ec2", world.inventory.primary.region)
    described = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
    groups = {g["GroupName"] for eni in described.get("NetworkInterfaces", [])
              for g in eni["Groups"]}
    snapshots = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag:caresync:incident", "Values": [INCIDENT]}])["Snapshots"]
    return groups, [str(s["SnapshotId"]) for s in snapshots if s.get("VolumeId")]


def _key_status(world: World, key: str) -> str:
    iam = _client(world, "iam", world.inventory.primary.region)
    keys = iam.list_access_keys(UserName=LEAKED_USER)["AccessKeyMetadata"]
    return next((str(k["Status"]) for k in keys if k["AccessKeyId"] == key), "missing")


def _longest_gap(acks: list[float], start: float, end: float) -> float:
    """The longest time without an acknowledged write in [start, end]."""
    points = [start, *sorted(a for a in acks if start <= a <= end), end]
    return round(max(b - a for a, b in itertools.pairwise(points)), 3)


def breach_flow(run_: InRegionRun) -> dict[str, Any]:
    """Attack, discover, ``breach.py``, verify, measure; the drill's common result shape."""
    from caresync_dr.drill.in_region import _present, _result, _verification, run_command

    world, options, timeline, load = run_.world, run_.options, run_.timeline, run_.load
    with timeline.step("the attacker gets in") as step:
        attacker = prepare_attack(run_)
        step.detail = f"key {attacker.access_key}, instance {attacker.instance}"
    rebooted: list[float] = []  # when the primary's instances booted anew (the rotated secret)

    def replaced(site: str, _version: str | None) -> None:
        if site == "primary":
            rebooted.append(time.monotonic())

    world.on_replaced.append(replaced)
    discovered = time.monotonic()
    timeline.outage_at, timeline.outage_wall = discovered, time.time()
    timeline.event("BREACH DISCOVERED: the security team names the leaked key, the instance "
                   "and the leaked database password", at=discovered)
    launched_wall = time.time()
    with timeline.step("breach.py") as step:
        command = run_command(run_, "breach.py", [
            "--incident", INCIDENT, "--access-key", attacker.access_key,
            "--instance", attacker.instance, "--affected", str(AFFECTED),
            "--discovered", datetime.fromtimestamp(launched_wall, UTC).isoformat(),
            "--db-sslmode", "disable", "--yes"], extra_env=PGENV)
        step.ok, step.detail = command.exit_code == 0, f"exit {command.exit_code}"
    report = command.report or {}
    contained_at = report.get("containedAt")
    containment: float | None = None
    if contained_at:
        contained_wall = datetime.fromisoformat(str(contained_at)).timestamp()
        containment = round(contained_wall - launched_wall, 3)
        timeline.event_at_wall(contained_wall, "breach.py: every revocation verified "
                                               "(containedAt)")
    with timeline.step("the app serves on with the rotated credentials") as step:
        # A few writes after the response prove the write path on the new password.
        after_command = time.monotonic()
        deadline = after_command + options.serve_timeout
        while time.monotonic() < deadline and not any(
                a.acked_at > after_command for a in load.snapshot()):
            time.sleep(0.05)
        time.sleep(0.3)
        load.stop()
        step.detail = f"{len(load.snapshot())} writes acknowledged in all"
    end = time.monotonic()
    primary_region = world.inventory.primary.region
    app_secret = read_secret(world.emulator, primary_region, APP_SECRET_NAME)
    master_secret = read_secret(world.emulator, primary_region, MASTER_SECRET_NAME)
    endpoint = _stand_in(world)
    gone, why = _session_gone(attacker.db_session)
    with contextlib.suppress(psycopg.Error):
        attacker.db_session.close()
    app_refused = login_refused(endpoint, APP_ROLE.name, attacker.app_password)
    master_refused = login_refused(endpoint, master_secret["username"],
                                   attacker.master_password)
    key_status = _key_status(world, attacker.access_key)
    groups, snapshots = _isolation(world, attacker.instance)
    booted = world.config_at_boot.get("primary")
    rotated_in_use = (booted is not None and booted.password == app_secret["password"]
                      and app_secret["password"] != attacker.app_password)
    acks = load.snapshot()
    during = [a.acked_at for a in acks if discovered <= a.acked_at <= end]
    after = [a for a in acks if a.acked_at > after_command]
    on_rotated = next((a.acked_at for a in acks if rebooted and a.acked_at > rebooted[-1]
                       and a.database == "primary"), None)
    rto = None if on_rotated is None else round(on_rotated - discovered, 3)
    gap = _longest_gap([a.acked_at for a in acks], discovered, end) if acks else None
    degraded = run_.watch.seconds_in("standby-read-only", discovered, end)
    down = run_.watch.seconds_in("down", discovered, end)
    principal = ((report.get("scope") or {}).get("principals") or {}).get(
        attacker.access_key) or {}
    scope_buckets = principal.get("buckets") or {}
    bucket_read = backup_bucket_name("primary", ACCOUNT_ID)
    present = _present(world.databases.primary, world.databases.app_database)
    lost = [a for a in acks if a.database == "primary" and a.seq not in present]
    verifications = [
        _verification("breach.py contained and verified", command.exit_code == 0
                      and report.get("outcome") == "completed",
                      f"exit {command.exit_code}, outcome {report.get('outcome')}: "
                      f"{report.get('message')}"),
        _verification("the attacker's database session is gone", gone, why),
        _verification("the leaked app password is refused by the server", app_refused,
                      f"{APP_ROLE.name} with the old password: "
                      f"{'refused' if app_refused else 'LOGS IN'}"),
        _verification("the old master password is refused by the server", master_refused,
                      f"{master_secret['username']} with the old password: "
                      f"{'refused' if master_refused else 'LOGS IN'}"),
        _verification("the leaked access key is inactive", key_status == "Inactive",
                      f"{attacker.access_key}: {key_status}"),
        _verification("the instance is isolated with its evidence",
                      groups == {quarantine_group_name(INCIDENT)} and bool(snapshots),
                      f"{attacker.instance} in {', '.join(sorted(groups)) or 'no group'}; "
                      f"evidence {', '.join(snapshots) or 'none'}"),
        _verification("the app serves with the rotated credentials",
                      rotated_in_use and bool(after) and rto is not None,
                      f"primary instances booted with the rotated secret; first write on it "
                      f"{rto} s after discovery, {len(after)} after the response; writes "
                      f"interrupted up to {gap} s, "
                      f"{down} s without an answer (the app reads its password at boot)"
                      if rotated_in_use else "the primary app does not use a rotated password"),
        _verification("the scope names what the key read", scope_buckets == {bucket_read: 1},
                      f"{attacker.access_key}: {scope_buckets or 'nothing found'}"),
        _verification("no acknowledged write lost", not lost,
                      f"{len(acks)} acknowledged, {len(lost)} missing on the primary"),
        _verification("time to containment measured", containment is not None,
                      f"{containment} s from breach.py's launch to the last revocation "
                      "verified" if containment is not None else "breach.py recorded none"),
    ]
    result = _result("breach", timeline, load, verifications, rto,
                   rpo_seconds=0.0, rpo_transactions=len(lost), survivor="primary",
                   section={"command": command.argv[1:], "exit_code": command.exit_code,
                            "command_seconds": command.seconds,
                            "time_to_containment_seconds": containment,
                            "breach_time_to_containment_seconds":
                                report.get("timeToContainmentSeconds"),
                            "longest_write_gap_seconds": gap,
                            "writes_during_response": len(during),
                            "degraded_read_only_seconds": degraded,
                            "no_service_seconds": down,
                            "failed_writes": load.failures,
                            "report": report}, watch=run_.watch)
    # The common shape (caresync_dr.drill.result): what RTO means here, and this flow's phases.
    result["rto_meaning"] = ("breach discovered -> the first write acknowledged on the rotated "
                             "password (the primary's instances booted with it)")
    launched = timeline.from_wall(launched_wall)
    contained = None if containment is None or launched is None else launched + containment
    result.setdefault("markers", []).extend(
        {"label": label, "t": timeline.rel(at)}
        for label, at in (("breach.py launched", launched),
                          ("contained (last revocation verified)", contained))
        if at is not None)
    return result
