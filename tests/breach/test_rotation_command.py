"""rotate_db_credentials.py end to end on moto and a real PostgreSQL: the scheduled rotation of
decision D1's secrets. The master password changes and its old one is refused; the app's secret
alternates between caresync_app and caresync_app_clone (AWS's alternating users), so the app's
instances that booted before the rotation keep opening connections with their cached password
until the refresh replaces them: no failed connection. The standby region's replica serves the
new values (its app boots from it), both app tiers are replaced; a dry run changes nothing; a
second run the same day does nothing; a run stopped part-way is finished by --resume."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest

from caresync_dr.breach.command import run_breach, run_rotation
from caresync_dr.cli import ExitCode
from caresync_dr.db.roles import APP_ROLE
from caresync_dr.db.rotation import (
    Credential,
    RotationError,
    SecretStore,
    rotate,
    rotation_token,
)
from caresync_dr.db.secrets import APP_SECRET_NAME, MASTER_SECRET_NAME
from caresync_dr.db.sessions import Endpoint, LoginRefusedError, connect, login_refused
from caresync_dr.emulation.autoscaling import InstanceRefreshes
from caresync_dr.operations import ApiCallRecorder
from caresync_dr.pg.cluster import PostgresCluster
from tests.breach.conftest import APP, CLONE, DATABASE, FIRST, GROUP, MASTER
from tests.breach.world import PRIMARY, STANDBY, BreachWorld, fast_session
from tests.ci_paths import ROOT

pytestmark = pytest.mark.postgres
SECRETS = {MASTER: MASTER_SECRET_NAME, APP: APP_SECRET_NAME}


@dataclass
class Rotation:
    world: BreachWorld
    database: PostgresCluster
    tmp: Path
    session: boto3.Session
    refreshes: InstanceRefreshes
    calls: ApiCallRecorder
    out: str = ""

    def run(self, *extra: str, rotation_id: str = "rotation-test") -> int:
        out = io.StringIO()
        code = run_rotation(["--rotation-id", rotation_id, "--db-sslmode", "disable",
                             "--project-dir", str(ROOT), "--report",
                             str(self.tmp / "rotation.json"), *extra],
                            session=self.session, out=out)
        self.out = out.getvalue()
        return code

    def breach(self, incident: str, report: str = "breach.json") -> dict[str, Any]:
        """A breach response naming the app's login, on this world: asserts it succeeded and
        returns its report."""
        out = io.StringIO()
        path = self.tmp / report
        code = run_breach(["--incident", incident, "--db-role", APP, "--yes",
                           "--db-sslmode", "disable", "--project-dir", str(ROOT),
                           "--report", str(path)], session=self.session, out=out)
        found: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        assert code == ExitCode.OK, (out.getvalue(), found.get("message"))
        return found

    def secret(self, role: str, region: str = PRIMARY) -> dict[str, Any]:
        value = self.world.client("secretsmanager", region).get_secret_value(
            SecretId=SECRETS[role])["SecretString"]
        document: dict[str, Any] = json.loads(value)
        return document

    def password(self, role: str, region: str) -> str:
        return str(self.secret(role, region)["password"])

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", self.database.port, DATABASE, "disable")

    def refreshed(self) -> None:
        """Until every instance refresh started so far has replaced its instances."""
        deadline = time.monotonic() + 10
        while any(r.active for r in self.refreshes.refreshes):
            assert time.monotonic() < deadline, "the instance refreshes did not finish"
            time.sleep(0.01)

    def changes(self) -> list[str]:
        return [f"{s}:{o}" for s, o, _, k in self.calls.calls if k == "change"]


@pytest.fixture
def rotation(db_world: BreachWorld, database: PostgresCluster, tmp_path: Path
             ) -> Iterator[Rotation]:
    session = fast_session()
    with InstanceRefreshes() as refreshes:
        refreshes.delay_seconds = 0.0     # each refresh replaces its instances at once
        yield Rotation(db_world, database, tmp_path, session, refreshes,
                       ApiCallRecorder().install(session))


def test_the_rotation_keeps_the_standby_replica_valid(rotation: Rotation) -> None:
    assert rotation.run("--yes") == ExitCode.OK, rotation.out
    for role in (MASTER, APP):
        new = rotation.secret(role)
        assert new["password"] != FIRST[role]
        # The standby app boots from its own region's replica: it must carry the new values.
        assert rotation.secret(role, STANDBY) == new
        assert not login_refused(rotation.endpoint, new["username"], new["password"])
    assert login_refused(rotation.endpoint, MASTER, FIRST[MASTER])
    # The app's secret names the clone now; caresync_app's password stays valid until the
    # next rotation (the instances not yet replaced still use it).
    assert rotation.secret(APP)["username"] == CLONE
    assert not login_refused(rotation.endpoint, APP, FIRST[APP])
    assert sorted(r.group for r in rotation.refreshes.refreshes) == [
        "caresync-primary-app", "caresync-standby-app"]
    report = json.loads((rotation.tmp / "rotation.json").read_text())
    assert report["outcome"] == "completed"
    changes = len(rotation.changes())
    assert rotation.run("--yes") == ExitCode.OK
    assert "already rotated" in rotation.out
    assert all(c.startswith("ssm:") for c in rotation.changes()[changes:]), rotation.changes()


@dataclass
class AppInstance:
    """An app instance that booted before the rotation: it holds the secret as it was then
    (components/app_tier.py writes it to an env file at boot) and opens a new connection every
    few milliseconds, as a connection pool does under load, until it is stopped."""

    endpoint: Endpoint
    username: str
    password: str
    opened: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def open_one(self) -> None:
        try:
            connect(self.endpoint, self.username, self.password).close()
            self.opened += 1
        except (LoginRefusedError, psycopg.OperationalError) as exc:
            self.failures.append(str(exc))

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.open_one()
            time.sleep(0.005)

    def __enter__(self) -> AppInstance:
        self._thread = threading.Thread(target=self._loop, name="app-instance", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()


def test_the_apps_cached_credentials_keep_working_through_the_rotation(
        rotation: Rotation) -> None:
    """The fault: the rotation changed caresync_app's password and verified the old one
    refused before the instance refresh had replaced a single instance, so every new
    connection of every instance failed for the whole refresh. Now not one fails."""
    booted = rotation.secret(APP)
    pooled = connect(rotation.endpoint, booted["username"], booted["password"])
    with AppInstance(rotation.endpoint, booted["username"], booted["password"]) as app:
        assert rotation.run("--yes") == ExitCode.OK, rotation.out
        # The refresh has only started: the old instances serve on and connect as before.
        app.open_one()
    assert app.failures == [], f"{len(app.failures)} of {app.opened + len(app.failures)} " \
        f"new connections refused, first: {app.failures[:1]}"
    assert app.opened > 0
    assert pooled.execute("SELECT count(*) FROM patients").fetchone() is not None
    pooled.close()
    # The replaced instances boot from the rotated secret: the clone, with the same rights.
    rotated = rotation.secret(APP)
    assert rotated["username"] == CLONE and rotated["password"] != booted["password"]
    with connect(rotation.endpoint, CLONE, rotated["password"]) as clone:
        clone.execute("INSERT INTO patients VALUES (4242, 'after the rotation')")
        assert clone.execute("SELECT name FROM patients WHERE id = 4242").fetchone() == (
            "after the rotation",)
        clone.execute("DELETE FROM patients WHERE id = 4242")
    members = rotation.database.psql(
        f"SELECT string_agg(m.rolname, ',' ORDER BY m.rolname) FROM pg_auth_members a "
        f"JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member "
        f"WHERE g.rolname = '{GROUP}'")
    assert members == f"{APP},{CLONE}"


def test_the_clone_gets_caresync_apps_own_audit_setting(rotation: Rotation) -> None:
    rotation.database.psql(f"ALTER ROLE {APP} SET pgaudit.log = 'ddl,role,write'")
    assert rotation.run("--yes") == ExitCode.OK, rotation.out
    setting = rotation.database.psql(
        "SELECT s.setconfig::text FROM pg_db_role_setting s JOIN pg_roles r "
        f"ON r.oid = s.setrole WHERE r.rolname = '{CLONE}'")
    assert setting == '{"pgaudit.log=ddl,role,write"}'


def test_the_next_rotation_alternates_back_and_retires_the_oldest_password(
        rotation: Rotation) -> None:
    assert rotation.run("--yes", rotation_id="rotation-day-1") == ExitCode.OK, rotation.out
    first = rotation.secret(APP)
    rotation.refreshed()
    assert rotation.run("--yes", rotation_id="rotation-day-2") == ExitCode.OK, rotation.out
    second = rotation.secret(APP)
    assert second["username"] == APP and second["password"] not in (
        FIRST[APP], first["password"])
    assert not login_refused(rotation.endpoint, APP, second["password"])
    assert not login_refused(rotation.endpoint, CLONE, first["password"])   # day 1's instances
    assert login_refused(rotation.endpoint, APP, FIRST[APP])                # two rotations ago


def test_an_instance_still_on_the_login_to_change_stops_the_rotation(
        rotation: Rotation) -> None:
    """The refresh after day 1 did not finish: an instance still runs as caresync_app. Day 2
    would change caresync_app's password under it, so --check says so and the run refuses
    before any change. Should the session appear after the preflight, the rotation step
    itself stops, rolled back (caresync_dr.db.rotation._prepare_switch)."""
    assert rotation.run("--yes", rotation_id="rotation-day-1") == ExitCode.OK, rotation.out
    rotation.refreshed()
    straggler = connect(rotation.endpoint, APP, FIRST[APP])
    straggler.execute("SET application_name = 'caresync-app'")
    try:
        assert rotation.run("--check", rotation_id="rotation-day-2") == ExitCode.NOT_READY
        assert "caresync_app still has 1 session(s) open" in rotation.out, rotation.out
        # The real run reads it before its first change and refuses: nothing rotated.
        master = rotation.password(MASTER, PRIMARY)
        changes = len(rotation.changes())
        assert rotation.run("--yes", rotation_id="rotation-day-2") == ExitCode.REFUSED
        assert rotation.password(MASTER, PRIMARY) == master
        assert not [c for c in rotation.changes()[changes:] if not c.startswith("ssm:")]
        assert not login_refused(rotation.endpoint, APP, FIRST[APP])
        assert rotation.secret(APP)["username"] == CLONE
    finally:
        straggler.close()


def test_a_session_that_appears_after_the_preflight_stops_the_step_with_nothing_changed(
        rotation: Rotation) -> None:
    assert rotation.run("--yes", rotation_id="rotation-day-1") == ExitCode.OK, rotation.out
    rotation.refreshed()
    straggler = connect(rotation.endpoint, APP, FIRST[APP])
    straggler.execute("SET application_name = 'caresync-app'")
    store = SecretStore(rotation.world.client("secretsmanager", PRIMARY))
    master = rotation.secret(MASTER)
    try:
        with pytest.raises(RotationError, match="caresync_app still has 1 session"):
            rotate(store, Credential(APP, SECRETS[APP], alternating=APP_ROLE),
                   rotation_token("rotation-day-2", SECRETS[APP]), rotation.endpoint,
                   lambda: connect(rotation.endpoint, master["username"], master["password"]),
                   retire_previous=False)
        assert not login_refused(rotation.endpoint, APP, FIRST[APP])   # rolled back
        assert rotation.secret(APP)["username"] == CLONE
    finally:
        straggler.close()


def test_a_rotation_stopped_after_the_password_is_set_is_finished_by_resume(
        rotation: Rotation, monkeypatch: pytest.MonkeyPatch) -> None:
    real = SecretStore.make_current

    def killed(self: SecretStore, secret_id: str, version_id: str) -> None:
        if secret_id == SECRETS[APP]:
            raise KeyboardInterrupt      # the process dies between steps 2-3 and 4
        real(self, secret_id, version_id)

    monkeypatch.setattr(SecretStore, "make_current", killed)
    assert rotation.run("--yes") == ExitCode.FAILED, rotation.out
    assert rotation.secret(APP)["username"] == APP      # not switched yet
    assert rotation.run("--yes") == ExitCode.REFUSED    # an unfinished run needs --resume
    monkeypatch.undo()
    assert rotation.run("--yes", "--resume") == ExitCode.OK, rotation.out
    rotated = rotation.secret(APP)
    assert rotated["username"] == CLONE
    assert not login_refused(rotation.endpoint, CLONE, rotated["password"])
    assert not login_refused(rotation.endpoint, APP, FIRST[APP])
    stages = rotation.world.client("secretsmanager", PRIMARY).describe_secret(
        SecretId=SECRETS[APP])["VersionIdsToStages"]
    assert len(stages) == 2      # the pending version was reused, not made again


def test_a_dry_run_rotates_nothing(rotation: Rotation) -> None:
    assert rotation.run("--dry-run") == ExitCode.OK, rotation.out
    assert rotation.changes() == []
    for role in (MASTER, APP):
        assert rotation.password(role, PRIMARY) == FIRST[role]
        assert not login_refused(rotation.endpoint, role, FIRST[role])
    assert rotation.refreshes.refreshes == []


def test_a_breach_after_a_rotation_refuses_both_logins_and_ends_their_sessions(
        rotation: Rotation) -> None:
    """After a scheduled rotation two app passwords are valid: the clone's (the secret's) and
    caresync_app's (the previous version). A breach's containment refuses both at once and
    ends the sessions either opened."""
    assert rotation.run("--yes") == ExitCode.OK, rotation.out
    rotation.refreshed()
    scheduled = rotation.secret(APP)
    assert scheduled["username"] == CLONE
    sessions = [connect(rotation.endpoint, APP, FIRST[APP]),
                connect(rotation.endpoint, CLONE, scheduled["password"])]
    for session in sessions:
        session.execute("SET application_name = 'caresync-app'")
    rotation.breach("breach-after-rotation")
    contained = rotation.secret(APP)
    assert contained["username"] == APP
    # pgAudit everything for the named login and its pair.
    audited = rotation.database.psql(
        "SELECT r.rolname || '=' || s.setconfig::text FROM pg_db_role_setting s "
        f"JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname IN ('{APP}', '{CLONE}') "
        "ORDER BY 1")
    assert audited.split() == [f"{APP}={{pgaudit.log=all}}", f"{CLONE}={{pgaudit.log=all}}"]
    assert not login_refused(rotation.endpoint, APP, contained["password"])
    for login, password in ((APP, FIRST[APP]), (CLONE, scheduled["password"])):
        assert login_refused(rotation.endpoint, login, password), login
    for session in sessions:
        with pytest.raises(psycopg.OperationalError):
            session.execute("SELECT 1")
        session.close()
    # The refreshed app logs in as caresync_app, the login named compromised, with the new
    # password: its sessions are no revoked credential's, and a rerun finds it contained.
    refreshed = connect(rotation.endpoint, APP, contained["password"])
    refreshed.execute("SET application_name = 'caresync-app'")
    try:
        rotation.breach("breach-after-rotation", "again.json")
        assert refreshed.execute("SELECT 1").fetchone() == (1,)
    finally:
        refreshed.close()


def test_a_second_rotation_while_the_first_ones_refresh_runs_cuts_off_no_instance(
        rotation: Rotation) -> None:
    """Hostile (two rotations in quick succession): day 1's instance refresh is still
    replacing the instances that booted with caresync_app's password, and none of them
    happens to hold a session at the instant day 2 looks (a pool between connections). Day 2
    changed caresync_app's password under them (and then failed on starting its own refresh,
    AWS refusing a second one while the first runs). It must refuse before any change."""
    rotation.refreshes.delay_seconds = 2.0     # day 1's refresh takes a while
    assert rotation.run("--yes", rotation_id="rotation-day-1") == ExitCode.OK, rotation.out
    try:
        assert rotation.run("--check", rotation_id="rotation-day-2") == ExitCode.NOT_READY, \
            rotation.out
        assert "instance refresh" in rotation.out, rotation.out
        master = rotation.password(MASTER, PRIMARY)
        changes = len(rotation.changes())
        assert rotation.run("--yes", rotation_id="rotation-day-2") == ExitCode.REFUSED, \
            rotation.out
        assert rotation.password(MASTER, PRIMARY) == master
        assert not [c for c in rotation.changes()[changes:] if not c.startswith("ssm:")]
        # the instances day 1's refresh has not replaced yet still log in
        assert not login_refused(rotation.endpoint, APP, FIRST[APP])
    finally:
        rotation.refreshed()
    # once it has finished, day 2 goes ahead
    assert rotation.run("--yes", "--resume", rotation_id="rotation-day-2") == ExitCode.OK, \
        rotation.out
    assert rotation.secret(APP)["username"] == APP


def test_a_breach_while_the_rotations_refresh_runs_replaces_every_instance(
        rotation: Rotation) -> None:
    """Hostile (a scheduled rotation, then a breach before its refresh ends): the breach
    rotated every password, then failed on StartInstanceRefresh (InstanceRefreshInProgress:
    AWS runs one refresh per group), exit 1 mid-containment. The running refresh launches
    instances that read the secret before the breach changed it, so it is cancelled and a new
    one started."""
    rotation.refreshes.delay_seconds = 2.0     # the scheduled rotation's refresh still runs
    assert rotation.run("--yes") == ExitCode.OK, rotation.out
    scheduled = {r.group: r for r in rotation.refreshes.refreshes}
    try:
        rotation.breach("breach-mid-refresh")
        for group, old in scheduled.items():
            assert old.status == "Cancelled", group
            newer = [r for r in rotation.refreshes.refreshes
                     if r.group == group and r.started > old.started]
            assert len(newer) == 1, group
    finally:
        rotation.refreshed()


def test_a_bad_rotation_id_is_named_by_its_own_option(
        tmp_path: Path, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Hostile: the message named --incident, an option rotate_db_credentials.py does not
    have."""
    code = run_rotation(["--rotation-id", "../x", "--project-dir", str(ROOT)],
                        session=fast_session(), out=io.StringIO())
    said = caplog.text + "".join(capsys.readouterr())
    assert code == ExitCode.USAGE
    assert "--rotation-id '../x'" in said and "--incident" not in said, said


