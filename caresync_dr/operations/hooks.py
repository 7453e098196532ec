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
changes a run's outcome. Nor does it take CPU from the way to the run's critical request (the
promotion of a failover): the thread starts calling once that request is sent
(``RunContext.critical_sent``, at most :data:`HOOK_HOLD_SECONDS` later); the events keep the
time they happened at. :class:`DeferredHooks` builds a notifier there, on first use, so its
imports and clients are not made at start-up either. The default, :class:`NoHooks`, does
nothing; branch ``notify`` builds the notifier that plugs in here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from threading import Event, Lock
from typing import Any, Literal, Protocol

log = logging.getLogger(__name__)
HOOK_DRAIN_SECONDS = 30.0
# The longest the hook thread waits for the critical request before it calls anyway (a
# backstop: the engine releases it when the critical step ends and on every exit).
HOOK_HOLD_SECONDS = 5.0

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


class DeferredHooks:
    """The hooks ``build()`` returns, built on the first event (on the hook thread): a
    notifier's imports and AWS clients then cost nothing before the run's critical request."""

    def __init__(self, build: Callable[[], OperationHooks]) -> None:
        self._build = build
        self._built: OperationHooks | None = None
        self._mutex = Lock()

    @property
    def built(self) -> OperationHooks | None:
        """The hooks, once an event has built them."""
        return self._built

    def _hooks(self) -> OperationHooks:
        with self._mutex:
            if self._built is None:
                self._built = self._build()
            return self._built

    def incident_opened(self, event: OperationEvent) -> None:
        self._hooks().incident_opened(event)

    def phase_started(self, event: OperationEvent) -> None:
        self._hooks().phase_started(event)

    def phase_finished(self, event: OperationEvent) -> None:
        self._hooks().phase_finished(event)

    def resolved(self, event: OperationEvent) -> None:
        self._hooks().resolved(event)

    def failed(self, event: OperationEvent) -> None:
        self._hooks().failed(event)

    def report(self) -> dict[str, Any] | None:
        """The built hooks' own report, when they have one."""
        own = getattr(self._built, "report", None)
        return own() if callable(own) else None


class HookDispatcher:
    """Calls the hooks in order on one background thread; collects their failures. With
    ``hold``, the thread waits (at most ``hold_seconds``, default :data:`HOOK_HOLD_SECONDS`)
    for that event before its first call: the engine passes the run's ``critical_sent``."""

    def __init__(self, hooks: OperationHooks, hold: Event | None = None,
                 hold_seconds: float | None = None) -> None:
        self.hooks = hooks
        self._hold = hold
        self._hold_seconds = hold_seconds
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
        if self._hold is not None:
            self._hold.wait(HOOK_HOLD_SECONDS if self._hold_seconds is None
                            else self._hold_seconds)
            self._hold = None
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
        named = getattr(self.hooks, "built", None) or self.hooks   # DeferredHooks: what it built
        report: dict[str, Any] = {"hooks": type(named).__name__, "delivered": self.sent,
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
