"""What one invocation asked for, and the timing knobs (flags override environment)."""

from __future__ import annotations

import argparse
import math
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from caresync_dr.failover.errors import UsageError
from caresync_dr.operations.lock import DEFAULT_LOCK_HEARTBEAT_SECONDS, LOCK_HEARTBEAT_RANGE
from caresync_dr.operations.polling import PollPolicy

Scope = Literal["region", "database"]
Mode = Literal["run", "check", "dry-run"]

# Environment knobs, mainly for drills against an emulator (docs/failover-reference.md, "Knobs").
ENV_POLL = "CARESYNC_DR_POLL_SECONDS"
ENV_POLL_MAX = "CARESYNC_DR_POLL_MAX_SECONDS"
ENV_WAIT_TIMEOUT = "CARESYNC_DR_WAIT_TIMEOUT_SECONDS"
ENV_VERIFY_TIMEOUT = "CARESYNC_DR_VERIFY_TIMEOUT_SECONDS"
ENV_HEALTH_URL = "CARESYNC_DR_HEALTH_URL"
ENV_LOCK_HEARTBEAT = "CARESYNC_DR_LOCK_HEARTBEAT_SECONDS"



def add_timing_arguments(parser: argparse.ArgumentParser) -> None:
    """The failover's timing flags, each over its environment knob (read by
    :func:`timing_from`, which checks them): failover.py and switchover.py."""
    parser.add_argument("--health-url", metavar="URL",
                        help=f"override the public health URL ({ENV_HEALTH_URL})")
    for flag, env in (("--poll-seconds", ENV_POLL), ("--poll-max-seconds", ENV_POLL_MAX),
                      ("--wait-timeout", ENV_WAIT_TIMEOUT),
                      ("--verify-timeout", ENV_VERIFY_TIMEOUT),
                      ("--lock-heartbeat-seconds", ENV_LOCK_HEARTBEAT)):
        parser.add_argument(flag, type=float, metavar="S", help=f"see {env}")


DEFAULT_POLL_SECONDS = 5.0
# Route 53 needs failure_threshold x interval to mark the PRIMARY record unhealthy, resolvers
# then wait out the record TTL: ten minutes covers 3 x 30 s checks plus a 300 s TTL.
DEFAULT_VERIFY_TIMEOUT_SECONDS = 600.0


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
    # The operator's statement of when the primary stopped taking writes (--outage-started):
    # replication is judged as of then, not now. None: judged as of now.
    outage_started: datetime | None = None
    # --adopt-promoted: the target database the operator promoted by hand (RDS console or CLI)
    # before the run; the preflight accepts it as promoted only when it names this direction's
    # target and that is a standalone writer. None: a standalone target is refused.
    adopt_promoted: str | None = None


# Bounds of the timing knobs, in seconds. Each must be a finite number (float("nan") and "inf"
# parse as floats: a NaN interval makes every comparison false, so a wait would never end and a
# NaN lease would never go stale). The lease's range is the engine's (operations/lock.py).
POLL_RANGE = (0.001, 300.0)
TIMEOUT_RANGE = (0.001, 24 * 3600.0)


def seconds_knob(name: str, raw: str | float | None, default: float | None,
                 bounds: tuple[float, float]) -> float | None:
    """A number of seconds from a flag or an environment variable, checked against ``bounds``
    (inclusive). Raises :class:`UsageError` naming the flag, the value and the allowed range."""
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise UsageError(f"{name} must be a number of seconds, got {raw!r}") from exc
    low, high = bounds
    if not math.isfinite(value) or not low <= value <= high:
        raise UsageError(f"{name} must be a finite number of seconds between {low:g} and "
                         f"{high:g}, got {raw!r}")
    return value


def timing_from(poll: float | None, poll_max: float | None, wait_timeout: float | None,
                verify_timeout: float | None, environ: dict[str, str] | None = None, *,
                heartbeat: float | None = None) -> Timing:
    """Flags win over environment variables, which win over defaults."""
    env = dict(os.environ) if environ is None else environ
    poll_s = seconds_knob("--poll-seconds", poll if poll is not None else env.get(ENV_POLL),
                          DEFAULT_POLL_SECONDS, POLL_RANGE)
    assert poll_s is not None
    poll_max_s = seconds_knob("--poll-max-seconds",
                              poll_max if poll_max is not None else env.get(ENV_POLL_MAX),
                              min(poll_s * 4, POLL_RANGE[1]), POLL_RANGE)
    assert poll_max_s is not None
    wait_s = seconds_knob("--wait-timeout",
                          wait_timeout if wait_timeout is not None else env.get(ENV_WAIT_TIMEOUT),
                          None, TIMEOUT_RANGE)
    verify_s = seconds_knob("--verify-timeout", verify_timeout if verify_timeout is not None
                            else env.get(ENV_VERIFY_TIMEOUT), DEFAULT_VERIFY_TIMEOUT_SECONDS,
                            TIMEOUT_RANGE)
    assert verify_s is not None
    heartbeat_s = seconds_knob("--lock-heartbeat-seconds", heartbeat if heartbeat is not None
                               else env.get(ENV_LOCK_HEARTBEAT), DEFAULT_LOCK_HEARTBEAT_SECONDS,
                               LOCK_HEARTBEAT_RANGE)
    assert heartbeat_s is not None
    return Timing(poll_seconds=poll_s, poll_max_seconds=max(poll_s, poll_max_s),
                  wait_timeout_seconds=wait_s, verify_timeout_seconds=verify_s,
                  lock_heartbeat_seconds=heartbeat_s)
