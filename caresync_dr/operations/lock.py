"""The operation lock: one SSM parameter in the standby region, created atomically, held as a lease.

``PutParameter(Overwrite=False)`` either creates the parameter or fails with
ParameterAlreadyExists, so two operators cannot both hold it. While the run lives, a background
thread rewrites ``heartbeatAt`` every ``heartbeatSeconds``. A lock whose last write is older than
``STALE_HEARTBEATS`` x its holder's interval is *stale*: its holder is gone (killed, powered off,
cut off), and any later run takes it over, saying so in its report. A live lock is never taken.

The age of a lock is the younger of two clocks: the holder's own ``heartbeatAt`` and SSM's
``LastModifiedDate`` of the parameter. So a holder whose clock runs behind is not taken for dead,
and a lock whose content cannot be read (another tool, a hand edit) still goes stale.

Every lock transition survives a lost answer: a create whose answer is lost is found to be our
own on the re-read; a release whose answer is lost finds the parameter gone. A release that SSM
refuses never fails a run: the lock then goes stale and the next run takes it over.

SSM has no compare-and-swap: two runs that find the same stale lock in the same instant could
both overwrite it. Each re-reads the lock after its takeover and refuses when the token it finds
is not its own, which narrows that window to one SSM round trip.
"""

from __future__ import annotations

import getpass
import json
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.cli.errors import LockedError
from caresync_dr.operations import ssm as actions
from caresync_dr.operations import ssm as probes

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

log = logging.getLogger(__name__)
# The lease: renewed this often; a later run takes over after STALE_HEARTBEATS missed renewals.
DEFAULT_LOCK_HEARTBEAT_SECONDS = 10.0
DEFAULT_HEARTBEAT_SECONDS = DEFAULT_LOCK_HEARTBEAT_SECONDS
# The longest renewal interval keeps a crashed run's lock from blocking the next run for more
# than 3 x 300 s.
LOCK_HEARTBEAT_RANGE = (0.01, 300.0)
STALE_HEARTBEATS = 3      # a lease is stale after this many missed heartbeats
ACQUIRE_ATTEMPTS = 3      # create / read races before giving up


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _age(stamp: str, now: datetime) -> float | None:
    try:
        at = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return max(0.0, (now - at).total_seconds())


def _lease_seconds(raw: object) -> float:
    """A holder's renewal interval as written; anything a run could not have been started with
    (NaN, infinite, out of range) counts as the default, so every lock can go stale."""
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return DEFAULT_HEARTBEAT_SECONDS
    low, high = LOCK_HEARTBEAT_RANGE
    if not math.isfinite(value) or value < low:
        return DEFAULT_HEARTBEAT_SECONDS
    return min(value, high)


@dataclass(frozen=True)
class LockHolder:
    holder: str        # user@host
    pid: int
    started_at: str    # ISO 8601, UTC
    run_id: str
    token: str = ""                 # unique per process invocation: who owns the lease
    heartbeat_at: str = ""          # ISO 8601, UTC; rewritten while the holder lives
    heartbeat_seconds: float = DEFAULT_HEARTBEAT_SECONDS
    written_at: str = ""            # SSM's LastModifiedDate of the parameter (not stored in it)

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
    def parse(cls, text: str, written_at: datetime | None = None) -> LockHolder:
        written = written_at.isoformat() if written_at is not None else ""
        try:
            data = json.loads(text)
            return cls(holder=str(data["holder"]), pid=int(data["pid"]),
                       started_at=str(data["startedAt"]), run_id=str(data["runId"]),
                       token=str(data.get("token", "")),
                       heartbeat_at=str(data.get("heartbeatAt") or data["startedAt"]),
                       heartbeat_seconds=_lease_seconds(data.get(
                           "heartbeatSeconds", DEFAULT_HEARTBEAT_SECONDS)),
                       written_at=written)
        except (ValueError, KeyError, TypeError, AttributeError):
            return cls(holder=f"unreadable lock content {text[:80]!r}", pid=0,
                       started_at="unknown", run_id="unknown", written_at=written)

    def is_(self, other: LockHolder) -> bool:
        """The same invocation (not just the same run id: a resumed run reuses that)."""
        return bool(self.token) and self.token == other.token and self.run_id == other.run_id

    def heartbeat_age(self, now: datetime | None = None) -> float | None:
        """Seconds since the lock was last written (the younger of the holder's heartbeat and
        SSM's LastModifiedDate); None when neither can be read."""
        moment = now or datetime.now(UTC)
        ages = [age for age in (_age(self.heartbeat_at, moment), _age(self.written_at, moment))
                if age is not None]
        return min(ages) if ages else None

    @property
    def stale_after(self) -> float:
        return STALE_HEARTBEATS * self.heartbeat_seconds

    def is_stale(self, now: datetime | None = None) -> bool:
        age = self.heartbeat_age(now)
        return age is not None and age > self.stale_after

    def describe(self) -> str:
        age = self.heartbeat_age()
        beat = ("no readable heartbeat" if age is None else
                f"last heartbeat {age:.{_places(age)}f} s ago "
                f"(stale after {self.stale_after:.{_places(self.stale_after)}f} s)")
        return (f"{self.holder} (pid {self.pid}), started {self.started_at}, "
                f"run {self.run_id}, {beat}")

    def summary(self) -> dict[str, object]:
        """What a report says about a holder."""
        return {"holder": self.holder, "pid": self.pid, "runId": self.run_id,
                "startedAt": self.started_at, "heartbeatAgeSeconds": self.heartbeat_age()}


