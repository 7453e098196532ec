"""A toy two-step operation built only from the engine's public API (``caresync_dr.operations``)
gets the lock, the journal, ``--resume``, the dry-run proof, the report and timeline, and the
notification hook for free. This file is also the worked example of docs/operations-engine.md.

AWS is moto (in-process); its SSM and S3 behave as AWS does for the calls used here
(PutParameter with Overwrite=False refuses an existing name; GetParameter of a missing name is
ParameterNotFound).
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import boto3
import pytest
from moto import mock_aws

from caresync_dr.cli import ExitCode, LockedError, RefusedError
from caresync_dr.operations import (
    ApiCallRecorder,
    Bookkeeping,
    EngineOptions,
    Found,
    LockHolder,
    MutationBlockedError,
    Operation,
    OperationEvent,
    RunContext,
    Stage,
    Step,
    StepFailedError,
    Verdict,
    done,
    run,
    ssm,
)
from caresync_dr.operations import runner as runner_module

Mode = Literal["run", "check", "dry-run"]
REGION = "us-west-2"
BUCKET = "toy-incidents"
MODE, NOTICE = "/toy/mode", "notices/maintenance.txt"


class ToyContext(RunContext):
    def __init__(self, session: boto3.Session) -> None:
        super().__init__()
        self.ssm = session.client("ssm", region_name=REGION)
        self.s3 = session.client("s3", region_name=REGION)
        self.fail_announce = 0          # how many more times Announce.apply fails
        self.sneaky_check = False       # a buggy check that writes (the recorder must stop it)


@dataclass(frozen=True)
class ModeParameter:
    """The resource SetMode changes: read by the preflight before the first change."""

    ctx: ToyContext
    label: str = "toy mode parameter"
    key: tuple[str, str] = ("parameter", MODE)

    def read(self) -> Found:
        value = ssm.read_parameter(self.ctx.ssm, MODE)
        return Found(value is not None, f"{MODE} = {value}" if value else f"{MODE} not found")


class SetMode(Step[ToyContext]):
    name = "set-mode"
    title = "Put the site in maintenance mode"
    expected_seconds = 1
    marks_done = True

    def touches(self, ctx: ToyContext) -> tuple[ModeParameter, ...]:
        return (ModeParameter(ctx),)

    def check(self, ctx: ToyContext) -> Verdict:
        if ctx.sneaky_check:
            ssm.put_parameter(ctx.ssm, "/toy/oops", "written by a check")
        if ssm.read_parameter(ctx.ssm, MODE) == "maintenance":
            return done(f"{MODE} is already maintenance")
        return run(f"would set {MODE} to maintenance")

    def apply(self, ctx: ToyContext) -> str:
        ssm.put_parameter(ctx.ssm, MODE, "maintenance")
        return f"{MODE} = maintenance"


class Announce(Step[ToyContext]):
    name = "announce"
    title = "Publish the maintenance notice"
    expected_seconds = 1
    marks_done = True

    def check(self, ctx: ToyContext) -> Verdict:
        try:
            ctx.s3.head_object(Bucket=BUCKET, Key=NOTICE)
        except ctx.s3.exceptions.ClientError:
            return run(f"would write s3://{BUCKET}/{NOTICE}")
        return done(f"s3://{BUCKET}/{NOTICE} is published")

    def apply(self, ctx: ToyContext) -> str:
        if ctx.fail_announce:
            ctx.fail_announce -= 1
            raise StepFailedError("the notice bucket refused the write")
        ctx.s3.put_object(Bucket=BUCKET, Key=NOTICE, Body=b"down for maintenance")
        return f"wrote s3://{BUCKET}/{NOTICE}"


class Maintenance(Operation[ToyContext]):
    name = "maintenance"

    def plan(self) -> tuple[Stage[ToyContext], ...]:
        return (Stage((SetMode(),)), Stage((Announce(),)))


class Recording:
    """A notifier: the events it was told, in order (an OperationHooks)."""

    def __init__(self) -> None:
        self.events: list[OperationEvent] = []

    def incident_opened(self, event: OperationEvent) -> None:
        self.events.append(event)

    def phase_started(self, event: OperationEvent) -> None:
        self.events.append(event)

    def phase_finished(self, event: OperationEvent) -> None:
        self.events.append(event)

    def resolved(self, event: OperationEvent) -> None:
        self.events.append(event)

    def failed(self, event: OperationEvent) -> None:
        self.events.append(event)
        raise ConnectionError("the pager is down")   # a dead channel changes nothing


@dataclass
class Toy:
    session: boto3.Session
    tmp: Path
    recorder: ApiCallRecorder      # every call of every run (not blocking)
    mode_writes: list[str]         # each PutParameter of /toy/mode that was sent
    current: ApiCallRecorder | None = None

    def books(self, ctx: ToyContext) -> Bookkeeping:
        return Bookkeeping(ssm=ctx.ssm, lock_parameter="/toy/lock",
                           journal_parameter="/toy/journal",
                           journal_file=self.tmp / "journal.json", incident_bucket=BUCKET,
                           incident_s3=lambda: ctx.s3)

    def operation(self, mode: Mode = "run", ctx: ToyContext | None = None,
                  hooks: Recording | None = None, answer: str = "", *, yes: bool = False,
                  resume: bool = False) -> Maintenance:
        # Installed before the context makes its clients (botocore copies a session's
        # handlers into a client when it is made): it sees every call of the operation.
        if self.current is not None:
            self.current.uninstall()
        recorder = self.current = ApiCallRecorder(block=mode != "run").install(self.session)
        ctx = ctx or ToyContext(self.session)
        options = EngineOptions(mode=mode, stack="dr", yes=yes, resume=resume,
                                report=self.tmp / f"{mode}.json", heartbeat_seconds=1.0)
        return Maintenance(ctx, options, self.books(ctx), out=io.StringIO(),
                           stdin=io.StringIO(answer), session=self.session, hooks=hooks,
                           recorder=recorder)

    def report(self, mode: str = "run") -> dict[str, Any]:
        document: dict[str, Any] = json.loads((self.tmp / f"{mode}.json").read_text())
        return document

    def parameter(self, name: str) -> str | None:
        return ssm.read_parameter(self.session.client("ssm", region_name=REGION), name)

    def changes(self, operation: str) -> int:
        return sum(1 for _, o, _, k in self.recorder.calls if k == "change" and o == operation)


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Toy]:
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", REGION)):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        session = boto3.Session()
        s3 = session.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET,
                         CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        ssm.put_parameter(session.client("ssm", region_name=REGION), MODE, "serving")
        recorder = ApiCallRecorder().install(session)
        writes: list[str] = []

        def count(params: dict[str, Any], **_: Any) -> None:
            if params.get("Name") == MODE:
                writes.append(str(params.get("Value")))

        session.events.register("before-parameter-build.ssm.PutParameter", count)
        yield Toy(session, tmp_path, recorder, writes)


def test_a_run_takes_the_lock_journals_reports_and_notifies(toy: Toy) -> None:
    hooks = Recording()
    assert toy.operation(yes=True, hooks=hooks).execute() == ExitCode.OK
    assert toy.parameter(MODE) == "maintenance"
    assert toy.parameter("/toy/lock") is None                      # released
    assert toy.changes("PutParameter") >= 4   # lock create, journal writes, the change itself
    journal = json.loads(toy.parameter("/toy/journal") or "{}")
    assert journal["status"] == "completed" and journal["operators"]
    assert [s["outcome"] for s in journal["steps"]] == ["done", "done"]
    report = toy.report()
    assert report["outcome"] == "completed" and report["exitCode"] == 0
    assert report["lock"]["released"] is True and report["timelineUploaded"] is True
    timeline = (toy.tmp / "run.md").read_text()
    assert "| set-mode | done |" in timeline and "| announce | done |" in timeline
    stored = toy.session.client("s3", region_name=REGION).get_object(
        Bucket=BUCKET, Key=f"incidents/{report['runId']}.md")["Body"].read().decode()
    assert stored == timeline
    kinds = [(e.kind, e.phase) for e in hooks.events]
    assert kinds == [("incident-opened", None), ("phase-started", "set-mode"),
                     ("phase-finished", "set-mode"), ("phase-started", "announce"),
                     ("phase-finished", "announce"), ("resolved", None)]
    assert all(e.run_id == report["runId"] for e in hooks.events)
    assert report["notifications"]["delivered"] == 6
    # A rerun finds every marks_done step done: nothing to do, nothing changed, no incident.
    before = len(toy.recorder.changes)
    assert toy.operation(yes=True).execute() == ExitCode.OK
    assert toy.report()["outcome"] == "already done"
    assert toy.recorder.changes[before:] == []


def test_dry_run_and_check_change_nothing_and_prove_it(toy: Toy) -> None:
    assert toy.operation("dry-run").execute() == ExitCode.OK
    report = toy.report("dry-run")
    assert report["wouldProceed"] is True
    assert [row["sees"] for row in report["plan"]] == ["run", "run"]
    assert report["awsCalls"]["changes"] == 0 and report["awsCalls"]["reads"] > 0
    assert report["awsCalls"]["blocked"] is True
    assert toy.recorder.changes == [] and toy.parameter(MODE) == "serving"
    assert toy.operation("check").execute() == ExitCode.OK
    assert toy.report("check")["ready"] is True


def test_a_check_that_writes_is_blocked_before_it_reaches_aws(toy: Toy) -> None:
    operation = toy.operation("dry-run")
    operation.ctx.sneaky_check = True
    with pytest.raises(MutationBlockedError, match="ssm:PutParameter"):
        operation.execute()
    assert toy.parameter("/toy/oops") is None       # never sent
    assert toy.recorder.changes == ["ssm:PutParameter"]   # tried, recorded, blocked


def test_a_run_that_fails_part_way_is_resumed(toy: Toy) -> None:
    hooks = Recording()
    operation = toy.operation(yes=True, hooks=hooks)
    operation.ctx.fail_announce = 1
    with pytest.raises(StepFailedError, match="--resume"):
        operation.execute()
    failed = toy.report()
    assert failed["outcome"] == "failed" and failed["timelineUploaded"] is True
    assert [s["outcome"] for s in failed["steps"]] == ["done", "failed"]
    assert hooks.events[-1].kind == "failed"
    assert failed["notifications"]["problems"][0]["error"] == "ConnectionError: the pager is down"
    assert toy.parameter("/toy/lock") is None
    # A plain run is refused: the unfinished run must be continued, not restarted.
    with pytest.raises(RefusedError, match="continue it with --resume"):
        toy.operation(yes=True).execute()
    assert toy.operation(yes=True, resume=True).execute() == ExitCode.OK
    resumed = toy.report()
    assert resumed["runId"] == failed["runId"]                    # the same run, continued
    assert resumed["startedAt"] == failed["startedAt"]
    steps = {s["name"]: s for s in resumed["steps"]}
    assert steps["set-mode"]["outcome"] == "done"                  # its change, this run's
    assert "confirmed on resume" in steps["set-mode"]["detail"]
    assert steps["announce"]["outcome"] == "done"
    journal = json.loads(toy.parameter("/toy/journal") or "{}")
    assert journal["status"] == "completed" and len(journal["resumedAt"]) == 1
    # set-mode's change was sent once, by the first invocation: the resume found it done.
    assert toy.mode_writes == ["maintenance"]


class LateFacts(Recording):
    """A notifier that keeps its state as a journal fact only once the run has ended (as the
    real one may: it runs on its own thread, after the critical request)."""

    def __init__(self, ctx: ToyContext) -> None:
        super().__init__()
        self.ctx = ctx

    def resolved(self, event: OperationEvent) -> None:
        super().resolved(event)
        self.ctx.fact("notify", {"opened": True, "ended": "resolved"})

    def failed(self, event: OperationEvent) -> None:
        self.events.append(event)
        self.ctx.fact("notify", {"opened": True, "ended": "failed"})


def _record_bookkeeping_writes(toy: Toy) -> list[tuple[str, str]]:
    """Each write of the journal and the lock, in order (install before the run's clients)."""
    writes: list[tuple[str, str]] = []

    def record(event_name: str, params: dict[str, Any], **_: Any) -> None:
        if params.get("Name") in ("/toy/journal", "/toy/lock"):
            writes.append((event_name.rsplit(".", 1)[-1], str(params["Name"])))

    for operation in ("PutParameter", "DeleteParameter"):
        toy.session.events.register(f"before-parameter-build.ssm.{operation}", record)
    return writes


def test_facts_a_hook_records_after_the_ending_reach_the_journal_under_the_lock(
        toy: Toy) -> None:
    """--resume reads the journal's facts: what the hooks recorded after the run wrote how it
    ended is written once more, before the lock is released (after it, a next run may
    already be writing this journal). A completed journal is never resumed: no extra write."""
    writes = _record_bookkeeping_writes(toy)
    operation = toy.operation(yes=True)
    operation.ctx.fail_announce = 1
    operation.hooks.hooks = LateFacts(operation.ctx)
    with pytest.raises(StepFailedError):
        operation.execute()
    journal = json.loads(toy.parameter("/toy/journal") or "{}")
    assert journal["status"] == "failed"
    assert journal["facts"]["notify"] == {"opened": True, "ended": "failed"}
    ending = [("PutParameter", "/toy/journal"), ("PutParameter", "/toy/journal"),
              ("PutParameter", "/toy/lock"), ("DeleteParameter", "/toy/lock")]
    assert writes[-4:] == ending, writes      # failed, then the hook's facts, then the lock
    resumed = toy.operation(yes=True, resume=True)
    resumed.hooks.hooks = LateFacts(resumed.ctx)
    assert resumed.execute() == ExitCode.OK
    journal = json.loads(toy.parameter("/toy/journal") or "{}")
    assert journal["status"] == "completed"
    assert journal["facts"]["notify"]["ended"] == "failed"     # "resolved" came after it


def test_a_second_interrupt_while_the_hooks_drain_still_releases_and_reports(
        toy: Toy) -> None:
    """The hooks now drain before the lock is released: a second Ctrl-C while they do (a
    slow channel) ends that wait only. Without that, it would leave the lock held until it
    went stale and no report."""
    operation = toy.operation(yes=True)
    operation.ctx.fail_announce = 1
    operation.hooks.hooks = LateFacts(operation.ctx)
    drain, waits = operation.hooks.drain, []

    def interrupted(timeout: float = 30.0) -> None:
        waits.append(timeout)
        if len(waits) == 1:
            raise KeyboardInterrupt
        drain(timeout)

    operation.hooks.drain = interrupted      # type: ignore[method-assign]
    # A KeyboardInterrupt escaping would end the whole test session: caught, and failed here.
    with pytest.raises((StepFailedError, KeyboardInterrupt)) as raised:
        operation.execute()
    assert raised.type is StepFailedError
    assert waits                                     # the drain was interrupted
    assert toy.parameter("/toy/lock") is None         # released all the same
    assert toy.report()["outcome"] == "failed"
    assert json.loads(toy.parameter("/toy/journal") or "{}")["status"] == "failed"


def test_a_live_lock_refuses_and_a_stale_one_is_taken_over(toy: Toy) -> None:
    client = toy.session.client("ssm", region_name=REGION)
    other = LockHolder.me("20260101T000000Z-other0", heartbeat_seconds=60)
    ssm.put_parameter(client, "/toy/lock", other.to_json(), overwrite=False)
    with pytest.raises(LockedError, match="another maintenance run holds the lock"):
        toy.operation(yes=True).execute()
    assert toy.parameter(MODE) == "serving"
    assert toy.report()["outcome"] == "locked" and toy.report()["timelineUploaded"] is False
    stale = replace(other, heartbeat_seconds=0.01, heartbeat_at="2026-01-01T00:00:00+00:00")
    ssm.put_parameter(client, "/toy/lock", stale.to_json())
    time.sleep(0.1)   # SSM's LastModifiedDate counts too: 3 x 0.01 s must pass after the write
    assert toy.operation(yes=True).execute() == ExitCode.OK
    assert toy.report()["lock"]["takenOver"]["runId"] == other.run_id


def test_the_confirmation_guards_the_first_change(toy: Toy) -> None:
    with pytest.raises(RefusedError, match="does not match the stack name"):
        toy.operation(answer="prod\n").execute()
    assert toy.parameter(MODE) == "serving" and toy.parameter("/toy/lock") is None
    assert toy.operation(answer="dr\n").execute() == ExitCode.OK


class Killed(BaseException):
    """Like a kill or pytest-timeout's ``Failed``: not an ``Exception``."""


def test_a_kill_before_the_lock_does_not_wait_for_a_hung_pre_lock_read(toy: Toy) -> None:
    """The reads made beside the journal's (``prefetch``) may hang on the network; a run
    stopped meanwhile ends at once and still writes its report."""
    hung = threading.Event()

    class KilledWhileReading(Maintenance):
        def prefetch(self, pool: Executor) -> dict[str, Future[Any]]:
            pool.submit(hung.wait, 15)
            raise Killed("killed while the pre-lock reads ran")

    ctx = ToyContext(toy.session)
    base = toy.operation(yes=True, ctx=ctx)
    operation = KilledWhileReading(ctx, base.options, toy.books(ctx), out=io.StringIO(),
                                   stdin=io.StringIO(""), session=toy.session)
    started = time.monotonic()
    try:
        with pytest.raises(Killed):
            operation.execute()
        assert time.monotonic() - started < 5, "the pool waited for the hung read"
    finally:
        hung.set()
    assert toy.report()["outcome"] != "completed"


def test_a_background_step_left_running_is_named_in_the_report(
        toy: Toy, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the runner's join limit a stalled background step is left behind: the report
    lists it as still running (``pending``, no end time) instead of waiting for it."""
    hung = threading.Event()

    class Observe(Step[ToyContext]):
        name = "observe"
        title = "Observe (hangs)"
        expected_seconds = 1
        best_effort = True
        converges = False

        def check(self, ctx: ToyContext) -> Verdict:
            return run("would observe")

        def apply(self, ctx: ToyContext) -> str:
            hung.wait(15)
            return "observed"

    class Observed(Maintenance):
        def plan(self) -> tuple[Stage[ToyContext], ...]:
            return (Stage((Observe(),), background=True), *super().plan())

    monkeypatch.setattr(runner_module, "JOIN_SECONDS", 0.2)
    ctx = ToyContext(toy.session)
    base = toy.operation(yes=True, ctx=ctx)
    operation = Observed(ctx, base.options, toy.books(ctx), out=io.StringIO(),
                         stdin=io.StringIO(""), session=toy.session)
    try:
        assert operation.execute() == ExitCode.OK
    finally:
        hung.set()
    report = toy.report()
    assert report["stillRunning"] == ["observe"]
    observe = next(s for s in report["steps"] if s["name"] == "observe")
    assert observe["outcome"] == "pending" and observe["ended_at"] is None
    assert "still running" in observe["detail"]
