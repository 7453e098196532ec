"""Data-loss accounting and the fence instant: pure functions over the drill's records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from caresync_dr.drill.load import Ack, data_loss
from caresync_dr.drill.timeline import Timeline
from caresync_dr.drill.verify import fence_instant, late_acknowledgements

ACKS = [Ack(seq=1, database="primary", acked_at=10.0),
        Ack(seq=2, database="primary", acked_at=10.2),
        Ack(seq=3, database="primary", acked_at=10.7),
        Ack(seq=4, database="standby", acked_at=20.0)]


def test_no_loss_when_the_survivor_holds_every_acknowledged_write() -> None:
    loss = data_loss(ACKS, "primary", present={1, 2, 3, 4})
    assert (loss.acknowledged, loss.missing, loss.seconds) == (3, 0, 0.0)


def test_loss_counts_missing_writes_and_the_gap_to_the_last_one_kept() -> None:
    loss = data_loss(ACKS, "primary", present={1, 4})
    assert (loss.missing, loss.seconds) == (2, 0.7)


def test_losing_everything_measures_from_the_first_acknowledgement() -> None:
    loss = data_loss(ACKS, "primary", present=set())
    assert (loss.missing, loss.seconds) == (3, 0.7)


# --- the fence instant: failover.py's fence when it confirms one, else the drill's kill -------

def _timeline(killed_at: float | None = 100.0) -> Timeline:
    timeline = Timeline(origin=90.0)
    timeline.outage_at, timeline.outage_wall = 100.0, 1_800_000_000.0
    timeline.primary_killed_at = killed_at
    return timeline


def _report(fenced: str, ended_offset: float | None) -> dict[str, Any]:
    ended = (None if ended_offset is None else
             datetime.fromtimestamp(1_800_000_000.0 + ended_offset, UTC).isoformat())
    return {"fenced": fenced, "steps": [
        {"name": "fence-primary-app", "outcome": "done", "ended_at": ended},
        {"name": "fence-primary-database", "outcome": "done", "ended_at": ended}]}


def test_fence_time_comes_from_failover_report_when_it_fenced() -> None:
    # Fenced 2.5 s after the outage: a write acknowledged at +1 s is not late, though it came
    # after the kill; the drill's kill instant (+0 s) is not the fence.
    at, source = fence_instant(_timeline(), _report("fenced", 2.5))
    assert at == 102.5
    assert "failover.py's fence" in source and "fence-primary-database" in source


def test_unconfirmed_fence_falls_back_to_the_kill_and_says_so() -> None:
    at, source = fence_instant(_timeline(), _report("not confirmed", None))
    assert at == 100.0
    assert "not confirmed" in source and "kill -9" in source and "not failover.py" in source


def test_fenced_without_a_fence_end_gives_no_instant() -> None:
    at, source = fence_instant(_timeline(), _report("fenced", None))
    assert at is None and "no end" in source
    assert fence_instant(_timeline(killed_at=None), None)[0] is None


# --- late acknowledgements: what the old primary acknowledged after its fence ------------------

def test_a_reply_stamped_after_the_kill_to_a_commit_sent_before_it_is_not_late() -> None:
    """The drill's load thread stamps an acknowledgement when it gets the GIL back, which can
    be after the drill's main thread has killed the primary and stamped the kill (a failed
    region-outage drill: "1 late acknowledgements" with the kill as the fence). The COMMIT was
    sent before the kill, so a backend committed it before it died: not late. A COMMIT sent
    after the kill and acknowledged is (a process survived the kill)."""
    in_flight = Ack(seq=7, database="primary", acked_at=100.004, committing_at=99.999)
    survivor = Ack(seq=8, database="primary", acked_at=100.030, committing_at=100.020)
    standby = Ack(seq=9, database="standby", acked_at=108.0, committing_at=107.99)
    acks = [in_flight, survivor, standby]
    assert late_acknowledgements(acks, 100.0, killed=True) == [survivor]
    # failover.py's own fence (ingress revoked) keeps the stricter reading: the reply's time
    assert late_acknowledgements(acks, 100.0, killed=False) == [in_flight, survivor]
