"""A read pool (``with ThreadPoolExecutor()``) whose body is stopped -- by Ctrl-C, a kill, or
pytest-timeout's ``Failed`` raised from a signal handler -- must not then wait, without limit,
for a read blocked on the network: ``ThreadPoolExecutor.__exit__`` joins every worker.

The stop is delivered as pytest-timeout's signal method delivers it: SIGALRM's handler raises
on the main thread while it waits for the reads.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

import pytest

from caresync_dr.operations import RunContext, Stage, Step, Verdict, pools, run
from caresync_dr.operations.checks import resource_checks
from caresync_dr.operations.pools import ReadPool
from caresync_dr.operations.steps import Found

# Longer than the assertions wait: a run still blocked past it waited for the hung read.
STUCK_SECONDS = 15.0
# How long a stopped body may take to come out of the pool (it should take milliseconds).
ENDS_WITHIN = 3.0


class Killed(BaseException):
    """What the signal handler raises: not an ``Exception``, like pytest's ``Failed``."""


@pytest.fixture()
def hung() -> Iterator[threading.Event]:
    """An event the hung reads wait on; set at the end so no read outlives the test long."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture()
def killed_in(hung: threading.Event) -> Iterator[None]:
    """SIGALRM raises :class:`Killed` on the main thread 0.3 s after the test starts."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Killed("stopped by SIGALRM")

    previous = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class HungResource:
    """A resource whose read blocks (a hung endpoint) until ``event`` is set."""

    event: threading.Event
    label: str = "hung resource"
    key: tuple[str, str] = ("resource", "hung")

    def read(self) -> Found:
        self.event.wait(STUCK_SECONDS)
        return Found(True, "answered at last")


class Touching(Step[RunContext]):
    name = "touching"
    title = "Touches a hung resource"
    expected_seconds = 1

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def touches(self, ctx: RunContext) -> tuple[HungResource, ...]:
        return (HungResource(self.event),)

    def check(self, ctx: RunContext) -> Verdict:
        return run("would change it")

    def apply(self, ctx: RunContext) -> str:
        return "changed"


@pytest.mark.usefixtures("killed_in")
def test_a_stopped_preflight_does_not_wait_for_a_hung_resource_read(
        hung: threading.Event) -> None:
    started = time.monotonic()
    with pytest.raises(Killed):
        resource_checks((Stage((Touching(hung),)),), RunContext())
    assert time.monotonic() - started < ENDS_WITHIN, "the pool waited for the hung read"


def test_a_preflight_that_ends_normally_still_has_every_row() -> None:
    answered = threading.Event()
    answered.set()
    rows = resource_checks((Stage((Touching(answered),)),), RunContext())
    assert [(r.name, r.ok, r.detail) for r in rows] == [
        ("hung resource", True, "answered at last")]


def test_an_ordinary_error_still_waits_for_the_reads_as_before() -> None:
    """An ``Exception`` (a refused read, a usage error) keeps ``with ThreadPoolExecutor``'s
    behaviour: the pool's reads end before the error goes on (each is bounded by its call
    budget), so no read of the command outlives its clients."""
    with pytest.raises(ValueError), ReadPool(max_workers=1, thread_name_prefix="t") as pool:
        read = pool.submit(time.sleep, 0.2)
        raise ValueError("refused")
    assert read.done()


@pytest.mark.usefixtures("killed_in")
def test_a_stopped_pool_names_the_reads_it_leaves(hung: threading.Event,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger=pools.__name__), pytest.raises(Killed), \
            ReadPool(max_workers=1, thread_name_prefix="preflight") as pool:
        pool.submit(hung.wait, STUCK_SECONDS)
        hung.wait(STUCK_SECONDS)                      # the main thread waits: SIGALRM stops it
    assert any("preflight" in r.getMessage() and "Event.wait" in r.getMessage()
               for r in caplog.records)
