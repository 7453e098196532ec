"""Escalation fires at the configured minutes (fake clock), a breach goes straight to the top,
a resumed run keeps what was engaged, and the timer escalates a run stuck in one phase."""

from __future__ import annotations

import time

from caresync_dr.notify.escalation import EscalationPath
from caresync_dr.notify.notifier import Notifier
from caresync_dr.notify.recording import RecordingChannel
from caresync_dr.notify.templates import load_templates
from caresync_dr.settings import DEFAULT_ESCALATION, EscalationTier, Settings
from tests.notify.conftest import FakeClock, incident


def _notifier(settings: Settings, clock: FakeClock, breach: bool = False,
              state: dict[str, object] | None = None,
              kind: str = "region-failover") -> tuple[Notifier, RecordingChannel]:
    recording = RecordingChannel()
    notifier = Notifier(incident(kind=kind, breach=breach), load_templates(),
                        settings.escalation_tiers, [recording], state=state, clock=clock)
    return notifier, recording


def _escalations(recording: RecordingChannel) -> list[str]:
    return [m.title for m in recording.messages if m.event == "escalated"]


def test_the_seed_path_by_elapsed_minutes() -> None:
    path = EscalationPath(DEFAULT_ESCALATION)
    assert [t.name for t in path.due(0)] == ["on-call"]
    assert [t.name for t in path.due(14.99)] == ["on-call"]
    assert [t.name for t in path.due(15)] == ["on-call", "technical-lead"]
    assert [t.name for t in path.due(59)] == ["on-call", "technical-lead", "cto"]
    assert [t.name for t in path.due(60)][-1] == "ceo"
    assert [t.name for t in path.due(0, breach=True)] == ["on-call", "technical-lead", "cto",
                                                          "ceo"]


def test_escalation_fires_at_the_configured_minutes(settings: Settings,
                                                    clock: FakeClock) -> None:
    notifier, recording = _notifier(settings, clock)
    notifier.open()
    assert [e["tier"] for e in notifier.state()["engaged"]] == ["on-call"]
    clock.advance(minutes=14, seconds=59)
    notifier.phase("promote", "Promote the standby database", "done", "promoted")
    assert notifier.check_escalation() == []
    clock.advance(seconds=1)                                   # 15:00
    assert notifier.check_escalation() == ["technical-lead"]
    assert notifier.check_escalation() == []                   # once only
    clock.advance(minutes=15)                                  # 30:00
    notifier.phase("verify", "Verify", "done", "serving")      # a phase checks too
    clock.advance(minutes=29, seconds=59)
    assert notifier.check_escalation() == []
    clock.advance(seconds=1)                                   # 60:00
    assert notifier.check_escalation() == ["ceo"]
    notifier.close(5)
    assert [e["tier"] for e in notifier.state()["engaged"]] == ["on-call", "technical-lead",
                                                                "cto", "ceo"]
    titles = _escalations(recording)
    assert len(titles) == 3
    assert "open 15 min: Technical lead" in titles[0]
    assert "open 30 min: CTO" in titles[1]
    assert "open 60 min: CEO" in titles[2]
    # The mention of the tier being engaged rides on the escalation (chat); the CEO tier is
    # told by e-mail only, so it has no mention; every later message carries the tiers whose
    # e-mail subscriptions must get it.
    escalated = [m for m in recording.messages if m.event == "escalated"]
    assert escalated[0].mentions == ("<@U0TECHLEAD>",)
    assert escalated[2].mentions == ()
    assert escalated[2].tiers == ("on-call", "technical-lead", "cto", "ceo")


def test_thresholds_come_from_the_settings(settings: Settings, clock: FakeClock) -> None:
    import dataclasses

    quick = dataclasses.replace(settings, escalation_tiers=(
        EscalationTier("on-call", "On-call engineer", 0),
        EscalationTier("duty-manager", "Duty manager", 2)))
    notifier, recording = _notifier(quick, clock)
    notifier.open()
    clock.advance(minutes=1, seconds=59)
    assert notifier.check_escalation() == []
    clock.advance(seconds=1)
    assert notifier.check_escalation() == ["duty-manager"]
    notifier.close(5)
    assert "Every tier is engaged." in recording.messages[-1].body


def test_nothing_escalates_once_the_incident_is_resolved(settings: Settings,
                                                         clock: FakeClock) -> None:
    notifier, _ = _notifier(settings, clock)
    notifier.open()
    clock.advance(minutes=5)
    notifier.resolve("the standby serves")
    clock.advance(minutes=120)
    assert notifier.check_escalation() == []
    notifier.close(5)
    assert [e["tier"] for e in notifier.state()["engaged"]] == ["on-call"]


def test_a_breach_goes_straight_to_the_top_tier(settings: Settings, clock: FakeClock) -> None:
    notifier, recording = _notifier(settings, clock, breach=True, kind="data-breach")
    notifier.open()
    notifier.close(5)
    assert [e["tier"] for e in notifier.state()["engaged"]] == ["on-call", "technical-lead",
                                                                "cto", "ceo"]
    opened = recording.messages[0]
    assert opened.event == "opened" and "CEO" in opened.body
    assert set(opened.mentions) == {"<!subteam^S0ONCALL01>", "<@U0TECHLEAD>", "<@U0CTO00001>"}
    assert opened.tiers == ("on-call", "technical-lead", "cto", "ceo")
    # Nothing public for a breach: the data-breach runbook's people tell users.
    assert [m for m in recording.messages if m.audience == "external"] == []


def test_an_incident_that_started_before_the_run_escalates_from_its_start(
        settings: Settings, clock: FakeClock) -> None:
    """The operator's --outage-started: an outage 20 minutes old engages the technical lead
    at once, in the opening message."""
    clock.advance(minutes=20)
    notifier, recording = _notifier(settings, clock)
    notifier.open()
    notifier.close(5)
    assert [e["tier"] for e in notifier.state()["engaged"]] == ["on-call", "technical-lead"]
    assert _escalations(recording) == []


def test_a_resumed_run_keeps_what_was_engaged_and_does_not_reopen(settings: Settings,
                                                                   clock: FakeClock) -> None:
    first, _ = _notifier(settings, clock)
    first.open()
    clock.advance(minutes=16)
    first.check_escalation()
    first.fail("stopped by SIGTERM", "interrupted")
    first.close(5)
    saved = first.state()
    clock.advance(minutes=20)                         # 36 min: the CTO is due as well
    second, again = _notifier(settings, clock, state=saved)
    second.open()
    second.close(5)
    events = [m.event for m in again.messages if m.audience == "internal"]
    assert events == ["resumed", "escalated"]
    assert "open 36 min: CTO" in again.messages[1].title      # not the technical lead again
    assert [e["tier"] for e in second.state()["engaged"]] == ["on-call", "technical-lead",
                                                              "cto"]


def test_the_timer_escalates_a_run_stuck_in_one_phase(settings: Settings,
                                                      clock: FakeClock) -> None:
    notifier, recording = _notifier(settings, clock)
    notifier.open()
    notifier.start_timer(interval_seconds=0.02)
    clock.advance(minutes=31)                     # no phase ends: only the timer can notice
    deadline = time.monotonic() + 5
    while len(notifier.state()["engaged"]) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    notifier.close(5)
    assert [e["tier"] for e in notifier.state()["engaged"]] == ["on-call", "technical-lead",
                                                                "cto"]
    # Both tiers that came due while nobody looked are engaged in one message.
    assert _escalations(recording) == [
        "[caresync-dr] ESCALATION Regional failover open 31 min: Technical lead, CTO"]
