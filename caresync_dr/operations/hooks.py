"""The notification hook: how an operation tells people what is happening (decision D7).

The engine calls an :class:`OperationHooks` at five moments of a run that may change something:
the incident is opened (after the confirmation, before the first change), each phase (step)
starts and finishes, and the run is resolved (completed) or failed (stopped part-way,
interrupted, crashed). Each call gets an :class:`OperationEvent` with the run id and the facts
known so far. Runs that change nothing (a refusal, ``--check``, ``--dry-run``, "already done")
open no incident.

Best effort, and never in the way: the engine makes the calls in order on a thread of their own
(a slow channel never delays a step), waits for them at most :data:`HOOK_DRAIN_SECONDS` at the end
of the run, and records every hook that raised in the report (``notifications``). A hook never
changes a run's outcome. The default, :class:`NoHooks`, does nothing; branch ``notify`` builds
the notifier that plugs in here.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

log = logging.getLogger(__name__)
HOOK_DRAIN_SECONDS = 30.0

EventKind = Literal["incident-opened", "phase-started", "phase-finished", "resolved", "failed"]


@dataclass(frozen=True)
class OperationEvent:
    kind: EventKind
    operation: str                   # e.g. "failover"
    run_id: str
    stack: str
    title: str                       # what the run is, e.g. "region failover of caresync-dr/dr"
    at: datetime
    sentence: str = ""               # what happened, one sentence (a step's, or the outcome)
    phase: str | None = None         # the step's name, for phase events
    phase_title: str | None = None
    outcome: str | None = None       # a finished phase's (done, skipped, failed, not confirmed),
    #                                  or the run's (completed, failed, interrupted, crashed)
    best_effort: bool = False        # a best-effort phase (its failure does not stop the run)
    facts: dict[str, Any] = field(default_factory=dict)   # a copy, as of the event


class OperationHooks(Protocol):
    """What a notifier implements. Calls come from one thread, in the order of the events."""

    def incident_opened(self, event: OperationEvent) -> None: ...

    def phase_started(self, event: OperationEvent) -> None: ...

    def phase_finished(self, event: OperationEvent) -> None: ...

    def resolved(self, event: OperationEvent) -> None: ...

    def failed(self, event: OperationEvent) -> None: ...


class NoHooks:
    """The default: tell nobody."""

    def incident_opened(self, event: OperationEvent) -> None:
        return None

    def phase_started(self, event: OperationEvent) -> None:
        return None

    def phase_finished(self, event: OperationEvent) -> None:
        return None

    def resolved(self, event: OperationEvent) -> None:
        return None

    def failed(self, event: OperationEvent) -> None:
        return None


METHODS: dict[EventKind, str] = {
    "incident-opened": "incident_opened", "phase-started": "phase_started",
    "phase-finished": "phase_finished", "resolved": "resolved", "failed": "failed"}


class HookDispatcher:
    """Calls the hooks in order on one background thread; collects their failures."""

    def __init__(self, hooks: OperationHooks) -> None:
        self.hooks = hooks
        self.problems: list[dict[str, str]] = []
        self.sent = 0
        self._pool: ThreadPoolExecutor | None = None
        self._last: Future[None] | None = None

    def emit(self, event: OperationEvent) -> None:
        if isinstance(self.hooks, NoHooks):
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="operation-hooks")
        self._last = self._pool.submit(self._call, event)

    def _call(self, event: OperationEvent) -> None:
        try:
            getattr(self.hooks, METHODS[event.kind])(event)
            self.sent += 1
        except Exception as exc:       # best effort: a dead channel changes nothing
            log.warning("notification %s of run %s failed: %s: %s", event.kind, event.run_id,
                        type(exc).__name__, exc)
            self.problems.append({"event": event.kind, "phase": event.phase or "",
                                  "error": f"{type(exc).__name__}: {exc}"})

    def drain(self, timeout: float = HOOK_DRAIN_SECONDS) -> None:
        """Wait (bounded) for the calls made so far; never raises."""
        if self._pool is None:
            return
        try:
            if self._last is not None:
                self._last.result(timeout=timeout)
        except FutureTimeout:
            self.problems.append({"event": "drain", "phase": "",
                                  "error": f"notifications still running after {timeout:.0f} s"})
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def as_report(self) -> dict[str, Any]:
        """The report's ``notifications``: the hook calls, and what the hooks themselves
        report when they can (the notifier: every message and delivery)."""
        report: dict[str, Any] = {"hooks": type(self.hooks).__name__, "delivered": self.sent,
                                  "problems": list(self.problems)}
        own = getattr(self.hooks, "report", None)
        if callable(own):
            try:
                details = own()
            except Exception as exc:
                details = {"error": f"{type(exc).__name__}: {exc}"}
            if isinstance(details, dict):
                report.update(details)
        return report


def now() -> datetime:
    return datetime.now(UTC)
