"""The operation engine: one way to run a plan of steps safely, for every command that changes
infrastructure or data (failover, breach response, point-in-time restore, switchover...).

Every way out of :meth:`Operation.execute` -- success, refusal, a failed step, an AWS error,
Ctrl-C, SIGTERM/SIGHUP, even a bug -- leaves a truthful record: the report (``--report``, and,
once a change may have been made, the incident timeline in the site's bucket under
``incidents/``) is written in one ``finally`` from what the run knows, and the journal says how
the run ended. The lock is released on every exit this process lives through; when that fails,
or the process is killed, the lock goes stale and the next run takes it over (``lock.py``).

What a later run does, from the journal (SSM) and the lock it finds:

=====================  ===============  =====================================================
journal                lock             plain run / ``--resume``
=====================  ===============  =====================================================
none or completed      none             already done: nothing to do; else a new run
none or completed      live             exit 4, the holder named (it is running)
none or completed      stale            taken over (reported); a new run
unfinished (run R)     live             exit 4 / exit 4 ("still alive")
unfinished (run R)     none or stale    exit 3 "continue with --resume" / R resumed
=====================  ===============  =====================================================

``--check`` and ``--dry-run`` read only: an :class:`ApiCallRecorder` with ``block=True`` sees
every AWS call, so a change is refused before it is sent, and the report lists every call made
(``awsCalls``). botocore copies a session's event handlers into each client when the client is
made, so the recorder must be installed on the session *before* the operation's clients are
made: pass ``recorder=`` installed first thing (as failover's command does, before it even
reads the inventory), or pass ``session=`` and make clients lazily, after the engine installs
one.
"""

from __future__ import annotations

import logging
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TextIO, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.cli.errors import (
    CommandError,
    ExitCode,
    LockedError,
    NotReadyError,
    RefusedError,
    UsageError,
)
from caresync_dr.cli.reporting import writable_file, write_text_atomic
from caresync_dr.cli.signals import Interrupted
from caresync_dr.operations import timeline
from caresync_dr.operations.checks import Check, refusals, render_table, resource_checks
from caresync_dr.operations.context import RunContext
from caresync_dr.operations.errors import StepFailedError
from caresync_dr.operations.hooks import (
    EventKind,
    HookDispatcher,
    NoHooks,
    OperationEvent,
    OperationHooks,
)
from caresync_dr.operations.journal import Journal, JournalUnavailableError, StepRecord
from caresync_dr.operations.lock import LeaseLock, LockHolder
from caresync_dr.operations.pools import ReadPool
from caresync_dr.operations.recorder import ApiCallRecorder
from caresync_dr.operations.run_setup import (
    Bookkeeping,
    Ending,
    EngineOptions,
    LockState,
    Mode,
    ReportFile,
    ReportTarget,
    operator_name,
)
from caresync_dr.operations.runner import Runner, StepEvent
from caresync_dr.operations.steps import Stage, Step, all_steps, hurries
from caresync_dr.operations.views import confirm, plan_rows, render_plan

if TYPE_CHECKING:
    from caresync_dr.aws import AwsSession

# The setup types live in run_setup.py; importing them from here keeps working.
__all__ = [
    "Bookkeeping",
    "Ending",
    "EngineOptions",
    "LockState",
    "Mode",
    "Operation",
    "ReportFile",
    "ReportTarget",
    "operator_name",
]
log = logging.getLogger(__name__)
C = TypeVar("C", bound=RunContext)
UNFINISHED = ("running", "failed", "interrupted")   # journal states --resume continues
OUTCOMES = {ExitCode.OK: "completed", ExitCode.FAILED: "failed", ExitCode.USAGE: "usage error",
            ExitCode.REFUSED: "refused", ExitCode.LOCKED: "locked"}


