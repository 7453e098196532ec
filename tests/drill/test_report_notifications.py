"""The drill's summary shows what the failover told people (issue 15 item 3): the messages of
both audiences from the failover report's ``notifications`` and each channel's results, from a
real notifier's report against a recording chat webhook and a dead one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from caresync_dr.drill.report import notification_lines
from caresync_dr.emulation.notify_doubles import ChatDouble, refusing_url
from caresync_dr.notify.chat import ChatChannel
from caresync_dr.notify.notifier import Incident, Notifier
from caresync_dr.notify.templates import load_templates
from caresync_dr.settings import EscalationTier

START = datetime(2026, 11, 30, 2, 11, tzinfo=UTC)
TIERS = (EscalationTier(name="on-call", who="On-call engineer", after_minutes=0,
                        channels=("chat",)),)


def _report(url: str) -> dict[str, Any]:
    notifier = Notifier(Incident(key="run-1", kind="region-failover", stack="dr",
                                 started_at=START, operator="oncall"),
                        load_templates(), TIERS, [ChatChannel(url)], clock=lambda: START)
    notifier.open()
    notifier.phase("promote", "Promote the standby", "done", "writable")
    notifier.resolve("serving from us-west-2")
    return {"failover": {"report": {"notifications": notifier.close(10.0)}}}


def test_the_summary_lists_every_message_and_the_channel_results() -> None:
    with ChatDouble() as chat:
        lines = notification_lines(_report(chat.url))
        posted = len(chat.posted)
    text = "\n".join(lines)
    assert "tiers engaged: On-call engineer" in text
    for event in ("opened", "phase", "resolved"):
        assert f"internal {event}" in text
    assert "external opened" in text and "(status page: investigating)" in text
    assert "external resolved" in text and "(status page: resolved)" in text
    assert posted == 3
    assert "channel chat: configured; 3 sent" in text


def test_a_dead_chat_channel_shows_as_failed() -> None:
    text = "\n".join(notification_lines(_report(refusing_url())))
    assert "channel chat: configured; 3 failed" in text


def test_no_failover_report_no_section() -> None:
    assert notification_lines({"failover": {"exit_code": None, "report": None}}) == []


def test_the_one_screen_summary_says_it_in_one_row_and_the_html_lists_every_message() -> None:
    """Issue 12 item 2: the terminal ends with one screen; a real region-outage sends ~13
    messages, which took 16 lines of it. The summary counts them; the HTML report lists them."""
    from caresync_dr.drill.html_report import render
    from caresync_dr.drill.report import notification_summary, summary

    with ChatDouble() as chat:
        report = _report(chat.url)
    said = notification_summary(report)
    assert said is not None
    assert "internal 3 (opened, phase, resolved)" in said
    assert "external 2 (opened, resolved)" in said
    assert "status page investigating -> resolved" in said
    assert "chat: configured; 3 sent" in said
    screen = summary({"scenario": "region-outage", "ok": True, **report})
    assert sum("notified" in line or line.startswith(" " * 14) for line in
               screen.splitlines()) <= 3
    html_text = render({"scenario": "region-outage", "ok": True, **report})
    assert "id='notifications'" in html_text and "external resolved" in html_text
