"""breach.py end to end on moto and a real PostgreSQL: an attacker holds a leaked database
password with an open session, a leaked IAM access key and an app instance; the response
contains, revokes and verifies, changes nothing in a dry run, refuses bad input, and a run
stopped after any step is finished by --resume without doing anything twice."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from moto import mock_aws

from caresync_dr.breach import steps
from caresync_dr.breach.command import run_breach
from caresync_dr.cli import ExitCode
from caresync_dr.db.sessions import Endpoint, login_refused
from caresync_dr.emulation.autoscaling import InstanceRefreshes
from caresync_dr.emulation.cloudtrail import TrailDelivery, api_record
from caresync_dr.emulation.ec2_groups import SecurityGroupReplacement
from caresync_dr.emulation.secret_rotation import SecretRotationShim
from caresync_dr.operations import ApiCallRecorder
from caresync_dr.pg.cluster import PostgresCluster, free_port
from tests.breach.conftest import APP, CLONE, DATABASE, FIRST, MASTER
from tests.breach.world import (
    ACCOUNT,
    LEAKED_USER,
    PRIMARY,
    STANDBY,
    BreachWorld,
    fast_session,
    seed,
    take_down,
)
from tests.ci_paths import ROOT

pytestmark = pytest.mark.postgres
INCIDENT = "INC-2026-0042"


@dataclass
class Attack:
    world: BreachWorld
    database: PostgresCluster
    tmp: Path
    session: boto3.Session
    refreshes: InstanceRefreshes
    calls: ApiCallRecorder
    db_session: psycopg.Connection[Any]
    instance: str
    out: str = ""
    runs: list[int] = field(default_factory=list)

    def argv(self, *extra: str) -> list[str]:
        return ["--incident", INCIDENT, "--access-key", self.world.access_key,
                "--instance", self.instance, "--db-role", APP, "--iam-role", self.world.role,
                "--db-sslmode", "disable", "--project-dir", str(ROOT),
                "--report", str(self.tmp / "report.json"),
                "--journal-file", str(self.tmp / "journal.json"), *extra]

    def run(self, *extra: str, stdin: str = "") -> int:
        out = io.StringIO()
        code = run_breach(self.argv(*extra), session=self.session, stdin=io.StringIO(stdin),
                          out=out)
        self.out = out.getvalue()
        self.runs.append(code)
        return code

    def report(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.tmp / "report.json").read_text())
        return document

    def summary(self) -> str:
        """The run's output and each step's outcome, for a failing assertion."""
        steps = [(s["name"], s["outcome"], s.get("detail") or s.get("error"))
                 for s in self.report().get("steps", [])]
        return f"{self.out}\n{self.report().get('message')}\n{steps}"

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", self.database.port, DATABASE, "disable")

    def changes(self) -> list[str]:
        return [f"{s}:{o}" for s, o, _, k in self.calls.calls if k == "change"]


@pytest.fixture
def attack(db_world: BreachWorld, database: PostgresCluster, tmp_path: Path
           ) -> Iterator[Attack]:
    session = fast_session()
    refreshes = InstanceRefreshes().arm()
    calls = ApiCallRecorder().install(session)
    # The attacker: the app's password (read from the leaked secret value), an open session.
    db_session = psycopg.connect(host="127.0.0.1", port=database.port, dbname=DATABASE,
                                 user=APP, password=FIRST[APP], autocommit=True)
    with TrailDelivery(lambda region: db_world.client("logs", region)) as delivery:
        delivery.deliver(api_record(
            region=PRIMARY, event_source="s3.amazonaws.com", event_name="GetObject",
            account=ACCOUNT, user=LEAKED_USER, access_key=db_world.access_key,
            request_parameters={"bucketName": db_world.layout.primary.backup_bucket,
                                "key": "backups/latest.dump"}, data_event=True),
            trail_region=PRIMARY, log_group=db_world.layout.primary.trail_log_group)
        yield Attack(db_world, database, tmp_path, session, refreshes, calls, db_session,
                     db_world.sites[PRIMARY].instances[0])
    db_session.close()
    refreshes.disarm()


def test_the_response_contains_revokes_and_verifies(attack: Attack) -> None:
    world = attack.world
    assert attack.run("--yes", "--affected", "1200") == ExitCode.OK, attack.summary()
    report = attack.report()
    assert report["outcome"] == "completed"
    assert report["timeToContainmentSeconds"] > 0
    outcomes = {s["name"]: s["outcome"] for s in report["steps"]}
    # Every step did its work, except the standby's trail, seeded with data events on its
    # own (the only PHI) bucket already.
    assert {n for n, o in outcomes.items() if o != "done"} == {"trail-logging-us-west-2"}, \
        outcomes
    # The attacker's database session is gone and the old password refused by the server.
    with pytest.raises(psycopg.OperationalError):
        attack.db_session.execute("SELECT 1")
    assert login_refused(attack.endpoint, APP, FIRST[APP])
    assert login_refused(attack.endpoint, MASTER, FIRST[MASTER])
    # The key is inactive, its user's older sessions and the role's are denied.
    iam = world.client("iam", PRIMARY)
    keys = iam.list_access_keys(UserName=LEAKED_USER)["AccessKeyMetadata"]
    assert [k["Status"] for k in keys] == ["Inactive"]
    assert iam.get_role_policy(RoleName=world.role, PolicyName="AWSRevokeOlderSessions")
    # The instance is isolated with its evidence.
    ec2 = world.client("ec2", PRIMARY)
    snapshots = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag:caresync:incident", "Values": [INCIDENT]}])["Snapshots"]
    assert snapshots and all(s["VolumeId"] for s in snapshots)
    described = ec2.describe_instances(InstanceIds=[attack.instance])
    groups = {g["GroupName"] for eni in described["Reservations"][0]["Instances"][0][
        "NetworkInterfaces"] for g in eni["Groups"]}
    assert groups == {f"caresync-quarantine-{INCIDENT}"}
    # The app tiers of both sites are replaced, to boot with the rotated secret.
    assert sorted(r.group for r in attack.refreshes.refreshes) == [
        "caresync-primary-app", "caresync-standby-app"]
    # More logging: data events on both backup buckets in prod's multi-region trail.
    selectors = world.client("cloudtrail", PRIMARY).get_event_selectors(
        TrailName="caresync-primary-audit")["EventSelectors"][0]["DataResources"][0]["Values"]
    assert f"arn:aws:s3:::{world.layout.standby.backup_bucket}/" in selectors
    # The scope names the object the key read; the HIPAA clock is in the report.
    scope = report["scope"]["principals"][world.access_key]
    assert scope["buckets"] == {world.layout.primary.backup_bucket: 1}
    assert report["hipaa"]["hhsNotice"].startswith("required with the individual notices")
    # D7: a breach engages every escalation tier at once; channels that are not there (no
    # alert topics, no chat secret in this world) are reported and change nothing.
    notifications = report["notifications"]
    assert notifications["breach"] is True
    assert [t["tier"] for t in notifications["engagedTiers"]] == [
        "on-call", "technical-lead", "cto", "ceo"]


def test_a_second_run_finds_it_contained(attack: Attack) -> None:
    assert attack.run("--yes") == ExitCode.OK
    changes = len(attack.changes())
    assert attack.run("--yes") == ExitCode.OK
    assert "already contained" in attack.out
    # Only the lock's and journal's bookkeeping may have been written the second time.
    assert all(c.startswith("ssm:") for c in attack.changes()[changes:]), attack.changes()


def test_a_dry_run_changes_nothing(attack: Attack) -> None:
    assert attack.run("--dry-run") == ExitCode.OK, attack.out
    assert attack.changes() == []
    report = attack.report()
    assert report["mode"] == "dry-run" and report["wouldProceed"] is True
    assert all(c["kind"] == "read" for c in report["awsCalls"]["calls"]) \
        if "calls" in report["awsCalls"] else True
    assert attack.db_session.execute("SELECT 1").fetchone() == (1,)
    assert not login_refused(attack.endpoint, APP, FIRST[APP])
    assert "dry run: nothing was changed" in attack.out


@pytest.mark.parametrize(("flag", "value", "message"), [
    ("--access-key", "AKIAAAAAAAAAAAAAAAAA", "IAM knows no such access key"),
    ("--instance", "i-0123456789abcdef0", "no such instance"),
    ("--db-role", "mallory", "no such role in the database"),
    ("--iam-role", "no-such-role", "no such IAM role"),
    ("--access-key", "not-a-key", "is not an access key id"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_changed(
        attack: Attack, caplog: pytest.LogCaptureFixture, flag: str, value: str,
        message: str) -> None:
    out = io.StringIO()
    code = run_breach(["--incident", INCIDENT, flag, value, "--yes", "--db-sslmode", "disable",
                       "--project-dir", str(ROOT), "--report", str(attack.tmp / "bad.json")],
                      session=attack.session, out=out)
    assert code == ExitCode.USAGE
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and message in errors[0], errors
    assert attack.changes() == []
    assert json.loads((attack.tmp / "bad.json").read_text())["exit_code"] == 2


CRASH_POINTS = ["Evidence", "DeactivateKey", "RevokeRoleSessions", "Isolate", "RaiseAudit",
                "RotateCredential", "RefreshApp", "TerminateSessions", "TrailLogging",
                "RevokeUserSessions", "NotifySecurity", "VerifyContainment", "Investigate"]


def _crash_after(monkeypatch: pytest.MonkeyPatch, class_name: str) -> list[str]:
    """The first apply of a step of this class makes its change, then the process stops."""
    cls = getattr(steps, class_name)
    real = cls.change
    crashed: list[str] = []

    def change(self: Any, ctx: Any) -> str:
        sentence: str = real(self, ctx)
        if not crashed:
            crashed.append(self.name)
            raise KeyboardInterrupt
        return sentence

    monkeypatch.setattr(cls, "change", change)
    return crashed


def _resume_after(attack: Attack, monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    crashed = _crash_after(monkeypatch, point)
    assert attack.run("--yes") == ExitCode.FAILED, attack.out
    assert crashed, f"no {point} step ran"
    assert attack.run("--yes") == ExitCode.REFUSED      # an unfinished run needs --resume
    monkeypatch.undo()
    assert attack.run("--yes", "--resume") == ExitCode.OK, attack.out
    report = attack.report()
    assert report["outcome"] == "completed"
    step = next(s for s in report["steps"] if s["name"] == crashed[0])
    # The verification is no change: stopped after it recorded the containment, the resumed
    # run verifies again and keeps the first instant (the time to containment).
    assert step["outcome"] == "done" or (
        point == "VerifyContainment" and step["outcome"] == "skipped"
        and "contained and verified at" in step["detail"]), step
    assert report["timeToContainmentSeconds"] > 0
    # Nothing was done twice: one snapshot per volume, one version per rotated secret.
    ec2 = attack.world.client("ec2", PRIMARY)
    snapshots = ec2.describe_snapshots(OwnerIds=["self"], Filters=[
        {"Name": "tag:caresync:incident", "Values": [INCIDENT]}])["Snapshots"]
    assert len(snapshots) == len({s["VolumeId"] for s in snapshots})
    secrets = attack.world.client("secretsmanager", PRIMARY)
    for name in ("caresync/db/app", "caresync/db/master"):
        assert len(secrets.describe_secret(SecretId=name)["VersionIdsToStages"]) == 2
    assert login_refused(attack.endpoint, APP, FIRST[APP])


@pytest.mark.parametrize("point", ["RotateCredential", "Isolate"])
def test_resume_after_a_crash(attack: Attack, monkeypatch: pytest.MonkeyPatch,
                              point: str) -> None:
    _resume_after(attack, monkeypatch, point)


@pytest.mark.faults
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_resume_after_a_crash_at_each_step(attack: Attack, monkeypatch: pytest.MonkeyPatch,
                                           point: str) -> None:
    _resume_after(attack, monkeypatch, point)


def test_without_yes_it_asks_and_a_wrong_answer_changes_nothing(attack: Attack) -> None:
    assert attack.run(stdin="prod\n") == ExitCode.REFUSED
    assert f"Type the stack name ({INCIDENT})" in attack.out
    # Only the lock and journal bookkeeping (SSM) was written; nothing of the response.
    assert all(c.startswith("ssm:") for c in attack.changes()), attack.changes()
    assert attack.db_session.execute("SELECT 1").fetchone() == (1,)
    assert attack.run(stdin=f"{INCIDENT}\n") == ExitCode.OK, attack.summary()


def test_with_the_standby_region_gone_the_primary_alone_contains(attack: Attack) -> None:
    refused = take_down(attack.session, STANDBY)
    assert attack.run("--yes") == ExitCode.OK, attack.summary()
    assert refused, "the standby region was never asked"
    report = attack.report()
    assert report["regions"][STANDBY]["reachable"] is False
    outcomes = {s["name"]: s["outcome"] for s in report["steps"]}
    # Only the region that answers is acted on; containment is verified without the other.
    assert outcomes["refresh-app-us-east-1"] == "done", outcomes
    assert not any(name.endswith("us-west-2") for name in outcomes), outcomes
    assert outcomes["verify-containment"] == "done"
    assert login_refused(attack.endpoint, APP, FIRST[APP])
    with pytest.raises(psycopg.OperationalError):
        attack.db_session.execute("SELECT 1")


@pytest.fixture
def standby_serving(database: PostgresCluster) -> Iterator[BreachWorld]:
    """After a regional failover: the standby's endpoint names the (promoted) real server, the
    primary's a port nothing listens on; the secrets still have the primary region as home."""
    database.psql(f"ALTER ROLE {MASTER} PASSWORD '{FIRST[MASTER]}'; "
                  f"ALTER ROLE {APP} PASSWORD '{FIRST[APP]}'; ALTER ROLE {APP} RESET pgaudit.log")
    with mock_aws(), SecurityGroupReplacement(), SecretRotationShim():
        yield seed(endpoints={PRIMARY: f"127.0.0.1:{free_port()}",
                              STANDBY: f"127.0.0.1:{database.port}"}, passwords=dict(FIRST))


