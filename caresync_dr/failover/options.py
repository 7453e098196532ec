"""What one invocation asked for, and the timing knobs (flags override environment)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from caresync_dr.failover.errors import UsageError
from caresync_dr.failover.polling import PollPolicy

Scope = Literal["region", "database"]
Mode = Literal["run", "check", "dry-run"]

# Environment knobs, mainly for drills against an emulator (see README, "During an outage").
ENV_POLL = "CARESYNC_DR_POLL_SECONDS"
ENV_POLL_MAX = "CARESYNC_DR_POLL_MAX_SECONDS"
ENV_WAIT_TIMEOUT = "CARESYNC_DR_WAIT_TIMEOUT_SECONDS"
ENV_VERIFY_TIMEOUT = "CARESYNC_DR_VERIFY_TIMEOUT_SECONDS"
ENV_HEALTH_URL = "CARESYNC_DR_HEALTH_URL"
ENV_LOCK_HEARTBEAT = "CARESYNC_DR_LOCK_HEARTBEAT_SECONDS"

DEFAULT_POLL_SECONDS = 5.0
# Route 53 needs failure_threshold x interval to mark the PRIMARY record unhealthy, resolvers
# then wait out the record TTL: ten minutes covers 3 x 30 s checks plus a 300 s TTL.
DEFAULT_VERIFY_TIMEOUT_SECONDS = 600.0
# The lock's lease: renewed this often; --resume takes over after 3 missed renewals.
DEFAULT_LOCK_HEARTBEAT_SECONDS = 10.0


@dataclass(frozen=True)
class Timing:
    """How often to re-read state while waiting, and how long each wait may take."""

    poll_seconds: float
    poll_max_seconds: float
    wait_timeout_seconds: float | None   # None: the stack's RTO
    verify_timeout_seconds: float
    lock_heartbeat_seconds: float = DEFAULT_LOCK_HEARTBEAT_SECONDS

    def policy(self, timeout: float) -> PollPolicy:
        return PollPolicy(interval=self.poll_seconds, max_interval=self.poll_max_seconds,
                          timeout=timeout)


@dataclass(frozen=True)
class RunOptions:
    stack: str
    scope: Scope
    mode: Mode
    yes: bool
    resume: bool
    force: bool
    inventory_file: Path | None
    report: Path | None
    journal_file: Path
    health_url: str | None
    timing: Timing


def _positive(name: str, raw: str | float | None, default: float | None) -> float | None:
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise UsageError(f"{name} must be a number of seconds, got {raw!r}") from exc
    if value <= 0:
        raise UsageError(f"{name} must be greater than 0, got {raw!r}")
    return value


def timing_from(poll: float | None, poll_max: float | None, wait_timeout: float | None,
                verify_timeout: float | None, environ: dict[str, str] | None = None, *,
                heartbeat: float | None = None) -> Timing:
    """Flags win over environment variables, which win over defaults."""
    env = dict(os.environ) if environ is None else environ
    poll_s = _positive("--poll-seconds", poll if poll is not None else env.get(ENV_POLL),
                       DEFAULT_POLL_SECONDS)
    assert poll_s is not None
    poll_max_s = _positive("--poll-max-seconds",
                           poll_max if poll_max is not None else env.get(ENV_POLL_MAX),
                           poll_s * 4)
    assert poll_max_s is not None
    wait_s = _positive("--wait-timeout",
                       wait_timeout if wait_timeout is not None else env.get(ENV_WAIT_TIMEOUT),
                       None)
    verify_s = _positive("--verify-timeout", verify_timeout if verify_timeout is not None
                         else env.get(ENV_VERIFY_TIMEOUT), DEFAULT_VERIFY_TIMEOUT_SECONDS)
    assert verify_s is not None
    heartbeat_s = _positive("--lock-heartbeat-seconds", heartbeat if heartbeat is not None
                            else env.get(ENV_LOCK_HEARTBEAT), DEFAULT_LOCK_HEARTBEAT_SECONDS)
    assert heartbeat_s is not None
    return Timing(poll_seconds=poll_s, poll_max_seconds=max(poll_s, poll_max_s),
                  wait_timeout_seconds=wait_s, verify_timeout_seconds=verify_s,
                  lock_heartbeat_seconds=heartbeat_s)
