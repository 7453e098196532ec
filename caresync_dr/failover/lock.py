"""The failover lock: one SSM parameter in the standby region, created atomically.

``PutParameter(Overwrite=False)`` either creates the parameter or fails with
ParameterAlreadyExists, so two operators cannot both hold it. A crashed run leaves it behind;
``--resume`` of that same run (same run id, from the journal) takes it over.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from caresync_dr.failover import actions, probes
from caresync_dr.failover.errors import LockedError

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LockHolder:
    holder: str        # user@host
    pid: int
    started_at: str    # ISO 8601, UTC
    run_id: str

    @classmethod
    def me(cls, run_id: str) -> LockHolder:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "unknown"
        return cls(holder=f"{user}@{socket.gethostname()}", pid=os.getpid(),
                   started_at=datetime.now(UTC).isoformat(timespec="seconds"), run_id=run_id)

    def to_json(self) -> str:
        return json.dumps({"holder": self.holder, "pid": self.pid,
                           "startedAt": self.started_at, "runId": self.run_id}, sort_keys=True)

    @classmethod
    def parse(cls, text: str) -> LockHolder:
        try:
            data = json.loads(text)
            return cls(holder=str(data["holder"]), pid=int(data["pid"]),
                       started_at=str(data["startedAt"]), run_id=str(data["runId"]))
        except (ValueError, KeyError, TypeError):
            return cls(holder=f"unreadable lock content {text[:80]!r}", pid=0,
                       started_at="unknown", run_id="unknown")

    def describe(self) -> str:
        return (f"{self.holder} (pid {self.pid}), started {self.started_at}, "
                f"run {self.run_id}")


class FailoverLock:
    def __init__(self, ssm: SSMClient, name: str) -> None:
        self.ssm = ssm
        self.name = name

    def holder(self) -> LockHolder | None:
        text = probes.read_parameter(self.ssm, self.name)
        return None if text is None else LockHolder.parse(text)

    def acquire(self, me: LockHolder, take_over_run: str | None = None) -> None:
        """Take the lock, or raise :class:`LockedError` naming the holder.

        ``take_over_run``: the run id of a crashed run being resumed; its stale lock is replaced.
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
        if current.run_id == me.run_id and current.pid == me.pid:
            # Our own create, retried after its response was lost (throttling, a timeout):
            # the first attempt did succeed.
            log.info("lock %s taken by %s", self.name, me.describe())
            return
        if take_over_run is not None and current.run_id == take_over_run:
            actions.put_parameter(self.ssm, self.name, me.to_json(), overwrite=True)
            log.info("lock %s taken over from crashed run %s", self.name, current.run_id)
            return
        hint = ("" if take_over_run is not None else
                "; if that run crashed, continue it with --resume")
        raise LockedError(f"another failover run holds the lock {self.name}: "
                          f"{current.describe()}{hint}")

    def release(self, me: LockHolder) -> None:
        current = self.holder()
        if current is not None and current.run_id == me.run_id and current.pid == me.pid:
            self.ssm.delete_parameter(Name=self.name)
            log.info("lock %s released", self.name)
