"""How a run's threads end: a run stopped by something that is not an ordinary error (a kill,
SystemExit, pytest-timeout's ``Failed``) tells its background steps to stop, and the runner
never waits past a documented limit for a step that does not end (one stall must not become
a process that never exits).

No AWS here: the steps are toys that wait on events, so what is measured is the runner alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from caresync_dr.operations import RunContext, Stage, Step, StepFailedError, Verdict, run
from caresync_dr.operations import runner as runner_module
from caresync_dr.operations.runner import Runner

# Longer than any assertion below waits: a step still blocked past it shows a hang.
STUCK_SECONDS = 20.0
# How long the test gives a run to end once it should (the runner's own limit is far less).
ENDS_WITHIN = 5.0


class Killed(BaseException):
    """Like the fault harness's kill and pytest's ``Failed``: not an ``Exception``."""


class Release:
    """What lets every toy step go at the end of a test, whatever the runner did."""

    def __init__(self) -> None:
        self.event = threading.Event()


class Fence(Step[RunContext]):
    """A background step that waits, like a poll, until the run's stop is set."""

    name = "fence"
    title = "Fence (waits until the run stops)"
    expected_seconds = 1
    best_effort = True
    converges = False

    def check(self, ctx: RunContext) -> Verdict:
        return run("would fence")

    def apply(self, ctx: RunContext) -> str:
        stopped = ctx.stop.wait(STUCK_SECONDS)
        return "stopped by the run" if stopped else "ran out its own wait"


class Stuck(Step[RunContext]):
    """A background step blocked in a call that no stop reaches (a hung socket)."""

    name = "stuck"
    title = "Stuck (ignores the stop)"
    expected_seconds = 1
    best_effort = True
    converges = False

    def __init__(self, release: Release) -> None:
        self.release = release

    def check(self, ctx: RunContext) -> Verdict:
        return run("would hang")

    def apply(self, ctx: RunContext) -> str:
        self.release.event.wait(STUCK_SECONDS)
        return "released"


class Raises(Step[RunContext]):
    """A foreground step that raises ``error`` from its apply."""

    name = "promote"
    title = "Promote (raises)"
    expected_seconds = 1
    converges = False

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def check(self, ctx: RunContext) -> Verdict:
        return run("would promote")

    def apply(self, ctx: RunContext) -> str:
        raise self.error


class Fails(Raises):
    """A required step whose check says it cannot run: an ordinary step failure."""

    def check(self, ctx: RunContext) -> Verdict:
        return Verdict("blocked", "the replica is not available")


@pytest.fixture()
def release() -> Iterator[Release]:
    released = Release()
    yield released
    released.event.set()        # a step the runner left behind ends with the test


def run_in_thread(runner: Runner[RunContext]) -> tuple[threading.Thread, list[BaseException]]:
    """Start ``runner.run()`` in a thread; the list gets what it raised."""
    raised: list[BaseException] = []

    def target() -> None:
        try:
            runner.run()
        except BaseException as exc:
            raised.append(exc)

    thread = threading.Thread(target=target, name="test-runner", daemon=True)
    thread.start()
    return thread, raised


@pytest.mark.parametrize("error", [Killed("killed at promote"), SystemExit(9),
                                   KeyboardInterrupt()],
                         ids=["kill", "SystemExit", "KeyboardInterrupt"])
def test_a_run_ended_by_a_base_exception_stops_its_background_steps(error: BaseException) -> None:
    ctx = RunContext()
    ctx.critical_sent.set()
    runner = Runner(ctx, (Stage((Fence(),), background=True), Stage((Raises(error),))))
    thread, raised = run_in_thread(runner)
    thread.join(ENDS_WITHIN)
    assert not thread.is_alive(), "the run waited for a background step nobody stopped"
    assert ctx.stop.is_set()
    assert raised == [error]
    assert runner.records["fence"].detail == "stopped by the run"


