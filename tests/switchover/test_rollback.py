"""Rolling the fence back never makes two writers: only while the replica is still a replica
and no promotion was requested."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import cast

import pytest

from caresync_dr.db.roles import APP_ROLE
from caresync_dr.switchover import databases, fence
from caresync_dr.switchover.context import SwitchoverContext
from caresync_dr.switchover.steps import roll_back
from tests.switchover.pg import Pair, start_pair

pytestmark = pytest.mark.postgres
ROLES = (APP_ROLE.name,)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    yield from start_pair()


def context(pair: Pair, **facts: str) -> SwitchoverContext:
    settings = SimpleNamespace(
        source_db=databases.given("primary", pair.master_url(pair.primary)),
        target_db=databases.given("standby", pair.master_url(pair.standby)),
        writer_roles=ROLES)
    known: dict[str, object] = dict(facts)

    def fact(key: str, value: object, save: bool = False) -> None:
        known[key] = value

    return cast(SwitchoverContext, SimpleNamespace(settings=settings, facts=known, fact=fact))


def logins(pair: Pair) -> bool:
    with fence.connect(pair.master_url(pair.primary)) as conn:
        return fence.role_logins(conn, ROLES)[APP_ROLE.name]


def fence_primary(pair: Pair) -> None:
    with fence.connect(pair.master_url(pair.primary)) as conn:
        fence.fence_writes(conn, ROLES)


def test_roll_back_only_before_any_promotion(pair: Pair) -> None:
    fence_primary(pair)
    said = roll_back(context(pair, promotion_requested_at="2026-11-30T04:00:00+00:00"))
    assert "the fence stays" in said and logins(pair) is False
    said = roll_back(context(pair))
    assert "rolled back" in said and logins(pair) is True
    fence_primary(pair)
    pair.standby.promote()
    said = roll_back(context(pair))
    assert "out of recovery" in said and logins(pair) is False
