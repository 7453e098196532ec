"""What the operator says is compromised, checked for form before anything is read from AWS.

Each identifier must look like what it names (an access key id, an IAM name, an instance id, a
PostgreSQL role), times need a time zone, the window must make sense, and at least one thing
must be named. Every problem is a :class:`UsageError` (exit 2) naming the flag and the value;
nothing has been read or changed. Whether the things *exist* is checked next, by
:mod:`caresync_dr.breach.resolve`, still before the first change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from caresync_dr.breach.hipaa import HipaaClock
from caresync_dr.cli.errors import UsageError
from caresync_dr.instants import BadTimeError, utc_instant

# IAM: AKIA (long-term user keys) and ASIA (temporary credentials) + 16 upper-case letters or
# digits (IAM user guide, "Unique identifiers").
_ACCESS_KEY = re.compile(r"(AKIA|ASIA)[A-Z0-9]{16}")
# IAM user and role names: 1-64 of letters, digits and +=,.@_- (IAM API CreateUser/CreateRole).
_IAM_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
_INSTANCE = re.compile(r"i-[0-9a-f]{8}([0-9a-f]{9})?")
# PostgreSQL identifiers as the roles are created here (lowercase, unquoted).
_DB_ROLE = re.compile(r"[a-z_][a-z0-9_$]{0,62}")
_INCIDENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{2,63}")
CLOCK_SKEW = timedelta(minutes=5)
DEFAULT_WINDOW = timedelta(days=7)


def parse_time(flag: str, value: str, now: datetime) -> datetime:
    """An ISO 8601 time with a zone, not in the future beyond clock skew; in UTC."""
    try:
        when = utc_instant(value)
    except BadTimeError as exc:
        raise UsageError(f"{flag} {value!r} {exc}") from None
    if when > now + CLOCK_SKEW:
        raise UsageError(f"{flag} {value!r} is in the future")
    return when


def _each(flag: str, values: Sequence[str], pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    seen: list[str] = []
    for value in values:
        if not pattern.fullmatch(value):
            raise UsageError(f"{flag} {value!r} is not {what}")
        if value not in seen:
            seen.append(value)
    return tuple(seen)


@dataclass(frozen=True)
class Compromised:
    """What the operator names as compromised (each tuple without repeats)."""

    access_keys: tuple[str, ...] = ()
    iam_users: tuple[str, ...] = ()
    iam_roles: tuple[str, ...] = ()
    instances: tuple[str, ...] = ()
    db_roles: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.access_keys or self.iam_users or self.iam_roles or self.instances
                    or self.db_roles)

    def as_report(self) -> dict[str, list[str]]:
        return {"accessKeys": list(self.access_keys), "iamUsers": list(self.iam_users),
                "iamRoles": list(self.iam_roles), "instances": list(self.instances),
                "dbRoles": list(self.db_roles)}


@dataclass(frozen=True)
class Incident:
    """The incident: its id, when it was discovered, the window to investigate, what is
    compromised, and the HIPAA clock."""

    incident_id: str
    discovered_at: datetime
    window_start: datetime
    window_end: datetime
    compromised: Compromised
    clock: HipaaClock
    phi_buckets: tuple[str, ...] = field(default=())

    def as_report(self) -> dict[str, object]:
        return {"incidentId": self.incident_id,
                "discoveredAt": self.discovered_at.isoformat(),
                "window": {"start": self.window_start.isoformat(),
                           "end": self.window_end.isoformat()},
                "compromised": self.compromised.as_report(),
                "extraPhiBuckets": list(self.phi_buckets)}


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def incident_from(*, incident_id: str | None, discovered: str | None, window_start: str | None,
                  window_end: str | None, access_keys: Sequence[str], iam_users: Sequence[str],
                  iam_roles: Sequence[str], instances: Sequence[str], db_roles: Sequence[str],
                  affected: int | None, largest_state: int | None,
                  phi_buckets: Sequence[str] = (), now: datetime | None = None,
                  require_compromised: bool = True, id_flag: str = "--incident") -> Incident:
    """Check the operator's input; raises :class:`UsageError` naming the first problem
    (``id_flag``: the option that gave ``incident_id``)."""
    now = now or datetime.now(UTC)
    compromised = Compromised(
        access_keys=_each("--access-key", access_keys, _ACCESS_KEY,
                          "an access key id (AKIA or ASIA and 16 letters or digits)"),
        iam_users=_each("--iam-user", iam_users, _IAM_NAME, "an IAM user name"),
        iam_roles=_each("--iam-role", iam_roles, _IAM_NAME, "an IAM role name (not an ARN)"),
        instances=_each("--instance", instances, _INSTANCE, "an EC2 instance id (i-...)"),
        db_roles=_each("--db-role", db_roles, _DB_ROLE, "a PostgreSQL role name"))
    if require_compromised and compromised.empty:
        raise UsageError("name what is compromised: --access-key, --iam-user, --iam-role, "
                         "--instance or --db-role (at least one)")
    discovered_at = parse_time("--discovered", discovered, now) if discovered else now
    end = parse_time("--window-end", window_end, now) if window_end else now
    start = (parse_time("--window-start", window_start, now) if window_start
             else discovered_at - DEFAULT_WINDOW)
    if start >= end:
        raise UsageError(f"--window-start {start.isoformat()} is not before --window-end "
                         f"{end.isoformat()}")
    if incident_id is not None and not _INCIDENT.fullmatch(incident_id):
        raise UsageError(f"{id_flag} {incident_id!r}: 3-64 letters, digits, '.', '_' or '-'")
    for flag, value in (("--affected", affected), ("--largest-state", largest_state)):
        if value is not None and value < 0:
            raise UsageError(f"{flag} {value} cannot be negative")
    if affected is not None and largest_state is not None and largest_state > affected:
        raise UsageError(f"--largest-state {largest_state} exceeds --affected {affected}")
    buckets = _each("--phi-bucket", phi_buckets, _BUCKET, "an S3 bucket name")
    return Incident(
        incident_id=incident_id or f"breach-{discovered_at:%Y%m%dT%H%MZ}",
        discovered_at=discovered_at, window_start=start, window_end=end,
        compromised=compromised,
        clock=HipaaClock(discovered_at=discovered_at, affected=affected,
                         largest_state=largest_state),
        phi_buckets=buckets)
