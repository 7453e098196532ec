"""Rolling the fence back never makes two writers: only while the replica is still a replica
and no promotion was requested. A run killed after its NOLOGIN resumes from its journal, and
rolling back (or opening the new writer) reopens exactly the roles the fence closed: a role
that was NOLOGIN before the switchover stays so."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import cast

import pytest

from caresync_dr.db.roles import APP_ROLE
from caresync_dr.switchover import databases, fence
from caresync_dr.switchover.context import SwitchoverContext
from caresync_dr.switchover.steps import FenceWrites, fenced_roles, roll_back
from tests.switchover.pg import RETIRED, Pair, add_other_roles, can_login, start_pair

pytestmark = pytest.mark.postgres
ROLES = (APP_ROLE.name,)


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    yield from start_pair()


def context(pair: Pair, **facts: object) -> SwitchoverContext:
    settings = SimpleNamespace(
        source_db=databases.given("primary", pair.master_url(pair.primary)),
        target_db=databases.given("standby", pair.master_url(pair.standby)),
        writer_roles=ROLES, terminate_ms=5000)
    known: dict[str, object] = dict(facts)

    def fact(key: str, value: object, save: bool = False) -> None:
        known[key] = value

    return cast(SwitchoverContext, SimpleNamespace(settings=settings, facts=known, fact=fact))


def logins(pair: Pair) -> bool:
    with fence.connect(pair.master_url(pair.primary)) as conn:
        return fence.role_logins(conn, ROLES)[APP_ROLE.name]


def fence_primary(pair: Pair) -> None:
    with fence.connect(pair.master_url(pair.primary)) as conn:
        fence.fence_writes(conn, on_roles=lambda roles: None)


class Killed(BaseException):
    """The run dies here (SIGKILL, a lost terminal): nothing after it runs."""


def test_a_run_killed_after_nologin_resumes_and_reopens_exactly_what_it_closed(
        pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    add_other_roles(pair)
    before = can_login(pair.primary)
    assert before[RETIRED] is False
    first = context(pair)

    def killed(conn: fence.Connection, timeout_ms: int) -> list[fence.ClientSession]:
        raise Killed

    monkeypatch.setattr(fence, "_terminate", killed)
    with pytest.raises(Killed):
        FenceWrites().apply(first)
    monkeypatch.undo()
    journal = dict(first.facts)
    closed = [role for role, ok in before.items() if ok and role != "rds_master"]
    assert sorted(journal["fenced_roles"]) == sorted(closed)     # journalled before NOLOGIN
    assert not any(can_login(pair.primary)[role] for role in closed)
    # --resume: a new process with the journal's facts; the roles are NOLOGIN by now, so only
    # the journal says they were the fence's to reopen
    resumed = context(pair, **journal)
    assert FenceWrites().check(resumed).kind == "run"
    FenceWrites().apply(resumed)
    assert sorted(fenced_roles(resumed)) == sorted(closed)
    assert FenceWrites().check(resumed).kind == "done"
    said = roll_back(resumed)
    assert "rolled back" in said, said
    assert can_login(pair.primary) == before              # RETIRED still NOLOGIN
    assert resumed.facts["fenced_roles"] is None and resumed.facts["final_lsn"] is None


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
