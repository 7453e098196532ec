"""The drill's timeline and step records: what happened when, relative to the outage."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)
# One line per phase while the drill runs (the command shows this logger; events go to -v).
phases = logging.getLogger("caresync_dr.drill.phases")


@dataclass
class Step:
    name: str
    started: float
    seconds: float = 0.0
    ok: bool = True
    detail: str = ""


@dataclass
class Timeline:
    """Events (seconds since the drill started) and the outage instant, once injected."""

    origin: float = field(default_factory=time.monotonic)
    outage_at: float | None = None
    outage_wall: float | None = None  # time.time() at the outage, to place wall-clock events
    primary_killed_at: float | None = None  # when the drill killed the old primary database
    degraded_at: float | None = None  # first healthy answer from a read-only database
    events: list[tuple[float, str]] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    def event(self, text: str, at: float | None = None) -> None:
        when = time.monotonic() if at is None else at
        self.events.append((when, text))
        log.debug("%s", text)

    def event_at_wall(self, wall: float, text: str) -> None:
        """An event known by its wall-clock time (e.g. from failover.py's report)."""
        if self.outage_at is None or self.outage_wall is None:
            return
        self.events.append((self.outage_at + (wall - self.outage_wall), text))

    def from_wall(self, wall: float) -> float | None:
        """The monotonic instant of a wall-clock time (None before the outage is injected)."""
        if self.outage_at is None or self.outage_wall is None:
            return None
        return self.outage_at + (wall - self.outage_wall)

    def rel(self, when: float) -> float:
        """Seconds relative to the outage (negative before it), or to the start."""
        return round(when - (self.outage_at if self.outage_at is not None else self.origin), 3)

    def step(self, name: str) -> _StepTimer:
        return _StepTimer(self, name)

    def render(self) -> str:
        lines = ["timeline (seconds relative to the outage):"]
        for when, text in sorted(self.events):
            lines.append(f"  {self.rel(when):+8.3f}  {text}")
        return "\n".join(lines)

    def as_json(self) -> list[dict[str, Any]]:
        return [{"t": self.rel(when), "event": text} for when, text in sorted(self.events)]


class _StepTimer:
    def __init__(self, timeline: Timeline, name: str) -> None:
        self.timeline = timeline
        self.step = Step(name=name, started=time.monotonic())

    def __enter__(self) -> Step:
        number = len(self.timeline.steps) + 1
        phases.info("phase %d: %s", number, self.step.name)
        return self.step

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.step.seconds = round(time.monotonic() - self.step.started, 3)
        if exc is not None:
            self.step.ok = False
            self.step.detail = self.step.detail or f"{type(exc).__name__}: {exc}"
        self.timeline.steps.append(self.step)
        if not self.step.ok:
            phases.warning("phase %s failed after %.1f s: %s", self.step.name,
                           self.step.seconds, self.step.detail)
