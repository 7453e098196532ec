"""Start-up tuning for a command whose first second counts (failover.py: the RTO runs from it),
and the one owner of this process's cyclic-collector switch.

Its start allocates some 60,000 objects that live as long as the process: modules, botocore's
service models, endpoint rules and client classes. CPython's cyclic garbage collector walks
them again and again while they are made: with the default threshold (a collection every 700
new container objects) about 80 times before the promotion request, ~30 ms of CPU (measured
with ``gc.callbacks`` in ``bench/failover_startup.py``'s child); with the threshold raised to
:data:`YOUNG_THRESHOLD`, a few collections, one of them a ~15 ms pause in the middle of the
imports. So the command pauses the collector from its first line until its critical request
is sent (:func:`pause_collection`, :func:`resume_collection`), at most
:data:`PAUSE_BACKSTOP_SECONDS`; then it freezes what start-up made (``gc.freeze``: later
collections no longer walk those long-lived objects) and collects as usual. Cyclic garbage
made while paused is frozen with the rest and never collected: a start-up makes little of it,
and only the process's first pause freezes, so a process that pauses again (a second
``main()``, a test) does not keep adding to it.

Every pause in caresync_dr goes through this module (:func:`collection_paused` for a short
one, such as ``model_cache.read_entry``'s unmarshalling): ``gc.isenabled()`` then
``gc.disable()`` in two places let one thread's re-enable fall between another's check and
its disable, after which nothing turned the collector on again for the rest of the process.
Here pauses are counted under one lock, from any thread and nested: the first turns the
collector off, the last turns it back on only if it was on before the first (an embedding
program that turned it off keeps it off). A program that switches the collector itself while
a pause is held is not seen: the state before the first pause is the one restored.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

YOUNG_THRESHOLD = 50_000
# The longest the collector stays paused when nothing resumes it (a run that is refused, or
# waits for its operator's answer): the paused start-up of a failover takes well under 1 s.
PAUSE_BACKSTOP_SECONDS = 5.0


class _Collector:
    """The process's pauses of the collector: how many are held, whether to turn it back on
    after the last, the start-up pause (an Event set to end it) and whether start-up's objects
    were frozen. Every field is read and written under :attr:`lock` only."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.holds = 0
        self.on_after_last = False     # the collector was on when the first hold began
        self.startup: threading.Event | None = None
        self.frozen = False

    def collecting(self) -> bool:
        """Whether the collector is on, or will be once every pause held ends."""
        return self.on_after_last if self.holds else gc.isenabled()

    def hold(self) -> None:
        """One more pause (under :attr:`lock`): the first looks at the collector and turns
        it off in the same hold of the lock, so no other thread's switch falls between."""
        if not self.holds:
            self.on_after_last = gc.isenabled()
            gc.disable()
        self.holds += 1

    def release(self) -> None:
        """One pause fewer (under :attr:`lock`): the last turns the collector back on if
        it was on before the first."""
        self.holds -= 1
        if not self.holds and self.on_after_last:
            gc.enable()


_COLLECTOR = _Collector()


def collect_less_often() -> None:
    """Raise the youngest generation's threshold to :data:`YOUNG_THRESHOLD` (never lower
    it); the older generations keep theirs."""
    young, middle, old = gc.get_threshold()
    if young and young < YOUNG_THRESHOLD:
        gc.set_threshold(YOUNG_THRESHOLD, middle, old)


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """Keep the cyclic collector off for the block: for building tens of thousands of
    containers at once, none of them garbage, which it would walk several times over while
    they are made. Safe from any thread, nested and beside :func:`pause_collection`; the
    collector is turned back on after the last pause only if it was on before the first."""
    with _COLLECTOR.lock:
        _COLLECTOR.hold()
    try:
        yield
    finally:
        with _COLLECTOR.lock:
            _COLLECTOR.release()


def pause_collection(backstop_seconds: float = PAUSE_BACKSTOP_SECONDS) -> bool:
    """Pause the cyclic collector until :func:`resume_collection`, or ``backstop_seconds``
    at most (a daemon thread resumes it then). Also :func:`collect_less_often`. Returns
    False, doing nothing else, when this start-up pause is held already or the embedding
    program turned the collector off (it then stays off)."""
    collect_less_often()
    with _COLLECTOR.lock:
        if _COLLECTOR.startup is not None or not _COLLECTOR.collecting():
            return False
        _COLLECTOR.hold()
        pause = _COLLECTOR.startup = threading.Event()

    def backstop() -> None:
        pause.wait(backstop_seconds)
        _end(pause)

    threading.Thread(target=backstop, daemon=True, name="gc-pause-backstop").start()
    return True


def resume_collection() -> None:
    """End :func:`pause_collection`'s pause, if any: freeze the objects made so far (the
    process's first pause only), then turn the collector back on unless another pause
    (:func:`collection_paused`) is still held or the collector was off before it."""
    with _COLLECTOR.lock:
        pause = _COLLECTOR.startup
    if pause is not None:
        _end(pause)


def _end(pause: threading.Event) -> None:
    pause.set()
    with _COLLECTOR.lock:
        if _COLLECTOR.startup is not pause:
            return          # ended already (resumed, then its backstop; or the reverse)
        _COLLECTOR.startup = None
        if not _COLLECTOR.frozen:
            gc.freeze()
            _COLLECTOR.frozen = True
        _COLLECTOR.release()
