"""CloudTrail's records, as CloudTrail delivers them, for an emulator that records nothing.

Real CloudTrail writes a record of every management API call (and of S3 object calls where the
trail selects data events) to the trail's S3 bucket and, when configured, to its CloudWatch Logs
group, in streams named ``<account>_CloudTrail_<region>`` (CloudTrail user guide, "Sending
events to CloudWatch Logs"; record contents: "CloudTrail record contents"); ``LookupEvents``
returns the last 90 days of management events of a region. moto 5.2 keeps trails but records
no event, delivers nothing to CloudWatch Logs and does not implement ``LookupEvents``.

:func:`api_record` builds a record in CloudTrail's format; :class:`TrailDelivery` writes it to a
trail's log group (as CloudTrail would within minutes) and, while armed, answers
``LookupEvents`` from the management records it delivered (as the region's event history).
"""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from moto.cloudtrail.responses import CloudTrailResponse


def _lookup_value(record: dict[str, Any], attribute: str) -> Any:
    """The record's value of a LookupEvents attribute (the ones the breach scope uses)."""
    identity = record.get("userIdentity") or {}
    return {"AccessKeyId": identity.get("accessKeyId"), "Username": identity.get("userName"),
            "EventName": record.get("eventName"),
            "EventSource": record.get("eventSource")}.get(attribute)


def api_record(*, region: str, event_source: str, event_name: str, account: str, user: str,
               access_key: str, when: datetime | None = None, source_ip: str = "203.0.113.7",
               request_parameters: dict[str, Any] | None = None,
               error_code: str | None = None, read_only: bool = True,
               data_event: bool = False) -> dict[str, Any]:
    """One CloudTrail record of a call made by an IAM user's access key."""
    when = when or datetime.now(UTC)
    record: dict[str, Any] = {
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": f"AIDA{user.upper()[:16]}",
                         "arn": f"arn:aws:iam::{account}:user/{user}", "accountId": account,
                         "accessKeyId": access_key, "userName": user},
        "eventTime": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": event_source, "eventName": event_name, "awsRegion": region,
        "sourceIPAddress": source_ip, "userAgent": "aws-cli/2.15 (attacker)",
        "requestParameters": request_parameters or {}, "responseElements": None,
        "requestID": str(uuid.uuid4()), "eventID": str(uuid.uuid4()),
        "readOnly": read_only, "eventType": "AwsApiCall",
        "managementEvent": not data_event, "recipientAccountId": account,
        "eventCategory": "Data" if data_event else "Management"}
    if error_code:
        record["errorCode"] = error_code
        record["errorMessage"] = f"{error_code} (emulated)"
    return record


class TrailDelivery:
    """Delivers records to trail log groups and serves ``LookupEvents`` while armed.

    ``logs_for(region)`` returns a CloudWatch Logs client of that region (the caller's
    session, pointed at the emulator)."""

    def __init__(self, logs_for: Callable[[str], Any]) -> None:
        self.logs_for = logs_for
        self.history: dict[str, list[dict[str, Any]]] = {}   # region -> management records
        self._mutex = threading.Lock()
        self._armed = False

    def deliver(self, record: dict[str, Any], *, trail_region: str, log_group: str) -> None:
        """Write ``record`` to ``log_group`` (in ``trail_region``, the trail's home) and, for a
        management event, to the event history of the record's own region."""
        logs = self.logs_for(trail_region)
        stream = f"{record['recipientAccountId']}_CloudTrail_{record['awsRegion']}"
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_stream(logGroupName=log_group, logStreamName=stream)
        when = datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        logs.put_log_events(logGroupName=log_group, logStreamName=stream, logEvents=[
            {"timestamp": int(when.timestamp() * 1000), "message": json.dumps(record)}])
        if record.get("managementEvent"):
            with self._mutex:
                self.history.setdefault(record["awsRegion"], []).append(record)

    def lookup(self, region: str, attributes: list[dict[str, str]], start: datetime | None,
               end: datetime | None) -> list[dict[str, Any]]:
        with self._mutex:
            records = list(self.history.get(region, []))
        found = []
        for record in records:
            when = datetime.strptime(record["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=UTC)
            if (start and when < start) or (end and when > end):
                continue
            if all(_lookup_value(record, a["AttributeKey"]) == a["AttributeValue"]
                   for a in attributes):
                found.append(record)
        return sorted(found, key=lambda r: r["eventTime"], reverse=True)

    def arm(self) -> TrailDelivery:
        if self._armed:
            return self
        delivery = self

        def lookup_events(response: CloudTrailResponse) -> str:
            def when(key: str) -> datetime | None:
                value = response._get_param(key)
                if value is None:
                    return None
                if isinstance(value, int | float):
                    return datetime.fromtimestamp(float(value), UTC)
                return datetime.fromisoformat(str(value).replace("Z", "+00:00"))

            found = delivery.lookup(response.region,
                                    response._get_param("LookupAttributes") or [],
                                    when("StartTime"), when("EndTime"))
            offset = int(response._get_param("NextToken") or 0)
            size = int(response._get_param("MaxResults") or 50)
            page = found[offset:offset + size]
            answer: dict[str, Any] = {"Events": [{
                "EventId": r["eventID"], "EventName": r["eventName"],
                "ReadOnly": str(r["readOnly"]).lower(),
                "AccessKeyId": r["userIdentity"].get("accessKeyId"),
                "EventTime": datetime.strptime(r["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(
                    tzinfo=UTC).timestamp(),
                "EventSource": r["eventSource"], "Username": r["userIdentity"].get("userName"),
                "Resources": [], "CloudTrailEvent": json.dumps(r)} for r in page]}
            if offset + size < len(found):
                answer["NextToken"] = str(offset + size)
            return json.dumps(answer)

        CloudTrailResponse.lookup_events = lookup_events  # type: ignore[attr-defined]
        self._armed = True
        return self

    def disarm(self) -> None:
        if self._armed:
            del CloudTrailResponse.lookup_events  # type: ignore[attr-defined]
            self._armed = False

    def __enter__(self) -> TrailDelivery:
        return self.arm()

    def __exit__(self, *exc: object) -> None:
        self.disarm()
