"""Issue 10, "Done when": a kill at every journal write, every lock transition and every change
the run makes in AWS -- before the request is sent, and after AWS applied it with the answer
lost -- and then a plain run at once, a plain run an hour later, and ``--resume``. Each later
run finishes the failover or refuses with a true message; in the end the failover is complete,
no change reached AWS twice, and the report gives the killed run its changes (``faults.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.failover import faults
from tests.failover import world as w
from tests.failover.conftest import ROOT
from tests.failover.test_region_failover import age_lock

# The writes of a clean run, by name (test_the_walk_covers_every_write keeps this complete).
KILL_POINTS = {
    "region": [
        # The run hurries to the promotion: its begin is saved with the promote step's
        # write-ahead record, which carries promotion_requested_at (no writes of their own).
        "lock: create", "journal: begin",
        "journal: fence-primary-app pending", "auto-scaling.UpdateAutoScalingGroup prod-app",
        "journal: fence-primary-app done",
        "journal: fence-primary-database pending",
        "ec2.RevokeSecurityGroupIngress primary database security group",
        "journal: fence-primary-database done",
        "rds.PromoteReadReplica caresync-dr-db", "journal: promote-database done",
        "journal: scale-standby-app pending", "auto-scaling.UpdateAutoScalingGroup dr-app",
        "journal: scale-standby-app done",
        "journal: switch-traffic pending", "s3.PutObject switch/traffic",
        "journal: switch-traffic done", "journal: observe-route53 done", "journal: verify done",
        "journal: completed",
        "lock: last renewal", "lock: release",
        "s3.PutObject incidents/*.md", "s3.PutObject incidents/*.json",
    ],
    "database": [
        "lock: create", "journal: begin",   # begin + the promotion's write-ahead record
        "rds.PromoteReadReplica caresync-prod-db-replica-1", "journal: promote-database done",
        "journal: fence-primary-database pending",
        "ec2.RevokeSecurityGroupIngress primary database security group",
        "journal: fence-primary-database done",
        "journal: point-app-at-database pending",
        "ssm.PutParameter /caresync-dr/prod/database-endpoint",
        "journal: point-app-at-database done",
        "journal: refresh-app pending", "auto-scaling.StartInstanceRefresh prod-app",
        "journal: refresh-app done", "journal: verify done", "journal: completed",
        "lock: last renewal", "lock: release",
        "s3.PutObject incidents/*.md", "s3.PutObject incidents/*.json",
    ],
}
# Always run (the cases issue 10 names: lock transitions, a lost answer to the promotion, a kill
# after completion); the rest of the walk is marked ``faults`` (``make faults``, in CI).
ALWAYS = {("lock: create", "before"), ("lock: create", "after"), ("journal: begin", "after"),
          ("rds.PromoteReadReplica caresync-dr-db", "after"), ("journal: completed", "after"),
          ("lock: last renewal", "before"), ("lock: last renewal", "after"),
          ("lock: release", "before"), ("lock: release", "after"),
          ("rds.PromoteReadReplica caresync-prod-db-replica-1", "after")}
POINTS = [faults.KillPoint(scope, label, moment) for scope, labels in KILL_POINTS.items()
          for label in labels for moment in ("before", "after")]


@pytest.fixture
def fault_world() -> Iterator[w.World]:
    with faults.emulated_world() as world:
        yield world


@pytest.mark.parametrize("scope", list(KILL_POINTS))
def test_the_walk_covers_every_write(fault_world: w.World, tmp_path: Path, scope: str) -> None:
    """A clean run writes exactly the kill points above: a new write joins the walk."""
    invoke = faults.make_invoke(fault_world, tmp_path, ROOT)
    assert sorted(faults.discover(fault_world, invoke, scope)) == sorted(KILL_POINTS[scope])


def hour_passer(world: w.World) -> Callable[[], None]:
    def an_hour_passes() -> None:
        if world.parameter(w.STANDBY, world.inventory.lock_parameter):
            age_lock(world, 3600)
    return an_hour_passes


def explain(outcome: faults.Outcome) -> str:
    return "\n".join(outcome.problems + [f"  {a.argv} -> {a.code}" for a in outcome.attempts])


@pytest.mark.parametrize("point", [
    pytest.param(p, id=str(p), marks=() if (p.label, p.moment) in ALWAYS else pytest.mark.faults)
    for p in POINTS])
def test_a_kill_is_always_recovered(fault_world: w.World, tmp_path: Path,
                                    point: faults.KillPoint) -> None:
    invoke = faults.make_invoke(fault_world, tmp_path, ROOT)
    outcome = faults.kill_and_recover(fault_world, invoke, point, hour_passer(fault_world))
    assert outcome.recovered, explain(outcome)


def takeover_killed(tmp_path: Path, moment: faults.Moment) -> faults.Outcome:
    """The first run dies mid-way; the --resume that takes its stale lock over dies at the
    takeover itself; then the operator recovers."""
    with faults.emulated_world() as world:
        invoke = faults.make_invoke(world, tmp_path, ROOT)
        first = faults.crash(world, invoke,
                             faults.KillPoint("region", "journal: switch-traffic pending", "after"))
        age_lock(world, 3600)
        return faults.kill_and_recover(
            world, invoke, faults.KillPoint("region", "lock: take over", moment),
            hour_passer(world), before=first, argv=("--resume",))


def renewal_killed(tmp_path: Path, moment: faults.Moment) -> faults.Outcome:
    """Killed while renewing its lease (the promotion takes 0.5 s, renewals every 0.05 s)."""
    with faults.emulated_world(promote_seconds=0.5) as world:
        invoke = faults.make_invoke(world, tmp_path, ROOT)
        return faults.kill_and_recover(
            world, invoke, faults.KillPoint("region", "lock: renew", moment),
            hour_passer(world), argv=("--lock-heartbeat-seconds", "0.05"))


# Kills at lock transitions that only a later run, or a long one, makes.
MOMENTS: tuple[faults.Moment, ...] = ("before", "after")
SECOND_LEVEL = [(name, scenario, moment)
                for name, scenario in (("takeover", takeover_killed), ("renewal", renewal_killed))
                for moment in MOMENTS]


@pytest.mark.parametrize(("scenario", "moment"), [(s, m) for _, s, m in SECOND_LEVEL],
                         ids=[f"{n}-{m}" for n, _, m in SECOND_LEVEL])
# A renewal kill kills the renewal thread: its exception is the kill, not a bug.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_kill_at_a_later_lock_transition_is_recovered(
        tmp_path: Path, scenario: Callable[[Path, faults.Moment], faults.Outcome],
        moment: faults.Moment) -> None:
    outcome = scenario(tmp_path, moment)
    assert outcome.recovered, explain(outcome)