@dataclass(frozen=True)
class Release:
    """How a release ended; ``error`` says why the lock may still be there."""

    released: bool
    error: str | None = None


class LeaseLock:
    """The lock of one kind of operation (``operation`` names it in refusals: "another
    failover run holds the lock ...")."""

    def __init__(self, ssm: SSMClient, name: str, operation: str = "failover") -> None:
        self.ssm = ssm
        self.name = name
        self.operation = operation
        self.lost = False        # set when the lease is no longer ours (or cannot be renewed)
        self.lost_reason = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> LockHolder | None:
        found = probes.read_parameter_dated(self.ssm, self.name)
        return None if found is None else LockHolder.parse(*found)

    def _holder_if_readable(self) -> LockHolder | None:
        try:
            return self.holder()
        except (ClientError, BotoCoreError):
            return None

    def acquire(self, me: LockHolder, resuming_run: str | None = None) -> LockHolder | None:
        """Take the lock; returns the stale holder it took over, if any.

        Raises :class:`LockedError` naming a live holder. ``resuming_run``: the run id this
        invocation resumes (only changes what the refusal says)."""
        for _ in range(ACQUIRE_ATTEMPTS):
            try:
                actions.put_parameter(self.ssm, self.name, me.to_json(), overwrite=False)
                log.info("lock %s taken by %s", self.name, me.describe())
                return None
            except ClientError as exc:
                if probes.error_code(exc) != "ParameterAlreadyExists":
                    self._raise_unless_mine(me, exc)
                    return None
            except BotoCoreError as exc:
                self._raise_unless_mine(me, exc)
                return None
            current = self.holder()
            if current is None:        # released between our put and our read: try again
                continue
            if current.is_(me):
                # Our own create, retried after its answer was lost: the first attempt did
                # succeed.
                log.info("lock %s taken by %s", self.name, me.describe())
                return None
            if not current.is_stale():
                raise LockedError(self._refusal(current, resuming_run))
            self._take_over(me, current)
            return current
        raise LockedError(f"the lock {self.name} was created and removed {ACQUIRE_ATTEMPTS} "
                          "times while this run tried to take it: another run is starting. "
                          "Nothing was changed")

    def _raise_unless_mine(self, me: LockHolder, exc: Exception) -> None:
        """The create's outcome is unknown (an error other than 'exists'): it may have been
        applied with its answer lost. The lock is ours only if the re-read says so."""
        current = self._holder_if_readable()
        if current is not None and current.is_(me):
            log.info("lock %s taken by %s (the answer to its creation was lost: %s)",
                     self.name, me.describe(), exc)
            return
        raise exc

    def _take_over(self, me: LockHolder, stale: LockHolder) -> None:
        fresh = replace(me, heartbeat_at=_now())
        actions.put_parameter(self.ssm, self.name, fresh.to_json(), overwrite=True)
        after = self.holder()
        if after is None or not after.is_(me):
            raise LockedError(f"lost the takeover of {self.name} to "
                              f"{after.describe() if after else 'a release'}. "
                              "Nothing was changed")
        log.warning("lock %s taken over from %s: its holder is gone", self.name,
                    stale.describe())

    def _refusal(self, current: LockHolder, resuming_run: str | None) -> str:
        if resuming_run is not None and current.run_id == resuming_run:
            return (f"the run {current.run_id} is still alive: it holds the lock {self.name}: "
                    f"{current.describe()}. Wait for it, or stop it; --resume takes over only "
                    "once its heartbeat is stale. Nothing was changed")
        return (f"another {self.operation} run holds the lock {self.name}: {current.describe()}. "
                f"If its process is gone, the next run takes the lock over once it is stale; "
                "if that run crashed part-way, continue it with --resume. Nothing was changed")

    def remove_stale(self, stale: LockHolder) -> Release:
        """Delete a stale lock that no run needs any more (best effort, never raises)."""
        current = self._holder_if_readable()
        if current is None or current.token != stale.token or not current.is_stale():
            return Release(False, "the lock changed meanwhile: left in place")
        return self._delete()

    def _delete(self) -> Release:
        try:
            self.ssm.delete_parameter(Name=self.name)
        except (ClientError, BotoCoreError) as exc:
            if isinstance(exc, ClientError) and probes.error_code(exc) == "ParameterNotFound":
                return Release(True)       # an earlier attempt's answer was lost
            try:
                still = self.holder()
            except (ClientError, BotoCoreError):
                return Release(False, f"{exc}")
            if still is None:              # applied, answer lost
                return Release(True)
            return Release(False, f"{exc}")
        return Release(True)

    def start_heartbeat(self, me: LockHolder, on_lost: Callable[[], None] | None = None
                        ) -> None:
        """Renew the lease every ``me.heartbeat_seconds`` until :meth:`stop_heartbeat`.

        ``on_lost`` is called once when the lease is no longer this run's: another run took it
        over (this process stalled past the stale threshold), or renewals have failed for
        ``STALE_HEARTBEATS - 1`` intervals, after which another run may take it over any moment.
        Either way the run must stop."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, args=(me, on_lost), daemon=True,
                                        name=f"{self.operation}-lock-heartbeat")
        self._thread.start()

    def _lose(self, reason: str, on_lost: Callable[[], None] | None) -> None:
        self.lost, self.lost_reason = True, reason
        log.error("lock %s: %s; stopping this run", self.name, reason)
        if on_lost is not None:
            on_lost()

    def _beat(self, me: LockHolder, on_lost: Callable[[], None] | None) -> None:
        renewed_at = time.monotonic()
        while not self._stop.wait(me.heartbeat_seconds):
            try:
                found = probes.read_parameter_version(self.ssm, self.name)
                current = None if found is None else LockHolder.parse(found[0], found[1])
                if current is None or not current.is_(me):
                    self._lose(f"is no longer ours (now "
                               f"{current.describe() if current else 'released'})", on_lost)
                    return
                renewed = replace(current, heartbeat_at=_now(), written_at="")
                written = actions.put_parameter(self.ssm, self.name, renewed.to_json(),
                                                overwrite=True)
                read = None if found is None else found[2]
                between = _written_between(read, written)
                if between is not None:
                    # A takeover's record is put back, and this run stops; an empty range
                    # (the lock was deleted and this renewal created it anew) stops it too.
                    taken = self._restore_overwritten(me, between)
                    if taken is not None:
                        self._lose(taken, on_lost)
                        return
                renewed_at = time.monotonic()
            except (ClientError, BotoCoreError) as exc:
                silent = time.monotonic() - renewed_at
                if silent >= (STALE_HEARTBEATS - 1) * me.heartbeat_seconds:
                    self._lose(f"could not be renewed for {silent:.0f} s ({exc}); another run "
                               f"may take it over after {me.stale_after:.0f} s", on_lost)
                    return
                log.warning("could not renew the lock %s (will retry): %s", self.name, exc)

    def _restore_overwritten(self, me: LockHolder, versions: range) -> str | None:
        """This run's renewal was written after ``versions``, which came after this run read
        the lock. Versions that hold this run's own record were its own retried attempts;
        another run's record (the newest, if several) is written back. Returns why this run's
        lease is lost, or None when every version in between was this run's."""
        try:
            theirs: tuple[str, LockHolder] | None = None
            for version in versions:
                found = probes.read_parameter_version(self.ssm, f"{self.name}:{version}")
                if found is None:
                    return "was written by another process during this run's renewal"
                holder = LockHolder.parse(found[0], found[1])
                if not holder.is_(me):
                    theirs = (found[0], holder)
            if theirs is None:
                return None if versions else "was deleted and written anew during this " \
                    "run's renewal"
            actions.put_parameter(self.ssm, self.name, theirs[0], overwrite=True)
            return (f"is no longer ours (taken over by {theirs[1].describe()} during this "
                    "run's renewal; its record was put back)")
        except (ClientError, BotoCoreError) as exc:
            return (f"was taken over during this run's renewal and the other run's record "
                    f"could not be put back ({exc}); that run stops at its next heartbeat")

    def stop_heartbeat(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def release(self, me: LockHolder) -> Release:
        """Stop renewing; delete the lock when it is still ours. Never raises: a lock that
        cannot be released goes stale and the next run takes it over.

        SSM has no conditional delete, and a run that judged this one stale may take the lock
        over between this run's read and its delete. So the release first writes this run's
        record once more (a last renewal) and compares versions, as the heartbeat does: the
        version SSM gives that write must follow the one read. A version in between that holds
        another run's record is a takeover: its record is put back and the lock is left to
        that run. Only then is the lock deleted.

        What remains (SSM offers nothing narrower): a run that judged the lock stale from a
        read made *before* the last renewal, and whose takeover write and confirming re-read
        both land between that renewal and the delete (one SSM round trip), loses its lock to
        the delete. It is not silent: that run's next heartbeat finds the lock gone and it
        stops (``on_lost``); a run whose re-read comes after the delete refuses the takeover.
        """
        self.stop_heartbeat()
        try:
            found = probes.read_parameter_version(self.ssm, self.name)
        except (ClientError, BotoCoreError) as exc:
            return self._left(me, f"could not read the lock: {exc}")
        if found is None:
            return Release(True)
        current = LockHolder.parse(found[0], found[1])
        if not current.is_(me):
            log.warning("lock %s is held by %s, not by this run: left in place", self.name,
                        current.describe())
            return Release(False, f"held by {current.describe()}, not by this run")
        taken = self._last_renewal(me, current, found[2])
        if taken is not None:
            log.warning("lock %s: left in place: %s", self.name, taken)
            return Release(False, taken)
        result = self._delete()
        if result.released:
            log.info("lock %s released", self.name)
        else:
            self._left(me, result.error or "the delete failed")
        return result

    def _left(self, me: LockHolder, why: str) -> Release:
        log.warning("could not release the lock %s: %s; it goes stale %.0f s after this run's "
                    "last heartbeat and the next run takes it over", self.name, why,
                    me.stale_after)
        return Release(False, why)

    def _last_renewal(self, me: LockHolder, current: LockHolder, read: int | None
                      ) -> str | None:
        """Write this run's record once more and check that nothing came between the read
        (version ``read``) and this write. Returns why the lock must be left in place, or None
        when the lock is this run's to delete."""
        renewed = replace(current, heartbeat_at=_now(), written_at="")
        try:
            written = actions.put_parameter(self.ssm, self.name, renewed.to_json(),
                                            overwrite=True)
        except (ClientError, BotoCoreError) as exc:
            # Applied or not (its answer may be lost): the newest version tells. Ours: compare
            # versions up to it as for a write that answered; another run's: it holds the lock.
            try:
                found = probes.read_parameter_version(self.ssm, self.name)
            except (ClientError, BotoCoreError):
                return f"the last renewal before the delete failed ({exc})"
            if found is None:
                return None      # deleted meanwhile (remove_stale after a takeover and release)
            now = LockHolder.parse(found[0], found[1])
            if not now.is_(me):
                return f"held by {now.describe()}, not by this run"
            written = found[2]
        if written is not None and written == read:
            return None          # the last renewal was not applied: nothing came between
        between = _written_between(read, written)
        if not between:          # version 1 alone (a lock created anew) is this write's own
            return None
        return self._restore_overwritten(me, between)


def _written_between(read: int | None, written: int | None) -> range | None:
    """The versions written between a read of the lock (version ``read``) and this run's
    write of it (``written``); None when the write came right after the read or either version
    is unknown. SSM has no conditional write: a version in between is either this run's own
    earlier attempt (botocore retried a put whose answer was lost) or another run's takeover of
    a lock it judged stale. A ``written`` below ``read``: the lock was deleted and created anew
    meanwhile, so the versions in between start at 1."""
    if read is None or written is None or written == read + 1:
        return None
    return range(read + 1 if written > read else 1, written)


def _places(seconds: float) -> int:
    """Decimals for a duration in a message: a sub-10-second lease (tests, drills) printed as
    "stale after 0 s" hid that it was not stale yet."""
    return 0 if abs(seconds) >= 10 else 1
