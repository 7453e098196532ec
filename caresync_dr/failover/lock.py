"""The failover lock: one SSM parameter in the standby region, created atomically.

``PutParameter(Overwrite=False)`` either creates the parameter or fails with
ParameterAlreadyExists, so two operators cannot both hold it. The lock is a lease: while the run
lives, a background thread rewrites ``heartbeatAt`` every ``heartbeatSeconds``. A crashed run
leaves the lock behind with its heartbeat going stale; ``--resume`` of that same run (same run
id, from the journal) takes it over only once the heartbeat is older than
``STALE_HEARTBEATS`` x the holder's interval. A live run is never taken over.

SSM has no compare-and-swap: two resumers that both find the lease stale in the same instant
could both overwrite it. Each re-reads the lock after its takeover and refuses when the token it
finds is not its own, which narrows that window to one SSM round trip.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.failover import actions, probes
from caresync_dr.failover.errors import LockedError

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

log = logging.getLogger(__name__)
DEFAULT_HEARTBEAT_SECONDS = 10.0
STALE_HEARTBEATS = 3      # a lease is stale after this many missed heartbeats


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class LockHolder:
    holder: str        # user@host
    pid: int
    started_at: str    # ISO 8601, UTC
    run_id: str
    token: str = ""                 # unique per process invocation: who owns the lease
    heartbeat_at: str = ""          # ISO 8601, UTC; rewritten while the holder lives
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS

    @classmethod
    def me(cls, run_id: str, heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
           ) -> LockHolder:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        now = _now()
        return cls(holder=f"{user}@{socket.gethostname()}", pid=os.getpid(),
                   started_at=now, run_id=run_id, token=uuid.uuid4().hex,
                   heartbeat_at=now, heartbeat_seconds=heartbeat_seconds)

    def to_json(self) -> str:
        return json.dumps({"holder": self.holder, "pid": self.pid,
                           "startedAt": self.started_at, "runId": self.run_id,
                           "token": self.token, "heartbeatAt": self.heartbeat_at,
                           "heartbeatSeconds": self.heartbeat_seconds}, sort_keys=True)

    @classmethod
    def parse(cls, text: str) -> LockHolder:
        try:
            data = json.loads(text)
            return cls(holder=str(data["holder"]), pid=int(data["pid"]),
                       started_at=str(data["startedAt"]), run_id=str(data["runId"]),
                       token=str(data.get("token", "")),
                       heartbeat_at=str(data.get("heartbeatAt") or data["startedAt"]),
                       heartbeat_seconds=float(data.get("heartbeatSeconds",
                                                        DEFAULT_HEARTBEAT_SECONDS)))
        except (ValueError, KeyError, TypeError):
            return cls(holder=f"unreadable lock content {text[:80]!r}", pid=0,
                       started_at="unknown", run_id="unknown")

    def is_(self, other: LockHolder) -> bool:
        """The same invocation (not just the same run id: a resumed run reuses that)."""
        return self.token == other.token and self.run_id == other.run_id

    def heartbeat_age(self, now: datetime | None = None) -> float | None:
        """Seconds since the holder last renewed the lease; None when unreadable."""
        try:
            at = datetime.fromisoformat(self.heartbeat_at)
        except ValueError:
            return None
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return max(0.0, ((now or datetime.now(UTC)) - at).total_seconds())

    @property
    def stale_after(self) -> float:
        return STALE_HEARTBEATS * self.heartbeat_seconds

    def is_stale(self, now: datetime | None = None) -> bool:
        age = self.heartbeat_age(now)
        return age is not None and age > self.stale_after

    def describe(self) -> str:
        age = self.heartbeat_age()
        beat = ("no readable heartbeat" if age is None else
                f"last heartbeat {age:.0f} s ago (stale after {self.stale_after:.0f} s)")
        return (f"{self.holder} (pid {self.pid}), started {self.started_at}, "
                f"run {self.run_id}, {beat}")


class FailoverLock:
    def __init__(self, ssm: SSMClient, name: str) -> None:
        self.ssm = ssm
        self.name = name
        self.lost = False    # set when a heartbeat finds another holder (we were taken over)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> LockHolder | None:
        text = probes.read_parameter(self.ssm, self.name)
        return None if text is None else LockHolder.parse(text)

    def acquire(self, me: LockHolder, take_over_run: str | None = None) -> None:
        """Take the lock, or raise :class:`LockedError` naming the holder.

        ``take_over_run``: the run id of a crashed run being resumed; its lock is replaced only
        when its heartbeat is stale (the holder is gone), never while that run is alive.
        """
        try:
            actions.put_parameter(self.ssm, self.name, me.to_json(), overwrite=False)
            log.info("lock %s taken by %s", self.name, me.describe())
            return
        except ClientError as exc:
            if probes.error_code(exc) != "ParameterAlreadyExists":
                raise
        current = self.holder()
        if current is None:  # released between our put and our read: try once more
            self.acquire(me, take_over_run=None)
            return
        if current.is_(me):
            # Our own create, retried after its response was lost (throttling, a timeout):
            # the first attempt did succeed.
            log.info("lock %s taken by %s", self.name, me.describe())
            return
        if take_over_run is not None and current.run_id == take_over_run:
            if not current.is_stale():
                raise LockedError(
                    f"the run {current.run_id} is still alive: it holds the lock {self.name}: "
                    f"{current.describe()}. Wait for it, or stop it; --resume takes over only "
                    "once its heartbeat is stale. Nothing was changed")
            me = replace(me, heartbeat_at=_now())
            actions.put_parameter(self.ssm, self.name, me.to_json(), overwrite=True)
            after = self.holder()
            if after is None or not after.is_(me):
                raise LockedError(f"lost the takeover of {self.name} to "
                                  f"{after.describe() if after else 'a release'}. "
                                  "Nothing was changed")
            log.info("lock %s taken over from crashed run %s (%s)", self.name,
                     current.run_id, current.describe())
            return
        hint = ("" if take_over_run is not None else
                "; if that run crashed, continue it with --resume")
        raise LockedError(f"another failover run holds the lock {self.name}: "
                          f"{current.describe()}{hint}")

    def start_heartbeat(self, me: LockHolder, on_lost: Callable[[], None] | None = None
                        ) -> None:
        """Renew the lease every ``me.heartbeat_seconds`` until :meth:`stop_heartbeat`.
        ``on_lost`` is called once if another run has taken the lock over (this process
        stalled past the stale threshold): the run must stop, it no longer holds the lock."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, args=(me, on_lost), daemon=True,
                                        name="failover-lock-heartbeat")
        self._thread.start()

    def _beat(self, me: LockHolder, on_lost: Callable[[], None] | None) -> None:
        while not self._stop.wait(me.heartbeat_seconds):
            try:
                current = self.holder()
                if current is None or not current.is_(me):
                    self.lost = True
                    log.error("lock %s is no longer ours (now %s); stopping this run",
                              self.name, current.describe() if current else "released")
                    if on_lost is not None:
                        on_lost()
                    return
                renewed = replace(current, heartbeat_at=_now())
                actions.put_parameter(self.ssm, self.name, renewed.to_json(), overwrite=True)
            except (ClientError, BotoCoreError) as exc:
                log.warning("could not renew the lock %s (will retry): %s", self.name, exc)

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def release(self, me: LockHolder) -> None:
        """Stop renewing; delete the lock only when it is still ours."""
        self.stop_heartbeat()
        current = self.holder()
        if current is not None and current.is_(me):
            self.ssm.delete_parameter(Name=self.name)
            log.info("lock %s released", self.name)
        elif current is not None:
            log.warning("lock %s is held by %s, not by this run: left in place", self.name,
                        current.describe())
