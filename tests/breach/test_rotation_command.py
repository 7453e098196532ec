"""rotate_db_credentials.py end to end on moto and a real PostgreSQL: the scheduled rotation of
decision D1's secrets. Both passwords change in the database and in their secrets, the standby
region's replica serves the new ones (its app boots from it), the old ones are refused, both
app tiers are replaced; a dry run changes nothing; a second run the same day does nothing."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from caresync_dr.breach.command import run_rotation
from caresync_dr.cli import ExitCode
from caresync_dr.db.secrets import APP_SECRET_NAME, MASTER_SECRET_NAME
from caresync_dr.db.sessions import Endpoint, login_refused
from caresync_dr.emulation.autoscaling import InstanceRefreshes
from caresync_dr.operations import ApiCallRecorder
from caresync_dr.pg.cluster import PostgresCluster
from tests.breach.conftest import APP, DATABASE, FIRST, MASTER
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

    def run(self, *extra: str) -> int:
        out = io.StringIO()
        code = run_rotation(["--rotation-id", "rotation-test", "--db-sslmode", "disable",
                             "--project-dir", str(ROOT), "--report",
                             str(self.tmp / "rotation.json"), *extra],
                            session=self.session, out=out)
        self.out = out.getvalue()
        return code

    def password(self, role: str, region: str) -> str:
        value = self.world.client("secretsmanager", region).get_secret_value(
            SecretId=SECRETS[role])["SecretString"]
        return str(json.loads(value)["password"])

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint("127.0.0.1", self.database.port, DATABASE, "disable")

    def changes(self) -> list[str]:
        return [f"{s}:{o}" for s, o, _, k in self.calls.calls if k == "change"]


@pytest.fixture
def rotation(db_world: BreachWorld, database: PostgresCluster, tmp_path: Path
             ) -> Iterator[Rotation]:
    session = fast_session()
    with InstanceRefreshes() as refreshes:
        yield Rotation(db_world, database, tmp_path, session, refreshes,
                       ApiCallRecorder().install(session))


def test_the_rotation_keeps_the_standby_replica_valid(rotation: Rotation) -> None:
    assert rotation.run("--yes") == ExitCode.OK, rotation.out
    for role in (MASTER, APP):
        new = rotation.password(role, PRIMARY)
        assert new != FIRST[role]
        # The standby app boots from its own region's replica: it must carry the new password.
        assert rotation.password(role, STANDBY) == new
        assert not login_refused(rotation.endpoint, role, new)
        assert login_refused(rotation.endpoint, role, FIRST[role])
    assert sorted(r.group for r in rotation.refreshes.refreshes) == [
        "caresync-primary-app", "caresync-standby-app"]
    report = json.loads((rotation.tmp / "rotation.json").read_text())
    assert report["outcome"] == "completed"
    changes = len(rotation.changes())
    assert rotation.run("--yes") == ExitCode.OK
    assert "already rotated" in rotation.out
    assert all(c.startswith("ssm:") for c in rotation.changes()[changes:]), rotation.changes()


def test_a_dry_run_rotates_nothing(rotation: Rotation) -> None:
    assert rotation.run("--dry-run") == ExitCode.OK, rotation.out
    assert rotation.changes() == []
    for role in (MASTER, APP):
        assert rotation.password(role, PRIMARY) == FIRST[role]
        assert not login_refused(rotation.endpoint, role, FIRST[role])
    assert rotation.refreshes.refreshes == []
