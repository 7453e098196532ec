"""The notifier with every channel of the committed settings, against recording doubles and moto:
what each audience is told, that a dead channel costs bounded time and never an exception,
and that a resumed run neither reopens the incident nor opens a second public one."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from caresync_dr.emulation.notify_doubles import (
    ChatDouble,
    SilentServer,
    StatusPageDouble,
    refusing_url,
)
from caresync_dr.notify.email import TopicTarget
from caresync_dr.notify.notifier import Notifier
from caresync_dr.notify.recording import RECORD_ENV, read_recorded
from caresync_dr.notify.secrets import ENV_CHAT_WEBHOOK, ENV_STATUSPAGE_KEY
from caresync_dr.notify.setup import build_notifier, site_topics
from caresync_dr.settings import Settings
from tests.notify.conftest import FakeClock, incident

STANDBY, PRIMARY = "us-west-2", "us-east-1"
# What must never reach users: internal hostnames, run ids, step details, anything personal.
PRIVATE = ("rds.amazonaws.com", "caresync-standby-db", "20261130T021100Z", "s3://",
           "oncall@", "ops-laptop", "patient", "10.20.")


@dataclass
class Bench:
    """Everything a notifier talks to: moto (SNS, Secrets Manager), the doubles, the clock."""

    settings: Settings
    aws: boto3.Session
    chat: ChatDouble
    statuspage: StatusPageDouble
    clock: FakeClock


@pytest.fixture
def aws() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name=STANDBY)


@pytest.fixture
def bench(settings: Settings, aws: boto3.Session, chat: ChatDouble,
          statuspage: StatusPageDouble, clock: FakeClock) -> Bench:
    return Bench(settings, aws, chat, statuspage, clock)


def _topics(aws: boto3.Session) -> list[TopicTarget]:
    targets = []
    for region, site in ((STANDBY, "standby"), (PRIMARY, "primary")):
        arn = aws.client("sns", region_name=region).create_topic(
            Name=f"caresync-{site}-alerts")["TopicArn"]
        targets.append(TopicTarget(region, arn))
    return targets


def _env(chat_url: str, statuspage: StatusPageDouble, record: Path | None = None,
         ) -> dict[str, str]:
    env = {ENV_CHAT_WEBHOOK: chat_url, ENV_STATUSPAGE_KEY: statuspage.api_key}
    if record is not None:
        env[RECORD_ENV] = str(record)
    return env


def _run(notifier: Notifier, clock: FakeClock) -> None:
    """A regional failover as the engine would report it."""
    notifier.open()
    clock.advance(minutes=2)
    notifier.phase("fence-primary-app", "Fence the old primary's app tier", "done",
                   "scaled caresync-primary-app to 0 in 10.20.0.0/16", seconds=1.2,
                   public_status="identified")
    clock.advance(minutes=14)
    notifier.phase("promote-standby-database", "Promote caresync-standby-db", "done",
                   "caresync-standby-db.c9x.us-west-2.rds.amazonaws.com is the writer; "
                   "patient data verified", seconds=312.0)
    notifier.resolve("caresync-standby-db in us-west-2 is the writer; RTO 16 min")


def test_each_audience_is_told_its_own_story(bench: Bench, tmp_path: Path) -> None:
    settings, aws, chat, statuspage, clock = (bench.settings, bench.aws, bench.chat,
                                              bench.statuspage, bench.clock)
    record = tmp_path / "messages.jsonl"
    notifier = build_notifier(settings, incident(), topics=_topics(aws), session=aws,
                              clock=clock, environ=_env(chat.url, statuspage, record))
    _run(notifier, clock)
    report = notifier.close(10)

    assert report["failedDeliveries"] == 0, report["deliveries"]
    assert report["channels"] == {"chat": "configured", "email": "configured",
                                  "statuspage": "configured", "recording": "configured"}
    sent = {(d["channel"], d["event"]) for d in report["deliveries"] if d["ok"]}
    assert {("chat", "opened"), ("chat", "phase"), ("chat", "escalated"), ("chat", "resolved"),
            ("email", "opened"), ("email", "escalated"), ("email", "resolved"),
            ("statuspage", "opened"), ("statuspage", "phase"),
            ("statuspage", "resolved")} <= sent
    assert ("email", "phase") not in sent          # phases go to the chat only (templates)

    # Engineering gets the details, the escalation at 15 min, and the mention.
    texts = [p["text"] for p in chat.posted]
    assert any("caresync-standby-db.c9x.us-west-2.rds.amazonaws.com" in t for t in texts)
    assert any(t.startswith("<@U0TECHLEAD> *[caresync-dr] ESCALATION") for t in texts)
    assert report["engagedTiers"][1]["who"] == "Technical lead"

    # Users get plain language: three updates, nothing private.
    assert statuspage.problems == []
    (public,) = statuspage.incidents.values()
    assert public["status"] == "resolved"
    assert [u["status"] for u in public["incident_updates"]] == ["resolved", "identified",
                                                                 "investigating"]
    for call in statuspage.calls:
        for private in PRIVATE:
            assert private not in json.dumps(call.body), (private, call.body)

    # The drill's view: every message of both audiences, in order.
    recorded = read_recorded(record)
    assert [(m["event"], m["audience"]) for m in recorded][:2] == [("opened", "internal"),
                                                                   ("opened", "external")]
    assert recorded == json.loads(json.dumps(report["messages"]))


def _dead(kind: str) -> tuple[str, SilentServer | None]:
    if kind == "refused":
        return refusing_url(), None
    if kind == "timeout":
        silent = SilentServer()
        return silent.url(), silent
    return "", None


@pytest.mark.parametrize("kind", ["refused", "timeout", "500"])
def test_a_dead_channel_costs_bounded_time_and_is_in_the_report(bench: Bench,
                                                                 kind: str) -> None:
    settings, aws, chat, statuspage, clock = (bench.settings, bench.aws, bench.chat,
                                              bench.statuspage, bench.clock)
    url, silent = _dead(kind)
    if kind == "500":
        url = chat.url
        chat.behaviour.fail_next = [500] * 100
        statuspage.behaviour.fail_next = [500] * 100
    try:
        notifier = build_notifier(settings, incident(), topics=_topics(aws), session=aws,
                                  clock=clock, environ=_env(url, statuspage))
        started = time.monotonic()
        _run(notifier, clock)          # the caller never waits on the channels
        called = time.monotonic() - started
        report = notifier.close(1)
        closed = time.monotonic() - started
    finally:
        if silent is not None:
            silent.close()
    assert called < 1.0, called
    assert closed < 3.0, closed
    chat_results = [d for d in report["deliveries"] if d["channel"] == "chat"]
    assert chat_results and not any(d["ok"] for d in chat_results)
    assert all(d["status"] in ("failed", "not sent") for d in chat_results)
    # The other channels were not held up by the dead one.
    assert any(d["channel"] == "email" and d["ok"] for d in report["deliveries"])
    assert report["failedDeliveries"] >= len(chat_results)


def test_unconfigured_channels_are_reported_with_the_reason(settings: Settings,
                                                            aws: boto3.Session,
                                                            clock: FakeClock) -> None:
    notifier = build_notifier(settings, incident(), topics=_topics(aws), session=aws,
                              clock=clock, environ={})
    notifier.open()
    report = notifier.close(5)
    assert report["channels"]["email"] == "configured"
    assert report["channels"]["chat"].startswith("not configured: no chatWebhookUrl")
    assert "caresync/notify in us-west-2: ResourceNotFoundException" in \
        report["channels"]["statuspage"]


def test_a_resumed_incident_is_not_reopened(bench: Bench) -> None:
    settings, aws, chat, statuspage, clock = (bench.settings, bench.aws, bench.chat,
                                              bench.statuspage, bench.clock)
    saved: list[dict[str, object]] = []
    first = build_notifier(settings, incident(), topics=_topics(aws), session=aws, clock=clock,
                           environ=_env(chat.url, statuspage), persist=saved.append)
    first.open()
    first.flush(5)          # the status page incident exists, its id in the saved state
    first.fail("stopped by SIGTERM; continue with --resume", "interrupted")
    first.close(5)
    state = saved[-1]
    assert state["opened"] is True and state["ended"] == "failed"
    assert state["channels"] == {"statuspage": {"incidentId": "inc000000001"}}

    clock.advance(minutes=3)
    second = build_notifier(settings, incident(), topics=_topics(aws), session=aws,
                            clock=clock, environ=_env(chat.url, statuspage), state=state)
    second.open()
    second.resolve("completed on resume")
    report = second.close(5)
    assert [m["event"] for m in report["messages"] if m["audience"] == "internal"] == \
        ["resumed", "resolved"]
    assert len(statuspage.incidents) == 1
    assert [c.method for c in statuspage.calls] == ["POST", "PATCH", "PATCH"]
    assert statuspage.incidents["inc000000001"]["status"] == "resolved"


def test_nothing_is_posted_after_close(settings: Settings, clock: FakeClock,
                                       chat: ChatDouble, statuspage: StatusPageDouble) -> None:
    notifier = build_notifier(settings, incident(), topics=[], clock=clock,
                              environ=_env(chat.url, statuspage))
    notifier.open()
    notifier.close(5)
    posted = len(chat.calls)
    notifier.phase("late", "A late phase", "done")
    notifier.resolve("late")
    assert notifier.check_escalation() == []
    time.sleep(0.1)
    assert len(chat.calls) == posted


def test_site_topics_order(settings: Settings) -> None:
    standby = f"arn:aws:sns:{STANDBY}:111122223333:caresync-standby-alerts"
    primary = f"arn:aws:sns:{PRIMARY}:111122223333:caresync-primary-alerts"
    assert [t.topic_arn for t in site_topics(settings, standby)] == [standby, primary]
    assert [t.topic_arn for t in site_topics(settings, standby, standby_first=False)] == \
        [primary, standby]
