"""Start-up tuning for a command whose first second counts (failover.py: the RTO runs from it).

Its start allocates some 60,000 objects that live as long as the process: modules, botocore's
service models, endpoint rules and client classes. CPython's cyclic garbage collector walks
them again and again while they are made: with the default threshold (a collection every 700
new container objects) about 80 times before the promotion request, ~30 ms of CPU (measured
with ``gc.callbacks`` in ``bench/failover_startup.py``'s child); with the threshold raised to
:data:`YOUNG_THRESHOLD`, a few collections, one of them a ~15 ms pause in the middle of the
imports. So the command pauses the collector from its first line until its critical request
is sent (:func:`pause_collection`, :func:`resume_collection`), at most
:data:`PAUSE_BACKSTOP_SECONDS`; then it freezes what start-up made (``gc.freeze``: later
collections no longer walk those long-lived objects) and collects as usual. A short start-up
makes little cyclic garbage: what it made is collected later, not lost.
"""

from __future__ import annotations

import gc
import threading

YOUNG_THRESHOLD = 50_000
# The longest the collector stays paused when nothing resumes it (a run that is refused, or
# waits for its operator's answer): the paused start-up of a failover takes well under 1 s.
PAUSE_BACKSTOP_SECONDS = 5.0



class _CollectorPause:
    """The one pause of this process's collector, if any (an Event set to end it)."""

    def __init__(self) -> None:
        self.mutex = threading.Lock()
        self.current: threading.Event | None = None


_PAUSE = _CollectorPause()


def collect_less_often() -> None:
    """Raise the youngest generation's threshold to :data:`YOUNG_THRESHOLD` (never lower
    it); the older generations keep theirs."""
    young, middle, old = gc.get_threshold()
    if young and young < YOUNG_THRESHOLD:
        gc.set_threshold(YOUNG_THRESHOLD, middle, old)


def pause_collection(backstop_seconds: float = PAUSE_BACKSTOP_SECONDS) -> bool:
    """Pause the cyclic collector until :func:`resume_collection`, or ``backstop_seconds``
    at most (a daemon thread resumes it then). Also :func:`collect_less_often`. Returns
    False, doing nothing else, when the collector is off already (paused here, or by the
    embedding program, which then keeps it off)."""
    collect_less_often()
    with _PAUSE.mutex:
        if _PAUSE.current is not None or not gc.isenabled():
            return False
        gc.disable()
        pause = _PAUSE.current = threading.Event()

    def backstop() -> None:
        pause.wait(backstop_seconds)
        _end(pause)

    threading.Thread(target=backstop, daemon=True, name="gc-pause-backstop").start()
    return True


def resume_collection() -> None:
    """End :func:`pause_collection`'s pause, if any: freeze the objects made so far, then
    turn the collector back on."""
    with _PAUSE.mutex:
        pause = _PAUSE.current
    if pause is not None:
        _end(pause)


def _end(pause: threading.Event) -> None:
    pause.set()
    with _PAUSE.mutex:
        if _PAUSE.current is pause:
            gc.freeze()
            gc.enable()
            _PAUSE.current = None
