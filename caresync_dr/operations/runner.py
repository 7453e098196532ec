"""Runs a plan: checks then applies each step, times it, journals it, says what happened.

Required steps that fail stop the run (exit FAILED, resumable); best-effort steps that fail are
recorded as "not confirmed" and the run goes on. Background stages are joined at the end.

How a run's threads end: an ordinary step failure lets the background steps (best-effort
fencing, idempotent, re-run by ``--resume``) end on their own. Anything that is not an
``Exception`` -- Ctrl-C, SystemExit, a kill, pytest-timeout's ``Failed`` -- sets ``ctx.stop``
first, so every poll of every step ends at its next look. Either way the end of the run waits
at most :data:`JOIN_SECONDS` for the steps still running: one past it is a stall (a call that no
timeout reached), logged by name, recorded as still running (``pending``, no end time) in
``records`` and :attr:`Runner.still_running`, told to stop, and left behind -- one stalled call
must not become a run that never exits or writes its report.

Hurrying (:func:`~caresync_dr.operations.steps.hurries`): when the first stage the run waits
for holds a critical step (failover's promotion), every other step starts once that step's
request is sent (``ctx.critical_sent``; at most :data:`HOLD_SECONDS` later): the steps beside it
and the background fencing before it still run concurrently with the promotion, but their
reads, changes and journal writes no longer queue in front of its request.

Who did what: before a step's change is asked for, the journal records the step as pending with
``requested_at`` (write-ahead). A step whose check later finds its change made is then "done" by
this run -- also when the answer to the request was lost, and on ``--resume`` after a crash --
and "skipped" only when the change was there before this run asked for it.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.cli.errors import CommandError
from caresync_dr.operations.context import RunContext
from caresync_dr.operations.errors import StepFailedError
from caresync_dr.operations.journal import JournalUnavailableError, StepRecord
from caresync_dr.operations.steps import Stage, Step, Verdict, all_steps, hurries

log = logging.getLogger(__name__)
# What a step may raise that we record as its failure (anything else is a bug and propagates).
STEP_ERRORS: tuple[type[BaseException], ...] = (ClientError, BotoCoreError, CommandError)


def step_errors() -> tuple[type[BaseException], ...]:
    """STEP_ERRORS, plus requests' errors once a step has imported requests (it is not
    imported at start-up: a run reaches its first step sooner)."""
    if "requests" not in sys.modules:
        return STEP_ERRORS
    from requests import RequestException

    return (*STEP_ERRORS, RequestException)
C = TypeVar("C", bound=RunContext)
StepEvent = Literal["started", "finished"]
# Called as each step starts and ends (from the step's thread): the notification hook.
OnStep = Callable[[StepEvent, Step[Any], StepRecord], None]


# The longest a step waits for the critical request before it starts anyway (a backstop: the
# critical step sets it as soon as its request is sent, and when it ends).
HOLD_SECONDS = 5.0
# The longest the end of a run waits for the steps still running, in seconds. A background step
# is best effort: each of its AWS calls has the budget aws.BEST_EFFORT, 2 attempts x (2 s
# connect + 5 s read) = 14 s, so 60 s covers four such calls hung in a row.
JOIN_SECONDS = 60.0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Runner(Generic[C]):
    def __init__(self, ctx: C, plan: tuple[Stage[C], ...], name: str = "operation",
                 on_step: OnStep | None = None, join_seconds: float | None = None) -> None:
        """``join_seconds``: how long the end of the run waits for steps still running
        (default :data:`JOIN_SECONDS`, read when the runner is made)."""
        self.ctx = ctx
        self.plan = plan
        self.records: dict[str, StepRecord] = {}
        self.journal_error: JournalUnavailableError | None = None
        # Names of the steps still running when the run ended (left behind after the limit).
        self.still_running: list[str] = []
        self._on_step = on_step
        self._join_seconds = JOIN_SECONDS if join_seconds is None else join_seconds
        self._background: list[Future[StepRecord]] = []
        self._submitted: dict[Future[StepRecord], Step[C]] = {}
        self._started: dict[str, StepRecord] = {}
        self._hurry = hurries(plan)
        # A held step waits in its worker: one worker per step, so the critical one never
        # queues behind held ones.
        self._pool = ThreadPoolExecutor(max_workers=max(6, len(all_steps(plan))),
                                        thread_name_prefix=name)

    def run(self) -> None:
        try:
            for stage in self.plan:
                futures = [self._submit(step) for step in stage.steps]
                if stage.background:
                    self._background.extend(futures)
                    continue
                results = [f.result() for f in futures]
                if self.journal_error is not None:
                    raise self.journal_error
                failed = [r for r in results if r.outcome == "failed" and not r.best_effort]
                if failed:
                    raise StepFailedError(f"step {failed[0].name} failed: {failed[0].detail}; "
                                          "the state is consistent: fix the cause, then "
                                          "continue with --resume")
        except BaseException as exc:
            if not isinstance(exc, Exception):    # Ctrl-C, a kill, a test's timeout
                self.ctx.stop.set()
            raise
        finally:
            self._finish(stopping=self.ctx.stop.is_set())
        if self.journal_error is not None:
            raise self.journal_error

    def _submit(self, step: Step[C]) -> Future[StepRecord]:
        future = self._pool.submit(self.run_step, step)
        self._submitted[future] = step
        return future

    def _finish(self, stopping: bool) -> None:
        """Wait at most ``join_seconds`` for every step still running, leave the rest (named
        in the log and :attr:`still_running`), and raise what a background step raised.
        Only a stopping run cancels the steps not yet started: otherwise a background stage
        submitted just before the end, its worker not yet running it, would be skipped."""
        if stopping:
            for future in self._submitted:
                future.cancel()                   # queued, never started: it never runs
        _, left = wait(self._submitted, timeout=self._join_seconds)
        if left:
            self._leave([self._submitted[f] for f in left])
        self._pool.shutdown(wait=not left, cancel_futures=True)
        background, self._background = self._background, []
        for future in background:
            if future.done() and not future.cancelled():
                future.result()

    def _leave(self, steps: list[Step[C]]) -> None:
        self.ctx.stop.set()                       # each ends at its next poll, if it polls
        for step in steps:
            self.still_running.append(step.name)
            started = self._started.get(step.name)
            log.warning("step %s still running %.1f s after the run ended: left behind",
                        step.name, self._join_seconds)
            self.records[step.name] = StepRecord(
                name=step.name, title=step.title, outcome="pending",
                started_at=started.started_at if started else None, ended_at=None,
                seconds=None, best_effort=step.best_effort,
                requested_at=started.requested_at if started else None,
                detail=f"still running {self._join_seconds:g} s after the run ended: left "
                       "behind, its outcome unknown")

    def _tell(self, event: StepEvent, step: Step[C], record: StepRecord) -> None:
        if self._on_step is not None:
            self._on_step(event, step, record)

    def run_step(self, step: Step[C]) -> StepRecord:
        if self._hurry and not step.critical:
            self.ctx.critical_sent.wait(HOLD_SECONDS)
        try:
            return self._run_step(step)
        finally:
            if step.critical:     # also when it raised: nothing waits for it any longer
                self.ctx.critical_sent.set()

    def _run_step(self, step: Step[C]) -> StepRecord:
        record = StepRecord(name=step.name, title=step.title, outcome="pending",
                            started_at=_now(), ended_at=None, seconds=None, detail="",
                            best_effort=step.best_effort)
        started = time.monotonic()
        self._started[step.name] = record
        earlier = self.ctx.journal.step(step.name) if self.ctx.journal is not None else None
        log.info("step %s: %s", step.name, step.title)
        self._tell("started", step, record)
        try:
            verdict = step.check(self.ctx)
            if verdict.kind == "done":
                record.outcome, record.detail = "skipped", verdict.sentence
            elif verdict.kind == "blocked":
                record.outcome = "not confirmed" if step.best_effort else "failed"
                record.detail = verdict.sentence
            else:
                self._apply(step, record)
        except JournalUnavailableError as exc:
            # The write-ahead record could not be saved: the change was not asked for.
            record.outcome = "not confirmed" if step.best_effort else "failed"
            record.detail = f"not started: {exc}"
            self.journal_error = self.journal_error or exc
        except step_errors() as exc:
            record.outcome = "not confirmed" if step.best_effort else "failed"
            record.detail = f"{type(exc).__name__}: {exc}"
        if step.critical:    # its request was sent, or will not be: nothing waits longer
            self.ctx.critical_sent.set()
        record.ended_at = _now()
        record.seconds = round(time.monotonic() - started, 3)
        record = self._attribute(record, earlier)
        self.records[step.name] = record
        if self.ctx.journal is not None:
            try:
                self.ctx.journal.record(record)
            except JournalUnavailableError as exc:
                self.journal_error = self.journal_error or exc
        level = logging.WARNING if record.outcome in ("failed", "not confirmed") else logging.INFO
        log.log(level, "step %s %s in %.2f s: %s", step.name, record.outcome,
                record.seconds or 0.0, record.detail)
        self._tell("finished", step, record)
        return record

    def _apply(self, step: Step[C], record: StepRecord) -> None:
        if step.converges:
            pending = replace(record, requested_at=_now())
            step.write_ahead(self.ctx)
            if self.ctx.journal is not None:
                self.ctx.journal.record(pending)   # a crash shows what this run asked for
            record.requested_at = pending.requested_at
        elif self.ctx.journal is not None:
            self.ctx.journal.ensure_saved()        # the run's begin, before its first change
        self.ctx.change_starting()
        try:
            record.detail = step.apply(self.ctx)
            record.outcome = "done"
        except step_errors() as exc:
            if isinstance(exc, JournalUnavailableError) or not step.converges:
                raise
            # The request may have been applied with its answer lost: read the state again.
            after = self._recheck(step)
            if after is None or after.kind != "done":
                raise
            record.outcome = "done"
            record.detail = (f"{after.sentence} (the answer to the request was lost: "
                             f"{type(exc).__name__}; the state read afterwards shows it done)")

    def _recheck(self, step: Step[C]) -> Verdict | None:
        try:
            return step.check(self.ctx)
        except step_errors():
            return None

    def _attribute(self, record: StepRecord, earlier: dict[str, Any] | None) -> StepRecord:
        """On --resume, a step found done is this run's doing when the journal shows this run
        asked for it (its record is done, or pending/failed with ``requested_at``)."""
        if record.outcome != "skipped" or earlier is None:
            return record
        if earlier.get("outcome") == "done":
            return StepRecord(name=record.name, title=record.title, outcome="done",
                              started_at=earlier.get("started_at"),
                              ended_at=earlier.get("ended_at"), seconds=earlier.get("seconds"),
                              detail=f"{earlier.get('detail', '')} (confirmed on resume)",
                              best_effort=record.best_effort,
                              requested_at=earlier.get("requested_at"))
        requested = earlier.get("requested_at")
        if not requested:
            return record
        how = ("before it stopped" if earlier.get("outcome") == "pending" else
               f"and recorded it {earlier.get('outcome')} "
               f"({str(earlier.get('detail', ''))[:80]})")
        # Started before the stop; the seconds are this run's confirmation only.
        return StepRecord(name=record.name, title=record.title, outcome="done",
                          started_at=earlier.get("started_at"), ended_at=record.ended_at,
                          seconds=record.seconds,
                          detail=f"{record.detail}: requested by this run at {requested} "
                                 f"{how}; confirmed done on resume",
                          best_effort=record.best_effort, requested_at=requested)
