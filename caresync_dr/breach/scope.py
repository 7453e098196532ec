"""Investigate: what the compromised principals and database roles did in the window.

Two record sources, each read where it lives (the seed's "identify breach scope" and "audit
access logs"):

* **CloudTrail**, from each reachable site's trail log group in CloudWatch Logs
  (``FilterLogEvents`` with a JSON pattern on the principal): management events *and* the S3
  data events (which buckets, which objects). CloudTrail ``LookupEvents`` (90 days of management
  events, no data events) is read as a second source for access keys and users, so the scope is
  not empty for a window older than the log group's retention.
* **The database audit log**: pgAudit's lines in the writer's PostgreSQL log group
  (``/aws/rds/instance/<id>/postgresql``): per role, statements by class and command, the PHI
  tables touched and, where pgAudit logged them, the rows.

Every source that cannot be read (a region down, no log group, throttled) is named in the
report as "not read" with the reason: a scope is never silently partial.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_cloudtrail import CloudTrailClient
    from mypy_boto3_logs import CloudWatchLogsClient

MAX_EVENTS = 20_000   # per principal and source; the report says when it stopped there


@dataclass(frozen=True)
class Principal:
    """One thing to look for in CloudTrail: its kind, its name and the filter pattern."""

    kind: str    # access-key, iam-user, iam-role
    name: str

    @property
    def pattern(self) -> str:
        if self.kind == "access-key":
            return f'{{ $.userIdentity.accessKeyId = "{self.name}" }}'
        if self.kind == "iam-user":
            return (f'{{ ($.userIdentity.type = "IAMUser") && '
                    f'($.userIdentity.userName = "{self.name}") }}')
        return f'{{ $.userIdentity.sessionContext.sessionIssuer.userName = "{self.name}" }}'

    def matches(self, record: dict[str, Any]) -> bool:
        identity = record.get("userIdentity") or {}
        if self.kind == "access-key":
            return bool(identity.get("accessKeyId") == self.name)
        if self.kind == "iam-user":
            return bool(identity.get("type") == "IAMUser"
                        and identity.get("userName") == self.name)
        issuer = (identity.get("sessionContext") or {}).get("sessionIssuer") or {}
        return bool(issuer.get("userName") == self.name)

    @property
    def lookup_attribute(self) -> dict[str, str] | None:
        if self.kind == "access-key":
            return {"AttributeKey": "AccessKeyId", "AttributeValue": self.name}
        if self.kind == "iam-user":
            return {"AttributeKey": "Username", "AttributeValue": self.name}
        return None


@dataclass
class Activity:
    """What one principal did, aggregated over every record read."""

    events: int = 0
    first: str | None = None
    last: str | None = None
    by_event: Counter[str] = field(default_factory=Counter)
    by_region: Counter[str] = field(default_factory=Counter)
    source_ips: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    buckets: Counter[str] = field(default_factory=Counter)
    objects: set[str] = field(default_factory=set)
    seen_ids: set[str] = field(default_factory=set)

    def add(self, record: dict[str, Any]) -> None:
        event_id = str(record.get("eventID") or "")
        if event_id and event_id in self.seen_ids:
            return      # the same event from two sources
        if event_id:
            self.seen_ids.add(event_id)
        self.events += 1
        when = str(record.get("eventTime") or "")
        if when:
            self.first = min(self.first or when, when)
            self.last = max(self.last or when, when)
        self.by_event[f"{record.get('eventSource', '?')}:{record.get('eventName', '?')}"] += 1
        self.by_region[str(record.get("awsRegion", "?"))] += 1
        self.source_ips[str(record.get("sourceIPAddress", "?"))] += 1
        if record.get("errorCode"):
            self.errors[str(record["errorCode"])] += 1
        params = record.get("requestParameters") or {}
        bucket = params.get("bucketName") if isinstance(params, dict) else None
        if bucket:
            self.buckets[str(bucket)] += 1
            key = params.get("key")
            if key:
                self.objects.add(f"s3://{bucket}/{key}")

    def as_report(self) -> dict[str, Any]:
        return {"events": self.events, "first": self.first, "last": self.last,
                "apis": dict(self.by_event.most_common()),
                "regions": dict(self.by_region), "sourceIps": dict(self.source_ips),
                "errors": dict(self.errors), "buckets": dict(self.buckets),
                "objects": sorted(self.objects)[:1000], "objectCount": len(self.objects)}


@dataclass
class SourceRead:
    source: str
    read: bool
    records: int = 0
    truncated: bool = False
    reason: str = ""


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def trail_records(logs: CloudWatchLogsClient, group: str, principal: Principal,
                  start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
    """The principal's CloudTrail records in a trail's log group (newest delivery first is
    not guaranteed; the aggregation does not care)."""
    kwargs: dict[str, Any] = {"logGroupName": group, "filterPattern": principal.pattern,
                              "startTime": _ms(start), "endTime": _ms(end)}
    while True:
        page = logs.filter_log_events(**kwargs)
        for event in page.get("events", []):
            try:
                record = json.loads(event["message"])
            except (json.JSONDecodeError, KeyError):
                continue
            if isinstance(record, dict) and principal.matches(record):
                yield record
        token = page.get("nextToken")
        if not token or token == kwargs.get("nextToken"):
            return
        kwargs["nextToken"] = token


def lookup_records(cloudtrail: CloudTrailClient, principal: Principal, start: datetime,
                   end: datetime) -> Iterator[dict[str, Any]]:
    attribute = principal.lookup_attribute
    if attribute is None:
        return
    kwargs: dict[str, Any] = {"LookupAttributes": [attribute], "StartTime": start,
                              "EndTime": end, "MaxResults": 50}
    while True:
        page = cloudtrail.lookup_events(**kwargs)
        for event in page.get("Events", []):
            try:
                record = json.loads(event.get("CloudTrailEvent") or "{}")
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield record
        token = page.get("NextToken")
        if not token:
            return
        kwargs["NextToken"] = token


def _collect(activity: Activity, records: Iterator[dict[str, Any]], source: str) -> SourceRead:
    count = 0
    try:
        for record in records:
            activity.add(record)
            count += 1
            if count >= MAX_EVENTS:
                return SourceRead(source, True, count, truncated=True,
                                  reason=f"stopped at {MAX_EVENTS} records")
    except (ClientError, BotoCoreError) as exc:
        return SourceRead(source, count > 0, count, reason=f"{type(exc).__name__}: {exc}")
    return SourceRead(source, True, count)


@dataclass(frozen=True)
class TrailSource:
    """Where one site's CloudTrail records can be read."""

    region: str
    log_group: str
    logs: CloudWatchLogsClient | None
    cloudtrail: CloudTrailClient | None
    unreachable: str = ""


