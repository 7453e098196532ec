"""The switchover's report: the engine's keys plus the ``switchover`` section -- direction, the
final WAL position, the fence's times, the write-unavailability window and what it was made of.

The window runs from the fence (every role but the master user refused, every session ended) to the
first moment the command saw the public health URL answer from the new site with a writable
database. It is what this command observed; the drill measures the same window from the
client's side (last acknowledged write on the old writer to the first on the new one).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from caresync_dr.switchover.context import SwitchoverContext

# (fact, what it marks), in the order they happen.
MILESTONES = (
    ("fenced_at", "writes fenced"),
    ("final_lsn_at", "final WAL position read"),
    ("caught_up_at", "replica replayed it"),
    ("promotion_requested_at", "promotion requested"),
    ("writes_opened_at", "new writer open to the app"),
    ("switched_at", "traffic switch moved"),
    ("serving_at", "health URL served by the new site"),
)


def _at(ctx: SwitchoverContext, key: str) -> datetime | None:
    value = ctx.facts.get(key)
    return datetime.fromisoformat(str(value)) if value else None


def section(ctx: SwitchoverContext) -> dict[str, Any]:
    """The ``switchover`` section of every report (real runs; partial runs say what they
    reached)."""
    settings = ctx.settings
    fenced = _at(ctx, "fenced_at")
    serving = _at(ctx, "serving_at")
    rolled_back = ctx.facts.get("fence_rolled_back_at")
    milestones = []
    for key, what in MILESTONES:
        when = _at(ctx, key)
        if when is not None:
            milestones.append({"event": what, "at": when.isoformat(),
                               "secondsAfterFence": round((when - fenced).total_seconds(), 3)
                               if fenced is not None else None})
    window = (round((serving - fenced).total_seconds(), 3)
              if fenced is not None and serving is not None and not rolled_back else None)
    caught_up = ctx.facts.get("caught_up_at") is not None
    return {
        "from": settings.source, "to": settings.to,
        "sourceDatabase": {"identifier": ctx.source_database, "region": ctx.source.region,
                           "connection": settings.source_db.where},
        "targetDatabase": {"identifier": ctx.target_database, "region": ctx.target.region,
                           "connection": settings.target_db.where},
        "writerRoles": list(settings.writer_roles),
        "finalLsn": ctx.facts.get("final_lsn"),
        "writerSessionsEnded": ctx.facts.get("writer_sessions_ended"),
        "sessionsEndedByRole": ctx.facts.get("sessions_ended_by_role"),
        "fencedRoles": ctx.facts.get("fenced_roles") or ctx.facts.get("roles_reopened"),
        "rolesReopened": ctx.facts.get("roles_reopened"),
        "superuserSessionsLeft": ctx.facts.get("superuser_sessions"),
        "rolesNotClosed": ctx.facts.get("roles_not_closed"),
        "fenceRolledBackAt": rolled_back,
        "writeUnavailableSeconds": window,
        "milestones": milestones,
        # RPO 0 holds by construction once the replica replayed the final position before
        # promotion; before that point nothing was promoted, so nothing could be lost either.
        "acknowledgedWritesLost": 0 if caught_up or not ctx.facts.get(
            "promotion_requested_at") else None,
    }


def timeline_lines(document: dict[str, Any]) -> list[str]:
    """Markdown appended to the engine's timeline."""
    sw = document.get("switchover") or {}
    source = (sw.get("sourceDatabase") or {}).get("identifier")
    target = (sw.get("targetDatabase") or {}).get("identifier")
    lines = ["", "## Switchover", "",
             f"- from the {sw.get('from')} site ({source}) to the {sw.get('to')} site "
             f"({target})",
             f"- final WAL position: {sw.get('finalLsn')}",
             f"- write-unavailability window: {sw.get('writeUnavailableSeconds')} s",
             f"- acknowledged writes lost: {sw.get('acknowledgedWritesLost')}"]
    if sw.get("fenceRolledBackAt"):
        lines.append(f"- fence rolled back at {sw['fenceRolledBackAt']}")
    lines += ["", "| + s after fence | event |", "|---:|---|"]
    lines += [f"| {m['secondsAfterFence']} | {m['event']} ({m['at']}) |"
              for m in sw.get("milestones") or []]
    return lines
