"""The proof that the standby region alone suffices (issue 9): checks and figures.

Everything the standby site needs after a regional outage must come from the standby region:
its app must boot and log in to the promoted database with credentials read there (the
endpoint parameter, the replicated app secret), and the latest logical backup must restore
from the standby bucket with keys the standby region's KMS can use -- none of it calling the
primary region. Each check re-reads what the commands reported, what the emulator's call log
saw of them and what the database answers.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.db.secrets import APP_SECRET_NAME
from caresync_dr.drill.backups import CommandRun
from caresync_dr.drill.boot import APP_ROLE, Boot
from caresync_dr.pg.cluster import PostgresCluster

if TYPE_CHECKING:
    from caresync_dr.drill.world import World

Check = tuple[str, bool, str]  # (name, passed, evidence)


def _calls_stay_in(run: CommandRun, region: str) -> tuple[bool, str]:
    elsewhere = [r for r in run.requests if r.region != region or r.refused]
    endpoints = ", ".join(run.endpoints()) or "none"
    return bool(run.requests) and not elsewhere, f"{len(run.requests)} requests to {endpoints}"


def backup_checks(backup: CommandRun | None, restore: CommandRun | None, *,
                  primary_region: str, standby_region: str,
                  outage_at: float) -> list[Check]:
    """The backup taken with both regions up restores in the standby region alone."""
    if backup is None or restore is None:
        return []
    checks: list[Check] = []
    name = backup.report.get("backup")
    wraps = sorted(w.get("region", "?") for w in backup.report.get("key_wraps") or [])
    replicated = backup.report.get("replicated") or []
    checks.append((
        "backup before the outage: data key wrapped in both regions, replicated",
        backup.exit_code == 0 and wraps == sorted({primary_region, standby_region})
        and not backup.report.get("missing_wraps") and len(replicated) == 2,
        f"{name}: exit {backup.exit_code}, wraps in {', '.join(wraps) or 'none'}, "
        f"{len(replicated)} objects copied to the standby bucket"))
    local = restore.report.get("local") or {}
    restored = local.get("backup")
    after_outage = restore.started_at is not None and restore.started_at >= outage_at
    checks.append((
        f"latest backup restored from the standby bucket with {primary_region} down",
        restore.exit_code == 0 and restore.report.get("result") == "passed"
        and restored == name and after_outage,
        f"{restored or 'nothing'} restored into {local.get('scratch_database')} and verified: "
        f"exit {restore.exit_code}, {restore.seconds} s"
        + ("" if after_outage else " (NOT after the outage)")
        + "".join(f"; {p}" for p in local.get("problems") or [])
        + (f"; {restore.report['error']}" if restore.report.get("error") else "")))
    ok, detail = _calls_stay_in(restore, standby_region)
    checks.append((f"restore test called {standby_region} endpoints only", ok, detail))
    return checks


def backup_figures(backup: CommandRun | None, restore: CommandRun | None,
                   outage_at: float) -> dict[str, Any] | None:
    """The report's ``standby_region.backup`` section."""
    if backup is None or restore is None:
        return None
    local = restore.report.get("local") or {}
    return {
        "backup": {"name": backup.report.get("backup"), "exit_code": backup.exit_code,
                   "seconds": backup.seconds, "key_wraps": backup.report.get("key_wraps"),
                   "replicated": backup.report.get("replicated"),
                   "endpoints": backup.endpoints()},
        "restore_test": {
            "exit_code": restore.exit_code, "result": restore.report.get("result"),
            "backup": local.get("backup"), "seconds": restore.seconds,
            "started_after_outage_seconds": (None if restore.started_at is None
                                             else round(restore.started_at - outage_at, 3)),
            "restore_seconds": local.get("seconds"),
            "endpoints": restore.endpoints()},
    }


@dataclass(frozen=True)
class AppEvidence:
    """What the drill saw of the standby app after the outage."""

    boots: list[Boot]  # every standby boot since the outage, the post-failover one last
    health_code: int
    health: dict[str, Any]
    passwordless_login: str  # the server's answer to a login without the password
    secret_replica: dict[str, Any]  # DescribeSecret of the app secret in the standby region


