"""The chat webhook and the status page against recording doubles: paths, headers, bodies,
bounded retries, and what a dead or slow channel costs (seconds, never an exception)."""

from __future__ import annotations

import json
import time

import pytest

from caresync_dr.emulation.notify_doubles import (
    ChatDouble,
    SilentServer,
    StatusPageDouble,
    refusing_url,
)
from caresync_dr.notify.chat import ChatChannel, payload
from caresync_dr.notify.delivery import RetryPolicy
from caresync_dr.notify.messages import Message
from caresync_dr.notify.statuspage import StatusPageChannel, marker

FAST = RetryPolicy(attempts=3, connect_timeout=0.5, read_timeout=0.5, backoff_seconds=0.01,
                   deadline_seconds=3.0)
KEY = "incident-1"


def _message(event: str = "opened", audience: str = "internal", **fields: object) -> Message:
    values: dict[str, object] = {
        "event": event, "audience": audience, "title": "Regional failover started",
        "body": "promote <db> & move traffic", "channels": ("chat", "email"),
        "at": "2026-11-30T02:11:00+00:00"}
    values.update(fields)
    return Message(**values)  # type: ignore[arg-type]


def _public(event: str, status: str, component: str | None) -> Message:
    return _message(event, "external", title="CareSync service disruption",
                    body="We are working on it.", channels=("statuspage",),
                    incident_status=status, component_status=component)


def _page(double: StatusPageDouble, key: str = KEY) -> StatusPageChannel:
    return StatusPageChannel(double.api_url, double.page_id, tuple(double.components),
                             api_key=double.api_key, incident_key=key, policy=FAST)


# --- chat -------------------------------------------------------------------------------------

def test_chat_posts_slack_json_with_mentions_first(chat: ChatDouble) -> None:
    delivery = ChatChannel(chat.url, FAST).deliver(
        _message(mentions=("<@U0CTO00001>",)))
    assert delivery.ok and delivery.attempts == 1
    (call,) = chat.calls
    assert call.method == "POST" and call.path == ChatDouble.path
    assert call.headers["Content-Type"] == "application/json"
    assert call.body == {"text": "<@U0CTO00001> *Regional failover started*\n"
                                 "promote &lt;db&gt; &amp; move traffic"}


def test_chat_retries_a_server_error_then_delivers(chat: ChatDouble) -> None:
    chat.behaviour.fail_next = [500, 503]
    delivery = ChatChannel(chat.url, FAST).deliver(_message())
    assert delivery.ok and delivery.attempts == 3
    assert "HTTP 500" in delivery.detail and "HTTP 503" in delivery.detail


def test_chat_does_not_retry_a_refused_payload(chat: ChatDouble) -> None:
    chat.behaviour.fail_next = [400]
    delivery = ChatChannel(chat.url, FAST).deliver(_message())
    assert delivery.status == "failed" and delivery.attempts == 1


def test_a_rate_limited_chat_waits_as_told(chat: ChatDouble) -> None:
    chat.behaviour.fail_next = [429]
    delivery = ChatChannel(chat.url, FAST).deliver(_message())
    assert delivery.ok and delivery.attempts == 2


def test_the_webhook_url_is_never_reported(chat: ChatDouble) -> None:
    """The URL is the credential: details name its host only."""
    chat.behaviour.fail_next = [500, 500, 500]
    delivery = ChatChannel(chat.url, FAST).deliver(_message())
    assert delivery.status == "failed"
    assert ChatDouble.path not in delivery.detail and "not-a-real-secret" not in delivery.detail
    assert "chat webhook (127.0.0.1)" in delivery.detail


def test_a_refused_connection_fails_within_the_attempts() -> None:
    started = time.monotonic()
    delivery = ChatChannel(refusing_url(), FAST).deliver(_message())
    assert delivery.status == "failed" and delivery.attempts == 3
    assert "connection refused" in delivery.detail
    assert time.monotonic() - started < 2


def test_a_silent_channel_costs_at_most_its_deadline() -> None:
    silent = SilentServer()
    try:
        policy = RetryPolicy(attempts=5, connect_timeout=0.5, read_timeout=0.4,
                             backoff_seconds=0.01, deadline_seconds=1.0)
        started = time.monotonic()
        delivery = ChatChannel(silent.url(), policy).deliver(_message())
        took = time.monotonic() - started
    finally:
        silent.close()
    assert delivery.status == "failed" and "no answer within" in delivery.detail
    assert "deadline" in delivery.detail
    assert took < 2.0, took


def test_long_messages_are_cut_for_chat() -> None:
    text = payload(_message(body="x" * 10_000))["text"]
    assert len(text) <= 3500 and text.endswith("…")


# --- status page ------------------------------------------------------------------------------

