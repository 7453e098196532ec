"""E-mail through SNS (moto) in a region that answers, tier filtering as SNS applies it, and the
channels' credentials: environment first, then Secrets Manager, standby region first."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from caresync_dr.notify.email import EmailChannel, TopicTarget, publish_arguments, subject
from caresync_dr.notify.messages import Message
from caresync_dr.notify.secrets import (
    ENV_CHAT_WEBHOOK,
    ENV_STATUSPAGE_KEY,
    resolve_secrets,
)
from caresync_dr.settings import tier_filter_policy

PRIMARY, STANDBY = "us-east-1", "us-west-2"
ACCOUNT = "123456789012"   # moto's account


def _message(tiers: tuple[str, ...] = ("on-call",)) -> Message:
    return Message(event="escalated", audience="internal",
                   title="[caresync-dr] ESCALATION Regional failover open 30 min: CTO",
                   body="Incident x has been open for 30 min.", channels=("chat", "email"),
                   at="2026-11-30T02:41:00+00:00", tiers=tiers)


def take_down(session: boto3.Session, region: str) -> None:
    """Every call into ``region`` fails to connect (a regional outage)."""
    def refuse(request: Any, **_: Any) -> None:
        if f".{region}." in request.url:
            raise EndpointConnectionError(endpoint_url=request.url)

    session.events.register("before-send", refuse)


@pytest.fixture
def aws() -> Iterator[boto3.Session]:
    with mock_aws():
        yield boto3.Session(region_name=STANDBY)


def _topic(region: str, site: str) -> str:
    return str(boto3.client("sns", region_name=region).create_topic(
        Name=f"caresync-{site}-alerts")["TopicArn"])


def _queue(region: str, topic: str, tier: str | None) -> str:
    """An SQS subscriber standing in for one e-mail address (moto delivers to SQS, not mail),
    with the filter policy the stack gives that tier's addresses."""
    sqs = boto3.client("sqs", region_name=region)
    url = sqs.create_queue(QueueName=f"inbox-{tier or 'all'}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    attributes = {"FilterPolicy": tier_filter_policy(tier)} if tier else {}
    boto3.client("sns", region_name=region).subscribe(
        TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes=attributes)
    return str(url)


def _received(region: str, url: str) -> list[str]:
    messages = boto3.client("sqs", region_name=region).receive_message(
        QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"])["Subject"] for m in messages]


def test_email_goes_to_the_first_topic_that_answers(aws: boto3.Session) -> None:
    standby, primary = _topic(STANDBY, "standby"), _topic(PRIMARY, "primary")
    channel = EmailChannel([TopicTarget(STANDBY, standby), TopicTarget(PRIMARY, primary)], aws)
    delivery = channel.deliver(_message())
    assert delivery.ok and standby in delivery.detail and primary not in delivery.detail


def test_email_falls_back_when_the_first_region_is_down(aws: boto3.Session) -> None:
    standby, primary = _topic(STANDBY, "standby"), _topic(PRIMARY, "primary")
    take_down(aws, STANDBY)
    channel = EmailChannel([TopicTarget(STANDBY, standby), TopicTarget(PRIMARY, primary)], aws)
    delivery = channel.deliver(_message())
    assert delivery.ok, delivery.detail
    assert f"to {primary}" in delivery.detail and "EndpointConnectionError" in delivery.detail


def test_email_fails_cleanly_when_no_topic_answers(aws: boto3.Session) -> None:
    channel = EmailChannel([TopicTarget(STANDBY, f"arn:aws:sns:{STANDBY}:{ACCOUNT}:gone")], aws)
    delivery = channel.deliver(_message())
    assert delivery.status == "failed" and "NotFound" in delivery.detail


def test_a_tier_hears_of_an_incident_only_once_engaged(aws: boto3.Session) -> None:
    """What the stack's filter policies do with the notifier's attribute, as SNS filters
    String.Array attributes: the CTO's inbox gets nothing until the CTO tier is engaged;
    alertEmails (no filter) get every message."""
    topic = _topic(STANDBY, "standby")
    everyone, cto = _queue(STANDBY, topic, None), _queue(STANDBY, topic, "cto")
    channel = EmailChannel([TopicTarget(STANDBY, topic)], aws)
    assert channel.deliver(_message(("on-call", "technical-lead"))).ok
    assert _received(STANDBY, cto) == []
    assert channel.deliver(_message(("on-call", "technical-lead", "cto"))).ok
    assert len(_received(STANDBY, cto)) == 1
    assert len(_received(STANDBY, everyone)) == 2


def test_subject_obeys_sns_rules() -> None:
    """SNS Publish: no line breaks or control characters, less than 100 characters."""
    flat = subject("line one\nline two\t" + "x" * 200)
    assert "\n" not in flat and "\t" not in flat and len(flat) < 100
    arguments = publish_arguments(_message(("cto",)), "arn")
    assert arguments["MessageAttributes"]["escalationTier"] == {
        "DataType": "String.Array", "StringValue": '["cto"]'}
    assert "MessageAttributes" not in publish_arguments(_message(()), "arn")


# --- secrets ---------------------------------------------------------------------------------

SECRET = "caresync/notify"
VALUES = {"chatWebhookUrl": "https://hooks.slack.com/services/T1/B1/SECRETPART",
          "statuspageApiKey": "sp-key-123"}


def _secret(region: str, value: object) -> None:
    boto3.client("secretsmanager", region_name=region).create_secret(
        Name=SECRET, SecretString=json.dumps(value))


def test_secrets_come_from_the_standby_region_first(aws: boto3.Session) -> None:
    _secret(STANDBY, VALUES)
    _secret(PRIMARY, {"chatWebhookUrl": "https://hooks.slack.com/services/OLD"})
    found = resolve_secrets(SECRET, [STANDBY, PRIMARY], need_chat=True, need_statuspage=True,
                            session=aws, environ={})
    assert (found.chat_webhook_url, found.statuspage_api_key) == (
        VALUES["chatWebhookUrl"], VALUES["statuspageApiKey"])
    assert found.sources == {"chatWebhookUrl": f"Secrets Manager {SECRET} ({STANDBY})",
                             "statuspageApiKey": f"Secrets Manager {SECRET} ({STANDBY})"}


def test_secrets_are_read_from_the_replica_when_the_standby_is_down(aws: boto3.Session) -> None:
    _secret(PRIMARY, VALUES)
    take_down(aws, STANDBY)
    found = resolve_secrets(SECRET, [STANDBY, PRIMARY], need_chat=True, need_statuspage=False,
                            session=aws, environ={})
    assert found.chat_webhook_url == VALUES["chatWebhookUrl"]
    assert found.statuspage_api_key is None
    assert found.problems == [f"secret {SECRET} in {STANDBY}: EndpointConnectionError"]


def test_the_environment_overrides_and_spares_the_aws_call(aws: boto3.Session) -> None:
    calls: list[str] = []
    aws.events.register("before-call", lambda model, **_: calls.append(model.name))
    found = resolve_secrets(SECRET, [STANDBY], need_chat=True, need_statuspage=True,
                            session=aws, environ={ENV_CHAT_WEBHOOK: "http://127.0.0.1:9/hook",
                                                  ENV_STATUSPAGE_KEY: "k"})
    assert (found.chat_webhook_url, found.statuspage_api_key) == ("http://127.0.0.1:9/hook", "k")
    assert calls == []


def test_missing_or_bad_secrets_are_reasons_never_values(aws: boto3.Session) -> None:
    found = resolve_secrets(SECRET, [STANDBY], need_chat=True, need_statuspage=True,
                            session=aws, environ={})
    assert found.chat_webhook_url is None
    assert found.problems == [f"secret {SECRET} in {STANDBY}: ResourceNotFoundException"]
    _secret(STANDBY, {"chatWebhookUrl": "http://hooks.example.com/SECRETPART"})
    found = resolve_secrets(SECRET, [STANDBY], need_chat=True, need_statuspage=True,
                            session=aws, environ={})
    assert found.chat_webhook_url is None
    assert any("expected an https:// URL" in p for p in found.problems)
    assert any("has no statuspageApiKey" in p for p in found.problems)
    assert not any("SECRETPART" in p for p in found.problems)