def test_a_breach_after_a_rotation_killed_mid_master_rotation_still_logs_in_as_master(
        rotation: Rotation, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hostile: the scheduled rotation dies after the master user's password is set (its
    secret's AWSPENDING holds it) and before AWSCURRENT moves; a breach (another token) then
    stored its own pending version over it, so the master's only working password sat in a
    version with no label and no later connection as the master user logged in."""
    real = SecretStore.make_current

    def killed(self: SecretStore, secret_id: str, version_id: str) -> None:
        if secret_id == SECRETS[MASTER]:
            raise KeyboardInterrupt
        real(self, secret_id, version_id)

    monkeypatch.setattr(SecretStore, "make_current", killed)
    assert rotation.run("--yes") == ExitCode.FAILED, rotation.out
    monkeypatch.undo()
    assert login_refused(rotation.endpoint, MASTER, FIRST[MASTER])   # the ALTER happened
    rotation.breach("breach-after-a-kill")
    master = rotation.secret(MASTER)
    assert not login_refused(rotation.endpoint, MASTER, master["password"])


def test_a_breach_contains_even_when_the_logins_differ(rotation: Rotation) -> None:
    """Hostile: a grant made by hand to caresync_app alone stops the scheduled rotation from
    moving the app to the clone, rightly. The breach stopped there too: exit 1, and the
    compromised password kept logging in. Containment comes first: the breach rotates the
    login the secret names in place when the switch is refused."""
    rotation.database.psql(f"GRANT TRUNCATE ON patients TO {APP}", DATABASE)
    try:
        rotation.breach("breach-with-a-hand-grant")
        assert login_refused(rotation.endpoint, APP, FIRST[APP])
        contained = rotation.secret(APP)
        assert not login_refused(rotation.endpoint, contained["username"],
                                 contained["password"])
    finally:
        rotation.database.psql(f"REVOKE TRUNCATE ON patients FROM {APP}", DATABASE)


def test_a_hand_made_grant_is_refused_before_the_first_change(rotation: Rotation) -> None:
    """Hostile: with a grant made by hand to caresync_app alone, --check said "ready" and the
    run rotated the master user's password, then stopped at the app's secret (exit 1). The
    preflight reads it: --check says so and the run refuses with nothing changed."""
    rotation.database.psql(f"GRANT TRUNCATE ON patients TO {APP}", DATABASE)
    try:
        assert rotation.run("--check") == ExitCode.NOT_READY, rotation.out
        assert f"{CLONE} lacks TRUNCATE on patients" in rotation.out, rotation.out
        master = rotation.password(MASTER, PRIMARY)
        changes = len(rotation.changes())
        assert rotation.run("--yes") == ExitCode.REFUSED, rotation.out
        assert rotation.password(MASTER, PRIMARY) == master
        assert not [c for c in rotation.changes()[changes:] if not c.startswith("ssm:")]
        exists = rotation.database.psql(f"SELECT count(*) FROM pg_roles WHERE rolname = "
                                        f"'{CLONE}'")
        assert exists == "0"      # the check's migration was rolled back
    finally:
        rotation.database.psql(f"REVOKE TRUNCATE ON patients FROM {APP}", DATABASE)


def test_a_rotation_after_one_without_a_refresh_cuts_off_no_instance(
        rotation: Rotation) -> None:
    """Day 1 ran with --no-app-refresh (or its refresh failed or was cancelled): the instances
    that booted with caresync_app's password still run, with no session open at the instant
    day 2 looks (a pool between connections) and no refresh running. Day 2 would change
    caresync_app's password under them. It must refuse before any change, --check must say
    so, and once an instance refresh has replaced them it goes ahead."""
    assert rotation.run("--yes", "--no-app-refresh", rotation_id="rotation-day-1") \
        == ExitCode.OK, rotation.out
    assert rotation.refreshes.refreshes == []
    assert rotation.secret(APP)["username"] == CLONE
    assert rotation.run("--check", rotation_id="rotation-day-2") == ExitCode.NOT_READY, \
        rotation.out
    assert "no instance refresh has replaced them" in rotation.out, rotation.out
    master = rotation.password(MASTER, PRIMARY)
    changes = len(rotation.changes())
    assert rotation.run("--yes", rotation_id="rotation-day-2") == ExitCode.REFUSED, rotation.out
    assert rotation.password(MASTER, PRIMARY) == master
    assert not [c for c in rotation.changes()[changes:] if not c.startswith("ssm:")]
    assert not login_refused(rotation.endpoint, APP, FIRST[APP])   # day 1's old instances
    # A refresh that skips matching instances (app.py deploy) replaces none of them.
    for region in (PRIMARY, STANDBY):
        group = rotation.world.layout.by_region(region).auto_scaling_group
        rotation.world.client("autoscaling", region).start_instance_refresh(
            AutoScalingGroupName=group, Preferences={"SkipMatching": True})
    rotation.refreshed()
    assert rotation.run("--check", rotation_id="rotation-day-2") == ExitCode.NOT_READY, \
        rotation.out
    for region in (PRIMARY, STANDBY):
        group = rotation.world.layout.by_region(region).auto_scaling_group
        rotation.world.client("autoscaling", region).start_instance_refresh(
            AutoScalingGroupName=group)
    rotation.refreshed()
    assert rotation.run("--yes", "--resume", rotation_id="rotation-day-2") == ExitCode.OK, \
        rotation.out
    assert rotation.secret(APP)["username"] == APP