def test_with_the_primary_region_gone_the_standby_alone_contains(
        standby_serving: BreachWorld, database: PostgresCluster, tmp_path: Path) -> None:
    session = fast_session()
    take_down(session, PRIMARY)
    attacker = psycopg.connect(host="127.0.0.1", port=database.port, dbname=DATABASE,
                               user=APP, password=FIRST[APP], autocommit=True)
    out = io.StringIO()
    with InstanceRefreshes() as refreshes:
        code = run_breach(["--incident", INCIDENT, "--db-role", APP, "--yes",
                           "--db-sslmode", "disable", "--project-dir", str(ROOT),
                           "--report", str(tmp_path / "report.json")], session=session,
                          out=out)
    report = json.loads((tmp_path / "report.json").read_text())
    assert code == ExitCode.OK, (out.getvalue(), report.get("message"))
    assert report["regions"][PRIMARY]["reachable"] is False
    # The standby's secret replicas were made standalone, then rotated there.
    secrets = standby_serving.client("secretsmanager", STANDBY)
    for name, role in (("caresync/db/app", APP), ("caresync/db/master", MASTER)):
        assert secrets.describe_secret(SecretId=name).get("PrimaryRegion") in (None, STANDBY)
        value = json.loads(secrets.get_secret_value(SecretId=name)["SecretString"])
        assert value["password"] != FIRST[role]
        endpoint = Endpoint("127.0.0.1", database.port, DATABASE, "disable")
        assert login_refused(endpoint, role, FIRST[role])
        # The app's secret names its other login now (alternating users).
        assert value["username"] == (CLONE if role == APP else MASTER)
        assert not login_refused(endpoint, value["username"], value["password"])
    with pytest.raises(psycopg.OperationalError):
        attacker.execute("SELECT 1")
    attacker.close()
    assert [r.group for r in refreshes.refreshes] == ["caresync-standby-app"]


