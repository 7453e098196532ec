"""The e-mail channel: publish to a site's alert topic (SNS), whose subscribers get the mail.

Targets are tried in order until one takes the message: during a regional failover the
standby region's topic first, the primary's only if the standby does not answer. Every call has
the best-effort budget (2 s to connect, 5 s to answer, 2 attempts). The engaged tiers travel as
the ``escalationTier`` String.Array attribute, which the tiers' e-mail subscriptions filter on
(components/monitoring.py).

SNS Publish (API reference): a subject is "UTF-8 text with no line breaks or control characters,
and less than 100 characters long"; a message at most 256 KiB.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.aws import BEST_EFFORT, AwsClients
from caresync_dr.notify.delivery import (
    Breaker,
    Budget,
    DeliveryError,
    RetryPolicy,
    deliver_with_retries,
)
from caresync_dr.notify.messages import Audience, Delivery, Message
from caresync_dr.settings import ESCALATION_TIER_ATTRIBUTE

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

    from caresync_dr.aws import AwsSession

SUBJECT_MAX = 99
MESSAGE_MAX_BYTES = 200_000        # below SNS's 256 KiB, with room for the attributes
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# One pass over the targets: the botocore budget already retries each call once.
EMAIL_POLICY = RetryPolicy(attempts=1, deadline_seconds=20.0)


@dataclass(frozen=True)
class TopicTarget:
    region: str
    topic_arn: str


def subject(title: str) -> str:
    flat = _CONTROL.sub(" ", title).strip()
    return flat if len(flat) <= SUBJECT_MAX else flat[:SUBJECT_MAX - 1] + "…"


def publish_arguments(message: Message, topic_arn: str) -> dict[str, Any]:
    body = f"{message.title}\n\n{message.body}"
    encoded = body.encode("utf-8")
    if len(encoded) > MESSAGE_MAX_BYTES:
        body = encoded[:MESSAGE_MAX_BYTES].decode("utf-8", errors="ignore") + "\n[truncated]"
    arguments: dict[str, Any] = {"TopicArn": topic_arn, "Subject": subject(message.title),
                                 "Message": body}
    if message.tiers:
        arguments["MessageAttributes"] = {ESCALATION_TIER_ATTRIBUTE: {
            "DataType": "String.Array", "StringValue": json.dumps(list(message.tiers))}}
    return arguments


class EmailChannel:
    name = "email"

    def __init__(self, targets: Sequence[TopicTarget], session: AwsSession | None = None,
                 policy: RetryPolicy = EMAIL_POLICY) -> None:
        self.targets = tuple(targets)
        self._session = session or boto3.Session()
        self._policy = policy
        self._breaker = Breaker()
        self._clients: dict[str, SNSClient] = {}

    @property
    def audience(self) -> Audience | None:
        return "internal"

    def restore(self, remembered: dict[str, Any]) -> None:
        del remembered

    def _sns(self, region: str) -> SNSClient:
        if region not in self._clients:
            self._clients[region] = AwsClients(region, BEST_EFFORT, self._session).sns()
        return self._clients[region]

    def deliver(self, message: Message) -> Delivery:
        def attempt(budget: Budget) -> tuple[str, dict[str, Any]]:
            errors: list[str] = []
            for target in self.targets:
                if budget.remaining() <= 0:
                    errors.append(f"{target.region}: not tried, the delivery deadline passed")
                    continue
                try:
                    answer = self._sns(target.region).publish(
                        **publish_arguments(message, target.topic_arn))
                except ClientError as exc:
                    error = exc.response.get("Error", {})
                    errors.append(f"{target.topic_arn}: {error.get('Code', 'error')}: "
                                  f"{error.get('Message', '')}".rstrip(": "))
                    continue
                except BotoCoreError as exc:
                    errors.append(f"{target.topic_arn}: {type(exc).__name__}: {exc}")
                    continue
                tried = f" ({'; '.join(errors)})" if errors else ""
                return (f"published {answer['MessageId']} to {target.topic_arn}{tried}", {})
            raise DeliveryError("no alert topic took the message: " + "; ".join(errors)
                                if errors else "no alert topic is known", retryable=False)

        return deliver_with_retries(self.name, message.event, attempt, self._policy,
                                    breaker=self._breaker)
