"""Every input is resolved before the first change: unknown things are one clear line and exit
2, and what each step will act on is known (writer, secrets' region, instances' regions)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from caresync_dr.breach.context import BreachContext, BreachOptions
from caresync_dr.breach.inputs import incident_from
from caresync_dr.breach.resolve import resolve
from caresync_dr.cli.errors import ExitCode, UsageError
from tests.breach.world import (
    LEAKED_USER,
    PRIMARY,
    STANDBY,
    BreachWorld,
    fast_session,
    take_down,
)
from tests.ci_paths import ROOT


def _ctx(world: BreachWorld, session: boto3.Session | None = None, **named: Any
         ) -> BreachContext:
    incident = incident_from(
        incident_id="INC-1", discovered=None, window_start=None, window_end=None,
        access_keys=named.get("keys", ()), iam_users=named.get("users", ()),
        iam_roles=named.get("roles", ()), instances=named.get("instances", ()),
        db_roles=named.get("db_roles", ()), affected=None, largest_state=None)
    return BreachContext(incident, world.layout, BreachOptions(ROOT, db_sslmode="disable"),
                         session=session or fast_session())


@pytest.mark.parametrize(("named", "message"), [
    ({"keys": ["AKIAAAAAAAAAAAAAAAAA"]}, "--access-key AKIAAAAAAAAAAAAAAAAA: IAM knows no such"),
    ({"users": ["nobody"]}, "--iam-user nobody: no such IAM user"),
    ({"roles": ["no-role"]}, "--iam-role no-role: no such IAM role"),
    ({"instances": ["i-0123456789abcdef0"]}, "--instance i-0123456789abcdef0: no such instance "
                                            "in us-east-1, us-west-2"),
    ({"db_roles": ["mallory"]}, "--db-role mallory: no such role in the database"),
])
def test_unknown_inputs_are_usage_errors(db_world: BreachWorld, named: dict[str, Any],
                                         message: str) -> None:
    with pytest.raises(UsageError) as err:
        resolve(_ctx(db_world, **named))
    assert err.value.exit_code == ExitCode.USAGE
    assert message in str(err.value)


def test_everything_named_is_found_where_it_lives(db_world: BreachWorld) -> None:
    instance = db_world.sites[STANDBY].instances[0]
    ctx = _ctx(db_world, keys=[db_world.access_key], roles=[db_world.role],
               instances=[instance], db_roles=["analyst"])
    resolved = resolve(ctx)
    assert resolved.key_owners == {db_world.access_key: LEAKED_USER}
    assert resolved.role_arns[db_world.role].endswith(f":role/{db_world.role}")
    assert resolved.instances[instance].region == STANDBY
    assert resolved.database.writer_site == "primary"
    assert "standby" in resolved.database.problem or resolved.database.problem == ""
    assert [(r.credential.role, r.secret_region) for r in resolved.rotations] == [
        ("caresync_admin", PRIMARY), ("caresync_app", PRIMARY)]
    assert resolved.disable_login == ["analyst"]
    assert resolved.secrets_to_promote == []
    assert resolved.phi_buckets[PRIMARY] == [db_world.layout.primary.backup_bucket,
                                             db_world.layout.standby.backup_bucket]


def test_with_the_primary_region_down_the_standby_secrets_are_promoted_first(
        db_world: BreachWorld) -> None:
    session = fast_session()
    take_down(session, PRIMARY)
    ctx = _ctx(db_world, session=session, db_roles=["analyst"])
    resolved = resolve(ctx)
    assert not ctx.regions[PRIMARY].reachable and ctx.regions[STANDBY].reachable
    assert resolved.secrets_to_promote == ["caresync/db/master", "caresync/db/app"]
    assert {r.secret_region for r in resolved.rotations} == {STANDBY}
    # The standby's endpoint answers nothing here, and the primary's site is unreachable.
    assert resolved.database.writer_site is None and resolved.database.problem


def test_with_us_east_1_down_iam_inputs_wait_and_the_rest_resolves(
        db_world: BreachWorld) -> None:
    session = fast_session()
    take_down(session, PRIMARY)
    resolved = resolve(_ctx(db_world, session=session, keys=[db_world.access_key],
                            instances=[db_world.sites[STANDBY].instances[0]]))
    assert resolved.iam_problem.startswith("IAM does not answer")
    assert resolved.key_owners == {}
    assert resolved.instances[db_world.sites[STANDBY].instances[0]].region == STANDBY
