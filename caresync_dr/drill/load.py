"""The steady write load: patient rows and a heartbeat, every acknowledged write recorded.

Each write is one transaction (insert a patient row, bump the heartbeat) sent to the database
of the site the resolver currently answers, as that site's app logs in (the app role) -- the
way CareSync's app writes through whichever site serves the record name. A write counts as
acknowledged when COMMIT returned; the ledger keeps its sequence number, the database that
acknowledged it and when. Afterwards the ledger is compared with what the surviving database
holds: that difference is the data loss (RPO).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

log = logging.getLogger(__name__)

Target = Callable[[], tuple[str, str] | None]  # -> (database label, DSN) or None


@dataclass(frozen=True)
class Ack:
    seq: int
    database: str
    acked_at: float  # time.monotonic() when COMMIT returned
    # time.monotonic() just before COMMIT was sent. This process's threads share the GIL, so
    # acked_at may lag the server's reply by a thread switch (up to sys.getswitchinterval(),
    # 5 ms, or more): a reply sent before a kill -9 can carry an acked_at after it. A COMMIT
    # sent before the kill was acknowledged, if at all, by a backend before it died.
    committing_at: float = 0.0


@dataclass
class WriteLoad:
    target: Target
    interval: float = 0.025
    acks: list[Ack] = field(default_factory=list)
    failures: int = 0
    failed_at: list[float] = field(default_factory=list)  # time.monotonic() of each failure
    last_error: str = ""
    _seq: int = 0
    _conns: dict[str, psycopg.Connection[Any]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True, name="write-load")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()

    def write_once(self) -> Ack | None:
        where = self.target()
        if where is None:
            self._failed("no site answers")
            return None
        label, dsn = where
        self._seq += 1
        seq = self._seq
        try:
            conn = self._conns.get(dsn)
            if conn is None or conn.closed:
                conn = psycopg.connect(dsn, connect_timeout=1)
                self._conns[dsn] = conn
            with conn.transaction():
                conn.execute("insert into patients (seq, name) values (%s, %s)",
                             (seq, f"patient-{seq}"))
                conn.execute("update heartbeat set beat = %s, at = clock_timestamp() "
                             "where id = 1", (seq,))
                committing_at = time.monotonic()    # the block's end sends COMMIT
        except (psycopg.Error, OSError) as exc:
            self._failed(f"{label}: {str(exc).strip().splitlines()[0][:160]}")
            conn = self._conns.get(dsn)
            # A refused statement (e.g. read-only standby) leaves the session usable; only a
            # broken connection is dropped, so a standby is not hammered with reconnects.
            if conn is None or conn.closed or conn.broken or isinstance(
                    exc, (psycopg.OperationalError, OSError)):
                stale = self._conns.pop(dsn, None)
                if stale is not None:
                    stale.close()
            return None
        ack = Ack(seq=seq, database=label, acked_at=time.monotonic(),
                  committing_at=committing_at)
        with self._lock:
            self.acks.append(ack)
        return ack

    def _failed(self, error: str) -> None:
        with self._lock:
            self.failures += 1
            self.failed_at.append(time.monotonic())
            self.last_error = error

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.write_once()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    @property
    def attempted(self) -> int:
        """Writes tried so far (sequence numbers 1..attempted; an unacknowledged one failed)."""
        return self._seq

    def snapshot(self) -> list[Ack]:
        with self._lock:
            return list(self.acks)

    def failures_snapshot(self) -> list[float]:
        with self._lock:
            return list(self.failed_at)


def write_series(acks: list[Ack], failed_at: list[float], origin: float,
                 bin_seconds: float = 0.25) -> dict[str, Any]:
    """Writes per second over time, for the report's chart: acknowledged and failed writes
    counted in bins of ``bin_seconds``, ``t`` the start of each bin in seconds from ``origin``
    (the outage; negative before it). Empty lists when nothing was written."""
    times = [a.acked_at for a in acks] + list(failed_at)
    if not times:
        return {"bin_seconds": bin_seconds, "t": [], "acknowledged_per_second": [],
                "failed_per_second": []}
    first = int((min(times) - origin) // bin_seconds)
    last = int((max(times) - origin) // bin_seconds)
    acked = [0] * (last - first + 1)
    failed = [0] * (last - first + 1)
    for a in acks:
        acked[int((a.acked_at - origin) // bin_seconds) - first] += 1
    for f in failed_at:
        failed[int((f - origin) // bin_seconds) - first] += 1
    return {"bin_seconds": bin_seconds,
            "t": [round((first + i) * bin_seconds, 3) for i in range(len(acked))],
            "acknowledged_per_second": [round(n / bin_seconds, 1) for n in acked],
            "failed_per_second": [round(n / bin_seconds, 1) for n in failed]}


@dataclass(frozen=True)
class DataLoss:
    """Acknowledged writes of ``lost_from`` that the survivor does not hold."""

    acknowledged: int
    missing: int
    seconds: float  # last acknowledged write minus the last one present on the survivor


def data_loss(acks: list[Ack], lost_from: str, present: set[int]) -> DataLoss:
    mine = [a for a in acks if a.database == lost_from]
    missing = [a for a in mine if a.seq not in present]
    if not missing:
        return DataLoss(acknowledged=len(mine), missing=0, seconds=0.0)
    kept = [a.acked_at for a in mine if a.seq in present]
    last_acked = max(a.acked_at for a in mine)
    last_kept = max(kept) if kept else min(a.acked_at for a in mine)
    return DataLoss(acknowledged=len(mine), missing=len(missing),
                    seconds=round(last_acked - last_kept, 3))
