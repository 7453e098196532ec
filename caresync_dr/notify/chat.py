"""The chat channel: a Slack-compatible incoming webhook (``POST {"text": ...}``, JSON).

Slack's incoming webhooks answer 200 ``ok``; errors are 4xx with a reason (``invalid_payload``,
``no_service``, ``channel_is_archived``) and are not retried, 429 and 5xx are. Mattermost and
Rocket.Chat accept the same payload. The webhook URL is a credential: it is never logged or
reported, only its host.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import requests

from caresync_dr.notify.delivery import (
    DEFAULT_POLICY,
    Breaker,
    Budget,
    RetryPolicy,
    deliver_with_retries,
    http_call,
)
from caresync_dr.notify.messages import Audience, Delivery, Message

# Slack truncates messages above 40,000 characters; stay well below.
MAX_TEXT = 3500


def escape(text: str) -> str:
    """Slack's control characters in plain text (Slack API, "Formatting text": escape &, <, >)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def payload(message: Message) -> dict[str, Any]:
    """``text``: the mentions of newly engaged tiers (raw, they are Slack syntax), the title in
    bold, then the body."""
    text = f"*{escape(message.title)}*\n{escape(message.body)}"
    if message.mentions:
        text = " ".join(message.mentions) + " " + text
    if len(text) > MAX_TEXT:
        text = text[:MAX_TEXT - 1] + "…"
    return {"text": text}


class ChatChannel:
    name = "chat"

    def __init__(self, webhook_url: str, policy: RetryPolicy = DEFAULT_POLICY) -> None:
        self._url = webhook_url
        self._shown = f"chat webhook ({urlsplit(webhook_url).hostname})"
        self._policy = policy
        self._breaker = Breaker()
        self._session = requests.Session()

    @property
    def audience(self) -> Audience | None:
        return "internal"

    def restore(self, remembered: dict[str, Any]) -> None:
        del remembered

    def deliver(self, message: Message) -> Delivery:
        def attempt(budget: Budget) -> tuple[str, dict[str, Any]]:
            response = http_call(self._session, "POST", self._url, budget,
                                 shown_url=self._shown, json_body=payload(message))
            return f"{self._shown} answered HTTP {response.status_code}", {}

        return deliver_with_retries(self.name, message.event, attempt, self._policy,
                                    breaker=self._breaker)