def test_status_page_opens_updates_and_resolves_one_incident(statuspage: StatusPageDouble) -> None:
    page = _page(statuspage)
    opened = page.deliver(_public("opened", "investigating", "major_outage"))
    identified = page.deliver(_public("phase", "identified", None))
    resolved = page.deliver(_public("resolved", "resolved", "operational"))
    assert [d.status for d in (opened, identified, resolved)] == ["sent"] * 3, \
        [d.detail for d in (opened, identified, resolved)]
    assert statuspage.problems == []
    assert [(c.method, c.path) for c in statuspage.calls] == [
        ("POST", "/v1/pages/kctbh9vrtdwd/incidents"),
        ("PATCH", "/v1/pages/kctbh9vrtdwd/incidents/inc000000001"),
        ("PATCH", "/v1/pages/kctbh9vrtdwd/incidents/inc000000001")]
    assert all(c.headers["Authorization"] == "OAuth test-statuspage-key"
               for c in statuspage.calls)
    created = statuspage.calls[0].body["incident"]
    assert created["name"] == "CareSync service disruption"
    assert created["status"] == "investigating" and created["deliver_notifications"] is True
    assert created["components"] == {"r9hgdzfqbtv2": "major_outage",
                                     "b13yz5g2cw10": "major_outage"}
    assert created["metadata"] == {"caresync": {"incident": marker(KEY)}}
    assert KEY not in json.dumps(created)
    assert "components" not in statuspage.calls[1].body["incident"]     # unchanged
    (incident,) = statuspage.incidents.values()
    assert incident["status"] == "resolved"
    assert {c["status"] for c in statuspage.components.values()} == {"operational"}
    assert opened.remember == {"incidentId": "inc000000001"}


def test_a_lost_create_answer_does_not_open_a_second_incident(
        statuspage: StatusPageDouble) -> None:
    """The double creates the incident, then the answer is lost (a 502 from a proxy, say):
    the retry finds it by its metadata and updates it."""
    page = _page(statuspage)
    original = statuspage.answer
    answered: list[int] = []

    def create_then_lose(method: str, path: str, headers: dict[str, str],
                         body: object) -> tuple[int, object]:
        status, answer = original(method, path, headers, body)
        if method == "POST" and not answered:
            answered.append(status)
            return 502, {"error": "bad gateway"}
        return status, answer

    statuspage.answer = create_then_lose  # type: ignore[method-assign]
    delivery = page.deliver(_public("opened", "investigating", "major_outage"))
    assert delivery.ok and "found open from an earlier attempt" in delivery.detail
    assert len(statuspage.incidents) == 1
    assert [c.method for c in statuspage.calls] == ["POST", "GET", "PATCH"]


def test_a_resumed_run_updates_the_incident_it_opened(statuspage: StatusPageDouble) -> None:
    first = _page(statuspage)
    first.deliver(_public("opened", "investigating", "major_outage"))
    again = _page(statuspage)
    again.restore({"incidentId": first.incident_id})
    assert again.deliver(_public("resolved", "resolved", "operational")).ok
    assert len(statuspage.incidents) == 1 and [c.method for c in statuspage.calls] == \
        ["POST", "PATCH"]


def test_a_resumed_run_that_lost_the_id_finds_its_incident(statuspage: StatusPageDouble) -> None:
    """The run crashed between the create and saving its journal."""
    _page(statuspage).deliver(_public("opened", "investigating", "major_outage"))
    _page(statuspage, key="another-incident").deliver(
        _public("opened", "investigating", "major_outage"))
    again = _page(statuspage)
    again.restore({})
    assert again.deliver(_public("phase", "identified", None)).ok
    assert len(statuspage.incidents) == 2
    assert statuspage.incidents["inc000000001"]["status"] == "identified"
    assert statuspage.incidents["inc000000002"]["status"] == "investigating"


def test_a_wrong_api_key_fails_without_retrying(statuspage: StatusPageDouble) -> None:
    page = StatusPageChannel(statuspage.api_url, statuspage.page_id, ("r9hgdzfqbtv2",),
                             api_key="wrong", incident_key=KEY, policy=FAST)
    delivery = page.deliver(_public("opened", "investigating", "major_outage"))
    assert delivery.status == "failed" and delivery.attempts == 1 and "HTTP 401" in \
        delivery.detail
    assert "wrong" not in delivery.detail


def test_the_status_page_check_posts_nothing(statuspage: StatusPageDouble) -> None:
    delivery = _page(statuspage).check()
    assert delivery.ok, delivery.detail
    assert {c.method for c in statuspage.calls} == {"GET"}
    assert "component r9hgdzfqbtv2 (operational)" in delivery.detail


@pytest.mark.parametrize("status", ["open", "resolved-ish"])
def test_the_double_refuses_what_statuspage_refuses(statuspage: StatusPageDouble,
                                                    status: str) -> None:
    """The double is strict, so the channel's passing tests mean something."""
    delivery = _page(statuspage).deliver(_public("opened", status, "major_outage"))
    assert delivery.status == "failed" and "HTTP 422" in delivery.detail
    assert statuspage.problems == [f"status {status!r} is not a realtime incident status"]


def test_a_channel_found_dead_gets_one_attempt_until_it_answers(chat: ChatDouble) -> None:
    """A dead channel costs the first message its retries, each later one a single attempt,
    and it is back to full retries once it answers again."""
    channel = ChatChannel(chat.url, FAST)
    chat.behaviour.fail_next = [500] * 3
    assert channel.deliver(_message()).attempts == 3
    chat.behaviour.fail_next = [500]
    later = channel.deliver(_message())
    assert (later.status, later.attempts) == ("failed", 1)
    assert channel.deliver(_message()).ok
    chat.behaviour.fail_next = [500]
    assert channel.deliver(_message()).attempts == 2          # retried again