def test_an_ordinary_step_failure_lets_background_steps_finish() -> None:
    """Fencing is best effort and idempotent, and --resume re-runs it: an ordinary step
    failure (exit FAILED, resumable) keeps today's behaviour and lets it end on its own."""
    ctx = RunContext()
    ctx.critical_sent.set()

    class Quick(Fence):
        def apply(self, ctx: RunContext) -> str:
            return "fenced"

    runner = Runner(ctx, (Stage((Quick(),), background=True), Stage((Fails(KeyError()),))))
    with pytest.raises(StepFailedError):
        runner.run()
    assert not ctx.stop.is_set()
    assert runner.records["fence"].outcome == "done"


def test_a_step_that_ignores_the_stop_is_left_after_the_limit_and_named(
        release: Release, caplog: pytest.LogCaptureFixture) -> None:
    ctx = RunContext()
    ctx.critical_sent.set()
    runner = Runner(ctx, (Stage((Stuck(release),), background=True),
                          Stage((Raises(Killed("killed")),))), join_seconds=0.2)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger=runner_module.__name__):
        thread, raised = run_in_thread(runner)
        thread.join(ENDS_WITHIN)
    assert not thread.is_alive(), "the run waited past its join limit"
    assert time.monotonic() - started < ENDS_WITHIN
    assert len(raised) == 1 and isinstance(raised[0], Killed)
    assert runner.still_running == ["stuck"]
    record = runner.records["stuck"]
    assert record.outcome == "pending" and record.ended_at is None
    assert "still running" in record.detail and "0.2 s" in record.detail
    assert any("stuck" in r.getMessage() and "still running" in r.getMessage()
               for r in caplog.records)


def test_a_completed_run_also_bounds_its_wait_for_background_steps(release: Release) -> None:
    """Even with nothing stopping it, the end of a run waits at most ``join_seconds`` for a
    background step (its AWS calls have their own budget; a step past it is a stall)."""
    ctx = RunContext()
    ctx.critical_sent.set()

    class Quick(Raises):
        def apply(self, ctx: RunContext) -> str:
            return "promoted"

    runner = Runner(ctx, (Stage((Stuck(release),), background=True),
                          Stage((Quick(Killed()),))), join_seconds=0.2)
    thread, raised = run_in_thread(runner)
    thread.join(ENDS_WITHIN)
    assert not thread.is_alive()
    assert raised == []
    assert runner.still_running == ["stuck"]
    assert ctx.stop.is_set(), "a step left behind is told to stop at its next poll"
    assert runner.records["promote"].outcome == "done"


def test_the_join_limit_is_documented_and_covers_a_best_effort_call() -> None:
    """The default leaves room for the best-effort budget of a few calls (aws.BEST_EFFORT:
    2 attempts x (2 s connect + 5 s read) a call)."""
    from caresync_dr.aws import BEST_EFFORT

    one_call = BEST_EFFORT.total_max_attempts * (BEST_EFFORT.connect_timeout
                                                 + BEST_EFFORT.read_timeout)
    assert 2 * one_call <= runner_module.JOIN_SECONDS
    assert "JOIN_SECONDS" in (runner_module.__doc__ or "")



def test_a_background_step_not_yet_started_at_a_normal_end_still_runs() -> None:
    """Only a stopping run cancels steps not yet started: a background step still queued
    for a worker when the run ends normally (a busy machine) runs, never skipped."""

    class Recorded(Fence):
        def apply(self, ctx: RunContext) -> str:
            return "fenced"

    ctx = RunContext()
    ctx.critical_sent.set()
    runner = Runner(ctx, (Stage((Recorded(),), background=True),))
    busy = threading.Event()
    # Every worker of the run's pool busy, so the background step waits in the queue.
    for _ in range(runner._pool._max_workers):
        runner._pool.submit(busy.wait, ENDS_WITHIN)
    threading.Timer(0.2, busy.set).start()
    runner.run()
    assert runner.records["fence"].outcome == "done"
