"""``notify.py --test``: does each configured channel reach its audience right now?

Chat and e-mail get a test message ("No action needed"). The status page is only read -- the
page and each configured component, with the API key -- because a test must never open a
public incident. The answer is per channel: sent (and where), failed (and why), or not
configured (and why).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import boto3

from caresync_dr.aws import STANDBY, AwsClients
from caresync_dr.notify.email import TopicTarget
from caresync_dr.notify.notifier import Incident, Notifier
from caresync_dr.notify.setup import alert_topic_arn, build_channels, operator_name
from caresync_dr.notify.statuspage import StatusPageChannel
from caresync_dr.notify.templates import load_templates
from caresync_dr.settings import NOTIFY_CHANNELS, Settings

TEST_SECONDS = 30.0     # what the test waits for the channels, at most


def account_of(settings: Settings, session: boto3.Session) -> tuple[str, str]:
    """(partition, account id) of the caller, asked in the standby region."""
    arn = AwsClients(settings.standby_region, STANDBY, session).sts().get_caller_identity()[
        "Arn"]
    parts = arn.split(":")
    return parts[1], parts[4]


def try_channels(settings: Settings, *, only: Sequence[str] = (),
                  session: boto3.Session | None = None,
                  environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Test the channels ``notifyChannels`` enables (or ``only`` those). Returns
    ``{"channels": {name: {"status", "detail"}}, "ok": bool, ...}``; never raises for a
    channel's failure (AWS errors reading the caller's identity propagate: the command maps
    them)."""
    session = session or boto3.Session()
    wanted = tuple(only) or settings.notify_channels
    partition, account = account_of(settings, session)
    topics = [(settings.standby_region, "standby"), (settings.primary_region, "primary")]
    targets = [TopicTarget(region, alert_topic_arn(partition, region, account, site))
               for region, site in topics]
    now = datetime.now(UTC)
    key = now.strftime("test-%Y%m%dT%H%M%SZ")
    channels, missing = build_channels(settings, key, targets, session=session, environ=environ,
                                       secret_regions=(settings.standby_region,
                                                       settings.primary_region))
    results: dict[str, dict[str, str]] = {}
    for name in NOTIFY_CHANNELS:
        if name not in wanted:
            continue
        if name not in settings.notify_channels:
            results[name] = {"status": "not configured",
                             "detail": f"notifyChannels of stack {settings.stack} does not "
                                       "enable it"}
        elif name in missing:
            results[name] = {"status": "not configured", "detail": missing[name]}
    page = next((c for c in channels if isinstance(c, StatusPageChannel)), None)
    if page is not None and "statuspage" in wanted:
        checked = page.check()
        results["statuspage"] = {"status": checked.status,
                                 "detail": checked.detail + " (read only: nothing posted)"}
    messengers = [c for c in channels if c.name in ("chat", "email") and c.name in wanted]
    notifier = Notifier(Incident(key=key, kind="notify-test", stack=settings.stack,
                                 started_at=now, operator=operator_name()),
                        load_templates(), settings.escalation_tiers, messengers)
    notifier.send_test()
    report = notifier.close(TEST_SECONDS)
    for delivery in report["deliveries"]:
        results[delivery["channel"]] = {"status": delivery["status"],
                                        "detail": delivery["detail"]}
    ok = bool(results) and all(r["status"] == "sent" for r in results.values())
    return {"stack": settings.stack, "channels": dict(sorted(results.items())), "ok": ok,
            "message": report["messages"][0] if report["messages"] else None}


def render_results(result: Mapping[str, Any]) -> str:
    lines = [f"notification channels of stack {result['stack']}:"]
    for name, outcome in result["channels"].items():
        lines.append(f"  {name:<11} {outcome['status']:<15} {outcome['detail']}")
    return "\n".join(lines)
