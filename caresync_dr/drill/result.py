"""What every drill runner adds to its report for the common result shape (docs/drills.md,
"The result shape"): what was broken and what the seed requires, the write series and the
phase markers the HTML report charts. A runner with more phases adds its own markers."""

from __future__ import annotations

from typing import Any

from caresync_dr.drill.load import Ack, write_series
from caresync_dr.drill.scenarios import SCENARIOS
from caresync_dr.drill.timeline import Timeline


def first_good_write(acks: list[Ack], failed_at: list[float], outage: float) -> float | None:
    """The first acknowledged write after the write path broke (after the outage's first
    failed write; after the outage when no write failed)."""
    broke = min((f for f in failed_at if f > outage), default=outage)
    good = [a.acked_at for a in acks if a.acked_at > broke]
    return min(good) if good else None


def common_fields(scenario: str, timeline: Timeline, acks: list[Ack], failed_at: list[float],
                  *, served_at: float | None, degraded_from: float | None = None,
                  degraded_seconds: float | None = None) -> dict[str, Any]:
    """``broken``, ``seed_requires``, ``degraded_seconds``, ``degraded_from_seconds``,
    ``series`` and the basic ``markers`` (outage, degraded service, writable service, first
    good write), all times in seconds from the outage."""
    known = SCENARIOS.get(scenario)
    fields: dict[str, Any] = {"broken": known.summary if known else None,
                              "seed_requires": known.seed_requires if known else None}
    outage = timeline.outage_at
    if outage is None:
        return fields
    good = first_good_write(acks, failed_at, outage)
    found = [("outage", outage), ("degraded service", degraded_from),
             ("writable service (RTO)", served_at), ("first good write", good)]
    fields.update(
        degraded_from_seconds=None if degraded_from is None else timeline.rel(degraded_from),
        degraded_seconds=degraded_seconds,
        series=write_series(acks, failed_at, outage),
        markers=[{"label": label, "t": timeline.rel(at)} for label, at in found
                 if at is not None])
    return fields