class Operation(ABC, Generic[C]):
    """One run of an operation over context ``C``. A client subclasses it and writes
    :meth:`plan` (its steps); everything else has a default it may override."""

    name: ClassVar[str]                      # "failover": the lock's, messages', threads' word
    done_outcome: ClassVar[str] = "already done"   # the outcome when nothing is left to do

    def __init__(self, ctx: C, options: EngineOptions, books: Bookkeeping, *,
                 out: TextIO | None = None, stdin: TextIO | None = None,
                 session: AwsSession | None = None, hooks: OperationHooks | None = None,
                 report: ReportTarget | None = None,
                 recorder: ApiCallRecorder | None = None) -> None:
        self.ctx = ctx
        self.options = options
        self.books = books
        self.out = out or sys.stdout
        self.stdin = stdin or sys.stdin
        self.session = session
        self.recorder = recorder
        self.report_target = report or ReportFile(options.report)
        self.journal = Journal(books.ssm, books.journal_parameter, books.journal_file)
        self.lock = LeaseLock(books.ssm, books.lock_parameter, self.name)
        self.lock_state = LockState(books.lock_parameter)
        self.hooks = HookDispatcher(hooks or NoHooks(), hold=ctx.critical_sent)
        self.me: LockHolder | None = None
        self.runner: Runner[C] | None = None
        self.began = False          # the journal was (maybe) written: changes may follow

    # --- what a client writes -----------------------------------------------------------------
    @abstractmethod
    def plan(self) -> tuple[Stage[C], ...]:
        """The steps, in stages."""

    def title(self) -> str:
        """What this run is, for the plan's header, the timeline and notifications."""
        return f"{self.name}, stack {self.options.stack}"

    def checks(self, daily: bool) -> list[Check]:
        """Readiness rows: ``daily`` for ``--check``, else the preflight of a real run and a
        dry run. Default: every resource the steps declare (:meth:`Step.touches`)."""
        return resource_checks(self.plan(), self.ctx)

    def question(self) -> str:
        """The confirmation question (the operator then types the stack name)."""
        return f"This runs {self.title()} ({len(all_steps(self.plan()))} steps)."

    def prefetch(self, pool: Executor) -> dict[str, Future[Any]]:
        """Start, on ``pool``, reads :meth:`already_done` will make (keyed for the steps'
        checks to take from ``ctx.pre_lock_reads``): they then wait on the network beside the
        journal's and the lock's. Default: none."""
        del pool
        return {}

    def already_done(self) -> str | None:
        """A sentence when every step marked ``marks_done`` finds its target state (a rerun
        then has nothing to do), else None. Last step first: the likeliest not done yet."""
        sentences = []
        marked = [s for s in reversed(all_steps(self.plan())) if s.marks_done]
        if not marked:
            return None
        for step in marked:
            try:
                verdict = step.check(self.ctx)
            except (ClientError, BotoCoreError):
                return None
            if verdict.kind != "done":
                return None
            sentences.append(verdict.sentence)
        return "; ".join(reversed(sentences))

    def identity(self) -> dict[str, Any]:
        """Fields naming the run in every report and in the journal (e.g. the scope)."""
        return {"stack": self.options.stack}

    def refuse_resume(self, previous: dict[str, Any]) -> str | None:
        """Why ``--resume`` may not continue ``previous`` (an unfinished journal), or None."""
        return None

    def adopt(self, previous: dict[str, Any]) -> None:
        """Before the lock: take what a previous run of the journal left that this run needs."""

    def supersede(self, previous: dict[str, Any]) -> str | None:
        """A run without ``--resume`` meets the unfinished ``previous`` (its process gone): a
        sentence when a new run may replace it (what it changed leaves nothing a new run must
        continue), else None and the operator is told to ``--resume`` it. Default: None."""
        del previous
        return None

    def journal_fields(self) -> dict[str, Any]:
        """Extra fields of a new journal."""
        return {}

    def completed_message(self) -> str:
        return f"{self.name} completed"

    def completion_lines(self) -> list[str]:
        """Printed after a completed run's report is written."""
        return []

    def follow_up_lines(self) -> list[str]:
        """Printed when there was nothing to do."""
        return []

    def build_report(self, records: dict[str, StepRecord], ending: Ending) -> dict[str, Any]:
        """The JSON report of a real run. An override keeps these keys and adds its own."""
        ctx = self.ctx
        return {"operation": self.name, "title": self.title(), "runId": ctx.run_id,
                **self.identity(), "outcome": ending.outcome, "exitCode": int(ending.code),
                "message": ending.message, "operator": operator_name(),
                "startedAt": ctx.started_at.isoformat(),
                "endedAt": datetime.now(UTC).isoformat(), "facts": ctx.facts,
                "steps": [asdict(r) for r in records.values()],
                "timeline": self.timeline_url()}

    def render_timeline(self, report: dict[str, Any]) -> str:
        return timeline.render_timeline(report)

    # --- shared by the modes ------------------------------------------------------------------
    def timeline_url(self) -> str:
        return (f"s3://{self.books.incident_bucket}/{self.books.incident_prefix}"
                f"{self.ctx.run_id}.md")

    def print(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def execute(self) -> int:
        """Run the mode asked for; returns the exit code or raises a :class:`CommandError`."""
        if self.options.mode == "check":
            return self._read_only(self.check)
        if self.options.mode == "dry-run":
            return self._read_only(self.dry_run)
        return self.run()

    def _read_only(self, mode: Callable[[ApiCallRecorder], int]) -> int:
        installed = self.recorder is None and self.session is not None
        recorder = self.recorder or ApiCallRecorder()
        if installed and self.session is not None:
            recorder.install(self.session)
        recorder.block = True
        try:
            return mode(recorder)
        finally:
            if installed:
                recorder.uninstall()

    # --- --check and --dry-run ---------------------------------------------------------------
    def check(self, recorder: ApiCallRecorder) -> int:
        checks = self.checks(daily=True)
        self.print(render_table(checks))
        failed = [c for c in checks if not c.ok]
        if self.options.report is not None:
            self.report_target.write_report({
                "mode": "check", **self.identity(), "ready": not failed,
                "exitCode": int(ExitCode.NOT_READY if failed else ExitCode.OK),
                "checks": [asdict(c) for c in checks], "awsCalls": recorder.as_report()})
        if failed:
            raise NotReadyError("not ready: " + "; ".join(f"{c.name}: {c.detail}"
                                                          for c in failed))
        self.print(f"ready: a {self.name} would succeed now")
        return ExitCode.OK

    def dry_run(self, recorder: ApiCallRecorder) -> int:
        if self.options.resume:
            # Judged as the real run would: resuming only an unfinished journal (a read).
            try:
                previous = self.journal.load()
            except (ClientError, BotoCoreError) as exc:
                log.warning("cannot read the journal %s: %s", self.books.journal_parameter, exc)
                previous = None
            if previous is not None and previous.get("status") in UNFINISHED:
                self.ctx.resumed_run = str(previous.get("runId"))
        checks = self.checks(daily=False)
        self.print(render_table(checks))
        rows = plan_rows(self.plan(), self.ctx, live=True)
        self.print(render_plan(self.title(), rows))
        refused = refusals(checks)
        if self.options.report is not None:
            self.report_target.write_report({
                "mode": "dry-run", **self.identity(), "wouldProceed": not refused,
                "exitCode": int(ExitCode.REFUSED if refused else ExitCode.OK),
                "checks": [asdict(c) for c in checks], "plan": rows,
                "awsCalls": recorder.as_report()})
        if refused:
            raise RefusedError("a real run would refuse: " + "; ".join(
                f"{c.name}: {c.detail}" for c in refused))
        self.print("dry run: nothing was changed; a real run would proceed")
        return ExitCode.OK

    # --- a real run: the one way out --------------------------------------------------------
    def run(self) -> int:
        ending = Ending()
        try:
            ending.code = self._decide_and_run(ending)
            ending.handled = True
            return ending.code
        except CommandError as exc:
            self._end(ending, exc, "failed")
            raise
        except (ClientError, BotoCoreError) as exc:
            converted = self._aws_failure(exc)
            self._end(ending, converted, "failed")
            raise converted from exc
        except KeyboardInterrupt as exc:
            converted = self._interrupted(exc)
            self._end(ending, converted, "interrupted")
            raise converted from exc
        except Exception as exc:       # a bug: say so in the report, then let it propagate
            ending.handled = True
            ending.outcome, ending.message = "crashed", f"{type(exc).__name__}: {exc}"
            if self.began:
                self._settle_journal("failed", error=ending.message)
            raise
        finally:
            self.ctx.critical_sent.set()     # nothing waits for it any more
            if self.began and ending.handled:
                self._emit("resolved" if ending.code == ExitCode.OK else "failed",
                           ending.message, outcome=ending.outcome)
                self._drain_hooks_into_journal()
            self.lock.stop_heartbeat()
            if self.lock_state.held and ending.handled:
                self._release()
            self.hooks.drain()
            self._write_report(ending)
            for line in ending.lines:
                self.print(line)

    def _end(self, ending: Ending, exc: CommandError, status: str) -> None:
        ending.handled = True
        ending.code, ending.message = exc.exit_code, str(exc)
        ending.outcome = OUTCOMES.get(exc.exit_code, "failed")
        if self.began:
            self._settle_journal(status, error=ending.message)

    def _aws_failure(self, exc: ClientError | BotoCoreError) -> CommandError:
        if not self.began:
            return RefusedError(f"AWS call failed before any change: {exc}. Nothing was changed")
        return StepFailedError(f"AWS call failed: {exc}; continue with --resume")

    def _interrupted(self, exc: KeyboardInterrupt) -> CommandError:
        why = f"stopped by {exc.signal_name}" if isinstance(exc, Interrupted) else "interrupted"
        if not self.began:
            return RefusedError(f"{why} before any change: nothing was changed")
        return StepFailedError(f"{why} (the run was interrupted); the journal says where it "
                               "was: continue with --resume")

    def _settle_journal(self, status: str, **extra: Any) -> None:
        """The journal says how the run ended: SSM if it answers, the local copy always."""
        if not self.journal.data:
            return
        try:
            self.journal.finish(status, **extra)
        except JournalUnavailableError as exc:
            log.warning("%s", exc)
            self.journal.save_local(status, **extra)

    def _drain_hooks_into_journal(self) -> None:
        """Wait (bounded) for the hooks, then write the journal once more if they recorded
        facts after its last write: the notifier keeps the incident's state (opened, the status
        page incident's id) there from its own thread, and a ``--resume`` that did not find it
        would post "started" again. Under the lock, with its heartbeat still beating: after the
        release, a next run may already be writing this journal. A second Ctrl-C (or signal)
        ends the wait, not the ending: the lock is still released and the report written."""
        try:
            self.hooks.drain()
        except KeyboardInterrupt:
            log.warning("interrupted again: not waiting for the notifications any longer")
        if self.lock.lost:
            return
        try:
            self.journal.catch_up()
        except JournalUnavailableError as exc:
            log.warning("%s", exc)

    def _release(self) -> None:
        assert self.me is not None
        result = self.lock.release(self.me)
        self.lock_state.released = result.released
        self.lock_state.release_error = result.error

    # --- decisions before the lock ----------------------------------------------------------
    def _decide_and_run(self, ending: Ending) -> ExitCode:
        options = self.options
        if self.books.journal_file is not None:
            # Checked before anything is read or changed, like --report: a run whose local
            # journal cannot be written says "the local copy has the progress" when SSM fails,
            # and mkdir of its parents may take the very path the report is to be written to.
            journal = writable_file("--journal-file", self.books.journal_file)
            report = options.report
            if report is not None and (journal == report or report in journal.parents):
                raise UsageError(f"--journal-file {journal} is the --report path or inside "
                                 "it; give them separate places")
        # The journal, the lock and the "already done?" state are independent reads (each
        # waits on the network): the lock's and the state's are made beside the journal's, and
        # judged where they always were.
        with ReadPool(max_workers=2, thread_name_prefix="pre-lock-read") as pool:
            holder_read = pool.submit(self.lock.holder)
            self.ctx.pre_lock_reads = self.prefetch(pool)
            previous = self.journal.load()
            unfinished = previous is not None and previous.get("status") in UNFINISHED
            if unfinished and options.resume and previous is not None:
                why = self.refuse_resume(previous)
                if why is not None:
                    raise UsageError(why)
            if previous is not None:
                self.adopt(previous)
            holder = holder_read.result()
        if not unfinished:
            done = self.already_done()
            if done is not None:
                self._remove_stale(holder)
                ending.outcome, ending.message = self.done_outcome, done
                self.print(f"{self.done_outcome}: {done}. Nothing to do.")
                for line in self.follow_up_lines():
                    self.print(line)
                return ExitCode.OK
            if options.resume:
                log.info("nothing to resume (no unfinished run in %s); starting a new run",
                         self.books.journal_parameter)
        elif not options.resume:
            assert previous is not None
            run_id, started = previous.get("runId", "?"), previous.get("startedAt", "?")
            if holder is not None and not holder.is_stale():
                raise LockedError(f"another {self.name} run holds the lock {self.lock.name}: "
                                  f"{holder.describe()}; if that run crashed, continue it with "
                                  "--resume once its heartbeat is stale")
            gone = (f"; its lock is stale ({holder.describe()}): that process is gone"
                    if holder is not None else "")
            replaced = self.supersede(previous)
            if replaced is None:
                raise RefusedError(f"run {run_id} (started {started}) did not finish (status "
                                   f"{previous.get('status')}){gone}; continue it with "
                                   "--resume. Nothing was changed")
            log.warning("run %s did not finish; this new run replaces it: %s", run_id, replaced)
            self.ctx.facts["superseded"] = {"runId": run_id, "why": replaced}
            unfinished = False
        self.ctx.pre_lock_reads = {}       # under the lock, every read is made afresh
        resuming = str(previous["runId"]) if unfinished and previous else None
        self.ctx.resumed_run = resuming
        if resuming:
            self.ctx.run_id = resuming
        self.me = LockHolder.me(self.ctx.run_id, options.heartbeat_seconds)
        taken = self.lock.acquire(self.me, resuming_run=resuming)
        self.lock_state.held = True
        if taken is not None:
            self.lock_state.taken_over = taken.summary()
            self.ctx.facts["lock_taken_over"] = taken.summary()
        self.lock.start_heartbeat(self.me, on_lost=self.ctx.stop.set)  # waits end at next poll
        try:
            return self._locked_run(previous if resuming else None, ending)
        except CommandError as exc:
            if self.lock.lost:
                raise StepFailedError(f"this run lost its lock ({self.lock.lost_reason}): "
                                      f"{exc}") from exc
            raise

    def _remove_stale(self, holder: LockHolder | None) -> None:
        """Nothing to do, and a dead run's lock is still there: remove it, so the next run
        and ``--check`` do not have to wait for anything."""
        if holder is None or not holder.is_stale():
            return
        result = self.lock.remove_stale(holder)
        if result.released:
            log.info("removed the stale lock %s of run %s (%s)", self.lock.name,
                     holder.run_id, holder.describe())
            self.lock_state.removed_stale = holder.summary()

    # --- under the lock -----------------------------------------------------------------------
    def _locked_run(self, resumed: dict[str, Any] | None, ending: Ending) -> ExitCode:
        ctx = self.ctx
        checks = self.checks(daily=False)
        self.print(render_table(checks))
        refused = refusals(checks)
        if refused:
            raise RefusedError("preflight refused: " + "; ".join(
                f"{c.name}: {c.detail}" for c in refused) + ". Nothing was changed")
        for c in checks:
            if c.overridden:
                log.warning("--force: %s failed (%s); going on as asked", c.name, c.detail)
        plan = self.plan()
        self.print(render_plan(self.title(), plan_rows(plan, ctx, live=False)))
        if not self.options.yes:
            confirm(self.question(), self.options.stack, self.stdin, self.out)
        if resumed is not None:
            ctx.started_at = datetime.fromisoformat(str(resumed["startedAt"]))
            ctx.facts.update(resumed.get("facts") or {})
            data = dict(resumed)
            data["status"] = "running"
            data.setdefault("resumedAt", []).append(datetime.now().astimezone().isoformat())
        else:
            data = {"runId": ctx.run_id, **self.identity(), "status": "running",
                    "startedAt": ctx.started_at.isoformat(), **self.journal_fields()}
        self.began = True
        data.setdefault("operators", []).append(operator_name())
        # A run that hurries to its critical request saves its begin with that step's
        # write-ahead record (one SSM round trip fewer before the request); the runner saves
        # it before any change in any case (Journal.ensure_saved), and every later write and
        # every ending carries it.
        hurry = hurries(plan)
        self.journal.begin(data, save=not hurry)
        for key, value in ctx.facts.items():
            self.journal.fact(key, value)
        ctx.journal = self.journal
        self._emit("incident-opened", f"{self.title()} started"
                   + (f" (resuming run {ctx.run_id})" if resumed is not None else ""))
        if not hurry:
            ctx.critical_sent.set()         # nothing to hurry to: nothing waits
        self.runner = Runner(ctx, plan, name=self.name, on_step=self._on_step)
        self.runner.run()
        self.journal.finish("completed")
        ending.code, ending.outcome = ExitCode.OK, "completed"
        ending.message = self.completed_message()
        ending.lines += self.completion_lines()
        return ExitCode.OK

    # --- notifications ------------------------------------------------------------------------
    def _emit(self, kind: EventKind, sentence: str, **extra: Any) -> None:
        self.hooks.emit(OperationEvent(
            kind=kind, operation=self.name, run_id=self.ctx.run_id, stack=self.options.stack,
            title=self.title(), at=datetime.now(UTC), sentence=sentence,
            facts=dict(self.ctx.facts), **extra))

    def _on_step(self, event: StepEvent, step: Step[Any], record: StepRecord) -> None:
        if event == "started":
            self._emit("phase-started", step.title, phase=step.name, phase_title=step.title,
                       best_effort=step.best_effort)
        else:
            self._emit("phase-finished", record.detail, phase=step.name,
                       phase_title=step.title, outcome=record.outcome,
                       best_effort=step.best_effort)

    # --- the record -----------------------------------------------------------------------------
    def _write_report(self, ending: Ending) -> None:
        """Never raises: the report is what is left when everything else failed."""
        if self.lock_state.held and self.lock_state.released is False:
            ending.lines.append(
                f"\nWARNING: the lock {self.lock.name} could not be released "
                f"({self.lock_state.release_error}); it goes stale "
                f"{self.me.stale_after if self.me else 0:.0f} s after this run's last "
                "heartbeat, and the next run takes it over.")
        left = self.runner.still_running if self.runner is not None else []
        if left:
            ending.lines.append(
                f"\nWARNING: step(s) {', '.join(left)} were still running when the run ended "
                "and were left behind; their outcome is unknown (the report lists them as "
                "pending).")
        try:
            records = self.runner.records if self.runner is not None else {}
            rep = self.build_report(records, ending)
            rep["lock"] = self.lock_state.as_report()
            rep["stillRunning"] = list(left)
            rep["notifications"] = self.hooks.as_report()
            if self.recorder is not None:
                rep["awsCalls"] = self.recorder.as_report()
            markdown = self.render_timeline(rep)
            # The bucket keeps the timeline of every run that may have changed something; a
            # refusal before any change is only written locally.
            uploaded = (timeline.upload_timeline(
                self.books.incident_s3, self.books.incident_bucket, self.ctx.run_id, rep,
                markdown, prefix=self.books.incident_prefix) if self.began else None)
            rep["timelineUploaded"] = uploaded is not None
            path = self.options.report
            if path is not None:
                self.report_target.write_report(rep)
                local = path.with_suffix(".md")
                write_text_atomic(local, markdown)
                log.info("report %s, timeline %s", path, local)
            if uploaded:
                log.info("incident timeline uploaded to %s", uploaded)
        except Exception as exc:
            log.error("could not write the report: %s: %s", type(exc).__name__, exc)
