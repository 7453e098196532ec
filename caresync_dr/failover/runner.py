"""Runs a plan: checks then applies each step, times it, journals it, says what happened.

Required steps that fail stop the run (exit FAILED, resumable); best-effort steps that fail are
recorded as "not confirmed" and the run goes on. Background stages are joined at the end.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime

from botocore.exceptions import BotoCoreError, ClientError
from requests import RequestException

from caresync_dr.failover.context import FailoverContext
from caresync_dr.failover.errors import FailoverError, StepFailedError
from caresync_dr.failover.journal import StepRecord
from caresync_dr.failover.plan import Stage
from caresync_dr.failover.steps import Step

log = logging.getLogger(__name__)
# What a step may raise that we record as its failure (anything else is a bug and propagates).
STEP_ERRORS = (ClientError, BotoCoreError, RequestException, FailoverError)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Runner:
    def __init__(self, ctx: FailoverContext, plan: tuple[Stage, ...]) -> None:
        self.ctx = ctx
        self.plan = plan
        self.records: dict[str, StepRecord] = {}
        self._background: list[Future[StepRecord]] = []
        self._pool = ThreadPoolExecutor(max_workers=6, thread_name_prefix="failover")

    def run(self) -> None:
        try:
            for stage in self.plan:
                futures = [self._pool.submit(self.run_step, step) for step in stage.steps]
                if stage.background:
                    self._background.extend(futures)
                    continue
                failed = [r for r in (f.result() for f in futures)
                          if r.outcome == "failed" and not r.best_effort]
                if failed:
                    raise StepFailedError(f"step {failed[0].name} failed: {failed[0].detail}")
        except KeyboardInterrupt:
            self.ctx.stop.set()
            raise
        finally:
            self.join_background()
            self._pool.shutdown(wait=True)

    def join_background(self) -> None:
        for future in self._background:
            future.result()
        self._background.clear()

    def run_step(self, step: Step) -> StepRecord:
        record = StepRecord(name=step.name, title=step.title, outcome="pending",
                            started_at=_now(), ended_at=None, seconds=None, detail="",
                            best_effort=step.best_effort)
        started = time.monotonic()
        log.info("step %s: %s", step.name, step.title)
        try:
            verdict = step.check(self.ctx)
            if verdict.kind == "done":
                record.outcome, record.detail = "skipped", verdict.sentence
            elif verdict.kind == "blocked":
                record.outcome = "not confirmed" if step.best_effort else "failed"
                record.detail = verdict.sentence
            else:
                if self.ctx.journal is not None and step.converges:
                    self.ctx.journal.record(record)   # "pending": a crash shows what was under way
                record.detail = step.apply(self.ctx)
                record.outcome = "done"
        except STEP_ERRORS as exc:
            record.outcome = "not confirmed" if step.best_effort else "failed"
            record.detail = f"{type(exc).__name__}: {exc}"
        record.ended_at = _now()
        record.seconds = round(time.monotonic() - started, 3)
        record = self._keep_earlier(record)
        self.records[step.name] = record
        if self.ctx.journal is not None:
            self.ctx.journal.record(record)
        level = logging.WARNING if record.outcome in ("failed", "not confirmed") else logging.INFO
        log.log(level, "step %s %s in %.2f s: %s", step.name, record.outcome, record.seconds,
                record.detail)
        return record

    def _keep_earlier(self, record: StepRecord) -> StepRecord:
        """On --resume, a step found done keeps the timing of the run that did it."""
        if record.outcome != "skipped" or self.ctx.journal is None:
            return record
        earlier = self.ctx.journal.step(record.name)
        if earlier is None or earlier.get("outcome") != "done":
            return record
        return StepRecord(name=record.name, title=record.title, outcome="done",
                          started_at=earlier.get("started_at"), ended_at=earlier.get("ended_at"),
                          seconds=earlier.get("seconds"),
                          detail=f"{earlier.get('detail', '')} (confirmed on resume)",
                          best_effort=record.best_effort)