def test_a_resume_after_the_primary_region_returns_keeps_to_the_standbys_secrets(
        standby_serving: BreachWorld, database: PostgresCluster, tmp_path: Path) -> None:
    """The primary region is down: the standby's secret replicas are promoted and the master
    user's password rotated there, then the run stops. The primary region returns before the
    --resume: its copies never saw the rotation (they no longer replicate) and are stale. The
    resume reads and rotates the standby's copies only, and nothing is rotated twice."""
    argv = ["--incident", INCIDENT, "--db-role", APP, "--yes", "--db-sslmode", "disable",
            "--project-dir", str(ROOT), "--report", str(tmp_path / "report.json"),
            "--journal-file", str(tmp_path / "journal.json")]
    down = fast_session()
    take_down(down, PRIMARY)
    with pytest.MonkeyPatch.context() as patch, InstanceRefreshes():
        crashed = _crash_after(patch, "RotateCredential")
        assert run_breach(argv, session=down, out=io.StringIO()) == ExitCode.FAILED
    assert crashed == [f"rotate-{MASTER}"]
    journal = json.loads((tmp_path / "journal.json").read_text())
    assert journal["facts"]["secretsAuthoritativeIn"] == STANDBY   # recorded before promoting

    back = fast_session()                     # the primary region answers again
    calls = ApiCallRecorder().install(back)
    out = io.StringIO()
    with InstanceRefreshes():
        code = run_breach([*argv, "--resume"], session=back, out=out)

    report = json.loads((tmp_path / "report.json").read_text())
    assert code == ExitCode.OK, (out.getvalue(), report.get("message"))
    assert {r["secretRegion"] for r in report["resolved"]["rotations"]} == {STANDBY}
    standby = standby_serving.client("secretsmanager", STANDBY)
    primary = standby_serving.client("secretsmanager", PRIMARY)
    endpoint = Endpoint("127.0.0.1", database.port, DATABASE, "disable")
    for name, role in (("caresync/db/app", APP), ("caresync/db/master", MASTER)):
        assert len(standby.describe_secret(SecretId=name)["VersionIdsToStages"]) == 2, name
        value = json.loads(standby.get_secret_value(SecretId=name)["SecretString"])
        assert not login_refused(endpoint, value["username"], value["password"])
        assert login_refused(endpoint, role, FIRST[role])
        stale = json.loads(primary.get_secret_value(SecretId=name)["SecretString"])
        assert stale["password"] == FIRST[role]    # untouched: the runbook re-replicates it
    assert not [c for c in calls.calls
                if c[0] == "secretsmanager" and c[2] == PRIMARY and c[3] == "change"]


def test_a_resume_rotates_where_the_journal_says_the_secrets_were_promoted() -> None:
    """When the resume cannot tell by itself (the standby's copy was not described), the
    journal's record of the promotion decides: never the primary's stale copies."""
    from types import SimpleNamespace

    from caresync_dr.breach.context import Resolved, Rotation
    from caresync_dr.breach.operation import adopt_secrets_home
    from caresync_dr.db.rotation import Credential

    resolved = Resolved(account=ACCOUNT, rotations=[
        Rotation(Credential(MASTER, "caresync/db/master", master=True), PRIMARY),
        Rotation(Credential(APP, "caresync/db/app"), PRIMARY)],
        secrets_to_promote=[])
    ctx: Any = SimpleNamespace(resolved=resolved)
    adopt_secrets_home(ctx, None)                  # nothing recorded: as resolved
    assert {r.secret_region for r in resolved.rotations} == {PRIMARY}
    adopt_secrets_home(ctx, STANDBY)
    assert {r.secret_region for r in resolved.rotations} == {STANDBY}
    assert [r.credential.role for r in resolved.rotations] == [MASTER, APP]
