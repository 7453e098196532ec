"""What every run of an operation shares: its id, start, facts, journal and stop signal."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

from caresync_dr.operations.journal import Journal


def new_run_id() -> str:
    """``YYYYMMDDTHHMMSSZ-xxxxxx``: sortable by start, unique across operators."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]


class RunContext:
    """The run's shared state; an operation's own context subclasses it (inventory, clients).

    ``facts`` are what the run found on the way (data-loss exposure, endpoints); each
    :meth:`fact` also goes into the journal, so a resumed run knows them. ``stop`` is set on
    Ctrl-C or a lost lock: every :func:`~caresync_dr.operations.polling.wait_until` ends at its
    next poll.

    ``critical_sent`` is set once the request the run hurries to has been sent (or is found
    unnecessary): the change of the plan's :attr:`~caresync_dr.operations.steps.Step.critical`
    step, e.g. failover's promotion, which everything after it waits for. Work that is not on
    the way to that request (notifications, clients only later steps use) waits for it, so it
    takes no CPU from the way there; the engine sets it at the latest when the critical step
    ends, when the plan has no critical step, and on every exit."""

    def __init__(self) -> None:
        self.run_id = new_run_id()
        self.started_at = datetime.now(UTC)
        self.journal: Journal | None = None
        self.facts: dict[str, Any] = {}
        # The run id of the unfinished journal this run continues (set by the engine before
        # the preflight), else None: ``--resume`` with nothing to resume is a new run, and
        # its preflight must judge the world as one (no "already promoted (resuming)").
        self.resumed_run: str | None = None
        self.stop = threading.Event()
        self.critical_sent = threading.Event()
        # Reads the "already done?" check makes, started before the lock beside the journal's
        # and the lock's (Operation.prefetch); the engine empties it before the lock is taken,
        # so nothing under the lock judges by a read made before it.
        self.pre_lock_reads: dict[str, Future[Any]] = {}
        self._facts_mutex = threading.Lock()
        self._changes = 0

    @property
    def changes_started(self) -> int:
        """How many step changes (applies) this run has started: a read made when it was N
        still shows the world as this run left it while it is N (``FailoverContext`` reuses
        such a read instead of asking AWS again)."""
        return self._changes

    def change_starting(self) -> None:
        """The runner calls this just before a step's ``apply``."""
        with self._facts_mutex:
            self._changes += 1

    def fact(self, key: str, value: Any, save: bool = False) -> None:
        """Record a fact; ``save`` writes the journal now (before an action a resumed run must
        know about), else it is saved with the next step record."""
        with self._facts_mutex:
            self.facts[key] = value
        if self.journal is not None:
            self.journal.fact(key, value, save=save)
