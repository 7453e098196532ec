"""The operation engine: what every command that changes infrastructure or data gets for free.

failover.py is its first client (:mod:`caresync_dr.failover.operation`); breach response,
point-in-time restore, switchover and failback are built on it, never on copies (decision D6).
A client writes *steps* and a *plan*; the engine gives it:

- a **lock** (:mod:`.lock`): one SSM parameter created atomically and held as a lease; a dead
  holder's lock goes stale after 3 missed heartbeats and the next run takes it over, saying so;
- a **journal** (:mod:`.journal`): the run's progress, in SSM and in a local copy, written
  ahead of every change (``requested_at``), so ``--resume`` continues where a crash stopped and
  a step found done is attributed to the run that asked for it (who did what: the lock holder
  and the journal's ``operators`` name user@host);
- a **step runner** (:mod:`.runner`): each step's read-only ``check`` then its ``apply``, one
  sentence each, timestamped progress lines, stages side by side, best-effort steps that never
  stop the run, bounded waits (:mod:`.polling`);
- a **preflight** (:mod:`.checks`): every resource a step declares (``touches``) is read before
  the first change; a missing one refuses the run (exit 3, nothing changed);
- a **confirmation** (type the stack name) unless ``--yes``, and ``--check`` / ``--dry-run``
  that provably change nothing: an :class:`ApiCallRecorder` classifies every AWS call and
  blocks any change before it is sent (:mod:`.recorder`); the report lists the calls;
- a **report on every exit** (JSON at ``--report``, a Markdown incident timeline beside it and,
  once anything may have changed, both under ``incidents/<run id>`` in the site's bucket);
- **signals**: SIGTERM/SIGHUP end a run like Ctrl-C (journal, lock and report settled), with
  :func:`caresync_dr.cli.run_main`;
- a **notification hook** (:mod:`.hooks`): incident opened, phase started/finished, resolved or
  failed, with the run id and facts; best effort, on a thread of its own, no-op by default.

Worked example: a two-step operation (``tests/operations/test_toy_operation.py`` runs it)::

    class ToyContext(RunContext):                 # the run's state: clients, inputs
        def __init__(self, ssm, s3, bucket):
            super().__init__()
            self.ssm, self.s3, self.bucket = ssm, s3, bucket

    class Parameter:                               # a resource the preflight reads first
        label = "toy parameter"
        key = ("parameter", "/toy/mode")
        def __init__(self, ctx): self.ctx = ctx
        def read(self) -> Found:
            there = ssm.read_parameter(self.ctx.ssm, "/toy/mode") is not None
            return Found(there, "/toy/mode exists" if there else "/toy/mode not found")

    class SetMode(Step[ToyContext]):
        name, title, expected_seconds = "set-mode", "Put the site in maintenance mode", 1
        marks_done = True                          # all marks_done steps done: nothing to do
        def touches(self, ctx): return (Parameter(ctx),)
        def check(self, ctx) -> Verdict:           # reads only; says what it would do
            if ssm.read_parameter(ctx.ssm, "/toy/mode") == "maintenance":
                return done("/toy/mode is already maintenance")
            return run("would set /toy/mode to maintenance")
        def apply(self, ctx) -> str:               # changes; one sentence
            ssm.put_parameter(ctx.ssm, "/toy/mode", "maintenance")
            return "/toy/mode = maintenance"

    class Announce(Step[ToyContext]): ...          # the same shape: check, apply

    class Maintenance(Operation[ToyContext]):
        name = "maintenance"
        def plan(self):
            return (Stage((SetMode(),)), Stage((Announce(),)))

    books = Bookkeeping(ssm=ssm_client, lock_parameter="/toy/lock",
                        journal_parameter="/toy/journal", journal_file=Path("journal.json"),
                        incident_bucket=bucket, incident_s3=lambda: s3_client)
    options = EngineOptions(mode="run", stack="dr", yes=True, report=Path("r.json"))
    code = Maintenance(ctx, options, books, session=session).execute()

How it is resumed: each step's ``check`` re-reads real state, so a rerun skips what is done.
When a run stops part-way (exit 1: a required step failed, Ctrl-C, a lost lock), its journal
stays ``failed``/``interrupted``; a plain rerun is refused (exit 3, "continue with --resume")
and ``--resume`` continues that run under its run id, its start time (the RTO clock) and facts.
A step's ``apply`` should :meth:`RunContext.fact` (``save=True``) anything a resumed run must
know *before* asking for a change whose answer may be lost.

Exit codes and errors are the commands' (:mod:`caresync_dr.cli`): ``execute`` returns 0 or
raises a :class:`~caresync_dr.cli.CommandError` carrying 1-5; ``run_main`` turns it into one
line. See ``docs/operations-engine.md``.
"""

from caresync_dr.operations import ssm
from caresync_dr.operations.checks import Check, guard, refusals, render_table, resource_checks
from caresync_dr.operations.context import RunContext, new_run_id
from caresync_dr.operations.engine import Operation
from caresync_dr.operations.errors import StepFailedError, WaitTimeoutError
from caresync_dr.operations.hooks import NoHooks, OperationEvent, OperationHooks
from caresync_dr.operations.journal import Journal, JournalUnavailableError, StepRecord
from caresync_dr.operations.lock import LeaseLock, LockHolder
from caresync_dr.operations.polling import PollPolicy, wait_until
from caresync_dr.operations.recorder import ApiCallRecorder, MutationBlockedError, classify
from caresync_dr.operations.run_setup import (
    Bookkeeping,
    Ending,
    EngineOptions,
    ReportFile,
    ReportTarget,
)
from caresync_dr.operations.steps import (
    Found,
    Stage,
    Step,
    Touched,
    Verdict,
    all_steps,
    blocked,
    critical_path_seconds,
    done,
    run,
)

__all__ = [
    "ApiCallRecorder",
    "Bookkeeping",
    "Check",
    "Ending",
    "EngineOptions",
    "Found",
    "Journal",
    "JournalUnavailableError",
    "LeaseLock",
    "LockHolder",
    "MutationBlockedError",
    "NoHooks",
    "Operation",
    "OperationEvent",
    "OperationHooks",
    "PollPolicy",
    "ReportFile",
    "ReportTarget",
    "RunContext",
    "Stage",
    "Step",
    "StepFailedError",
    "StepRecord",
    "Touched",
    "Verdict",
    "WaitTimeoutError",
    "all_steps",
    "blocked",
    "classify",
    "critical_path_seconds",
    "done",
    "guard",
    "new_run_id",
    "refusals",
    "render_table",
    "resource_checks",
    "run",
    "ssm",
    "wait_until",
]