def principal_scope(principal: Principal, sources: Sequence[TrailSource], start: datetime,
                    end: datetime) -> dict[str, Any]:
    activity = Activity()
    reads: list[SourceRead] = []
    for source in sources:
        if source.logs is None or source.cloudtrail is None:
            reads.append(SourceRead(f"{source.region} trail logs", False,
                                    reason=source.unreachable or "region unreachable"))
            continue
        reads.append(_collect(activity, trail_records(source.logs, source.log_group, principal,
                                                      start, end),
                              f"{source.region} {source.log_group}"))
        if principal.lookup_attribute is not None:
            reads.append(_collect(activity, lookup_records(source.cloudtrail, principal, start,
                                                           end),
                                  f"{source.region} CloudTrail LookupEvents"))
    return {"principal": {"kind": principal.kind, "name": principal.name},
            **activity.as_report(),
            "sources": [{"source": r.source, "read": r.read, "records": r.records,
                         "truncated": r.truncated, "reason": r.reason} for r in reads]}


# --- the database audit log ---------------------------------------------------------------------

# RDS's log_line_prefix is "%t:%r:%u@%d:[%p]:" (the drill's servers use %m): the user and the
# database sit between the client and the pid.
_AUDIT_LINE = re.compile(r":(?P<user>[^:@\s]*)@(?P<db>[^:\s]*):\[(?P<pid>\d+)\]:"
                         r"(?:\w+):\s+AUDIT: (?P<csv>.*)$")


@dataclass
class RoleActivity:
    statements: Counter[str] = field(default_factory=Counter)      # CLASS,COMMAND
    tables: Counter[str] = field(default_factory=Counter)          # object name -> statements
    rows: Counter[str] = field(default_factory=Counter)            # object name -> rows logged
    lines: int = 0

    def as_report(self, phi_tables: Sequence[str]) -> dict[str, Any]:
        phi = {t: {"statements": self.tables[t], "rows": self.rows.get(t)}
               for t in sorted(self.tables) if t in phi_tables}
        return {"auditLines": self.lines, "statements": dict(self.statements.most_common()),
                "tables": dict(self.tables.most_common()), "phiTables": phi,
                "rowsLogged": bool(self.rows)}


def parse_audit_line(line: str) -> tuple[str, list[str]] | None:
    """(role, pgAudit fields) of one PostgreSQL log line, or None if it is no audit line.
    Fields: AUDIT_TYPE, STATEMENT_ID, SUBSTATEMENT_ID, CLASS, COMMAND, OBJECT_TYPE, OBJECT_NAME,
    STATEMENT, PARAMETER and, with ``pgaudit.log_rows``, ROWS."""
    match = _AUDIT_LINE.search(line)
    if match is None:
        return None
    fields = next(csv.reader([match.group("csv")]), [])
    return (match.group("user"), fields) if len(fields) >= 7 else None


def database_scope(lines: Iterator[str], roles: Sequence[str],
                   phi_tables: Sequence[str]) -> dict[str, Any]:
    """Aggregate pgAudit lines of ``roles``: statements by class and command (each statement
    once, by its id and pid), tables touched, rows where logged."""
    per_role: dict[str, RoleActivity] = {role: RoleActivity() for role in roles}
    seen: set[tuple[str, str, str]] = set()
    for line in lines:
        parsed = parse_audit_line(line)
        if parsed is None or parsed[0] not in per_role:
            continue
        role, fields = parsed
        activity = per_role[role]
        activity.lines += 1
        statement_key = (role, fields[1], line.split("[", 1)[-1].split("]", 1)[0])
        if statement_key not in seen:
            seen.add(statement_key)
            activity.statements[f"{fields[3]} {fields[4]}"] += 1
        if fields[6]:
            activity.tables[fields[6]] += 1
            if len(fields) >= 10 and fields[9].isdigit():
                activity.rows[fields[6]] += int(fields[9])
    return {role: a.as_report(phi_tables) for role, a in per_role.items()}


def log_group_lines(logs: CloudWatchLogsClient, group: str, start: datetime,
                    end: datetime) -> Iterator[str]:
    """pgAudit lines of a PostgreSQL log group in the window."""
    kwargs: dict[str, Any] = {"logGroupName": group, "filterPattern": '"AUDIT:"',
                              "startTime": _ms(start), "endTime": _ms(end)}
    while True:
        page = logs.filter_log_events(**kwargs)
        for event in page.get("events", []):
            yield str(event.get("message", ""))
        token = page.get("nextToken")
        if not token or token == kwargs.get("nextToken"):
            return
        kwargs["nextToken"] = token