def passwordless_login(cluster: PostgresCluster, user: str, dbname: str) -> str:
    """Try to log in as ``user`` without a password: the server's refusal (or "accepted")."""
    try:
        with psycopg.connect(host="127.0.0.1", port=cluster.port, user=user, dbname=dbname,
                             connect_timeout=2):
            return "accepted"
    except psycopg.OperationalError as exc:
        return str(exc).strip().splitlines()[-1][:160]


def app_checks(evidence: AppEvidence | None, *, role: str, standby_region: str) -> list[Check]:
    """The standby app boots and logs in with standby-region services alone."""
    if evidence is None:
        return []
    boots = evidence.boots
    calls = sorted({c for b in boots for c in b.calls()})
    stray = [r for b in boots for r in b.requests
             if r.region != standby_region or r.refused]
    operations = {(r.service, r.operation) for b in boots for r in b.requests}
    needed = {("ssm", "GetParameter"), ("secretsmanager", "GetSecretValue")}
    checks: list[Check] = [(
        f"standby app boots with {standby_region} services only",
        bool(boots) and all(b.ok for b in boots) and not stray and needed <= operations,
        f"{len(boots)} boot(s) since the outage ({'; '.join(b.reason for b in boots)}), "
        f"{'all' if all(b.ok for b in boots) else 'NOT all'} ok: {', '.join(calls) or 'no calls'}"
        + "".join(f"; {b.reason}: {b.error}" for b in boots if b.error))]
    database = evidence.health.get("database") or {}
    refused = evidence.passwordless_login != "accepted"
    checks.append((
        f"standby app logs in to the promoted database as {role} with its secret (SCRAM)",
        evidence.health_code == 200 and database.get("user") == role
        and database.get("writable") is True and refused,
        f"after the last boot: HTTP {evidence.health_code}, user {database.get('user')}, "
        f"writable {database.get('writable')}; {role} without the password: "
        f"{evidence.passwordless_login}"))
    replica = evidence.secret_replica
    key = str(replica.get("KmsKeyId", ""))
    checks.append((
        f"app secret replicated to {standby_region} under a {standby_region} key",
        key.startswith(f"arn:aws:kms:{standby_region}:") and
        replica.get("PrimaryRegion") not in (None, standby_region),
        f"{replica.get('ARN', replica.get('error', 'not found'))}: KMS key {key or '-'}, "
        f"primary region {replica.get('PrimaryRegion')}"))
    return checks


def app_figures(evidence: AppEvidence | None, outage_at: float) -> dict[str, Any] | None:
    """The report's ``standby_region.app`` section."""
    if evidence is None:
        return None
    return {
        "boots": [{"reason": b.reason, "at_seconds": round(b.started_at - outage_at, 3),
                   "ok": b.ok, "calls": b.calls(), "error": b.error} for b in evidence.boots],
        "health": evidence.health, "passwordless_login": evidence.passwordless_login,
        "secret_replica": {k: evidence.secret_replica.get(k)
                           for k in ("ARN", "KmsKeyId", "PrimaryRegion", "error")
                           if k in evidence.secret_replica}}


def new_standby_instance(world: World, outage_at: float) -> AppEvidence:
    """An instance launched after the failover boots (primary region still refused), and what
    the drill then sees: its app's health, a login without the password, the secret's
    replica."""
    standby = world.inventory.standby
    world.boot("standby", "new instance after the failover")
    try:
        with urllib.request.urlopen(world.apps["standby"].url + "/api/health",
                                    timeout=2) as resp:
            code, body = resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        code, body = exc.code, {}
    except (OSError, ValueError) as exc:
        code, body = 0, {"error": str(exc)}
    found, config = world.locate("standby"), world.config_at_boot.get("standby")
    refusal = (passwordless_login(found[1], APP_ROLE, config.dbname)
               if found is not None and config is not None else "no database located")
    try:
        replica = dict(boto3.session.Session().client(
            "secretsmanager", region_name=standby.region, endpoint_url=world.emulator.endpoint,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        ).describe_secret(SecretId=APP_SECRET_NAME))
    except (ClientError, BotoCoreError) as exc:
        replica = {"error": str(exc)}
    boots = [b for b in world.boots if b.site == "standby" and b.started_at >= outage_at]
    return AppEvidence(boots=boots, health_code=code, health=body,
                       passwordless_login=refusal, secret_replica=replica)
