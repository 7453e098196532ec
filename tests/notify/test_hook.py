"""The engine hook: a run's start, steps and end become one incident; nothing raises into the
run; a run that changed nothing opens no incident."""

from __future__ import annotations

from typing import Any

from caresync_dr.emulation.notify_doubles import ChatDouble, StatusPageDouble
from caresync_dr.notify.hook import IncidentNotifications, NotifyOptions
from caresync_dr.notify.secrets import ENV_CHAT_WEBHOOK, ENV_STATUSPAGE_KEY
from caresync_dr.settings import Settings
from tests.notify.conftest import START, FakeClock


def _hook(settings: Settings, chat: ChatDouble, statuspage: StatusPageDouble,
          clock: FakeClock, kind: str = "region-failover", **options: Any,
          ) -> IncidentNotifications:
    return IncidentNotifications(
        settings, NotifyOptions(kind=kind, topics=[], close_seconds=5, **options), clock=clock,
        environ={ENV_CHAT_WEBHOOK: chat.url, ENV_STATUSPAGE_KEY: statuspage.api_key})


def test_a_run_becomes_one_incident(settings: Settings, chat: ChatDouble,
                                    statuspage: StatusPageDouble, clock: FakeClock) -> None:
    saved: list[dict[str, Any]] = []
    hook = _hook(settings, chat, statuspage, clock,
                 public_statuses={"verify": "monitoring"})
    hook.started(run_id="run-1", started_at=START, stack="dr", save=saved.append,
                 summary="promote caresync-standby-db")
    hook.step_finished("fence-primary-app", "Fence", "not confirmed", "us-east-1 is down")
    hook.step_finished("promote", "Promote", "done", "promoted", 300.0)
    hook.step_finished("switch-traffic", "Switch", "done", "FAILOVER written", 0.2)
    hook.step_finished("verify", "Verify", "done", "serving from us-west-2", 12.0)
    report = hook.ended(succeeded=True, message="region failover completed")
    assert report is not None and report["ended"] == "resolved"
    assert report["failedDeliveries"] == 0, report["deliveries"]
    assert report["channels"]["email"] == "not configured: no alert topic is known"
    (incident,) = statuspage.incidents.values()
    # investigating -> identified (the first change) -> monitoring (verify) -> resolved
    assert [u["status"] for u in reversed(incident["incident_updates"])] == [
        "investigating", "identified", "monitoring", "resolved"]
    assert len(chat.posted) == 6                      # opened, 4 phases, resolved
    assert saved[-1]["ended"] == "resolved"
    assert hook.ended(succeeded=True, message="again") is report


def test_a_run_that_changed_nothing_opens_no_incident(settings: Settings, chat: ChatDouble,
                                                      statuspage: StatusPageDouble,
                                                      clock: FakeClock) -> None:
    hook = _hook(settings, chat, statuspage, clock)
    hook.step_finished("promote", "Promote", "done")        # ignored: no incident
    assert hook.ended(succeeded=False, message="preflight refused") is None
    assert chat.calls == [] and statuspage.calls == []


def test_a_failed_run_leaves_the_incident_open_for_resume(settings: Settings,
                                                          chat: ChatDouble,
                                                          statuspage: StatusPageDouble,
                                                          clock: FakeClock) -> None:
    saved: list[dict[str, Any]] = []
    first = _hook(settings, chat, statuspage, clock)
    first.started(run_id="run-2", started_at=START, stack="dr", save=saved.append)
    report = first.ended(succeeded=False, message="promote failed; --resume")
    assert report is not None and report["ended"] == "failed"
    assert "STOPPED (failed)" in chat.posted[-1]["text"]
    second = _hook(settings, chat, statuspage, clock)
    second.started(run_id="run-2", started_at=START, stack="dr", previous_state=saved[-1])
    second.ended(succeeded=True, message="completed on resume")
    assert "resumed" in chat.posted[2]["text"]
    assert len(statuspage.incidents) == 1


def test_a_notifier_that_cannot_be_built_leaves_the_run_alone(settings: Settings,
                                                               chat: ChatDouble,
                                                               statuspage: StatusPageDouble,
                                                               clock: FakeClock) -> None:
    hook = _hook(settings, chat, statuspage, clock, kind="no-such-kind")
    hook.started(run_id="run-3", started_at=START, stack="dr")
    hook.step_finished("promote", "Promote", "done")
    assert hook.ended(succeeded=True, message="done") is None
    assert chat.calls == []
