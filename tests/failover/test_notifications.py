"""Issue 15 item 3 on failover.py: a real run posts the incident (opened, phases, resolved) to
the chat, the alert topic and the status page; a dead channel never changes the exit code or
the outcome and is in the report; a resumed run does not reopen the incident; read-only modes
post nothing."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from caresync_dr.cli import ExitCode
from caresync_dr.cli.signals import Interrupted
from caresync_dr.emulation.notify_doubles import ChatDouble, StatusPageDouble, refusing_url
from caresync_dr.notify.delivery import DEFAULT_POLICY
from caresync_dr.notify.hook import OperationNotifier
from caresync_dr.notify.secrets import ENV_CHAT_WEBHOOK, ENV_STATUSPAGE_KEY
from caresync_dr.operations.journal import Journal
from tests.failover import world as w
from tests.failover.conftest import ROOT

log = logging.getLogger(__name__)
PRIVATE = ("rds.amazonaws.com", "caresync-dr-db", "s3://", "us-west-2", "127.0.0.1")


@pytest.fixture
def chat() -> Iterator[ChatDouble]:
    with ChatDouble() as double:
        yield double


@pytest.fixture
def statuspage() -> Iterator[StatusPageDouble]:
    with StatusPageDouble() as double:
        yield double


@dataclass
class Channels:
    chat: ChatDouble
    statuspage: StatusPageDouble
    project: Path        # the repository's stack files, the status page pointed at the double


@pytest.fixture
def channels(tmp_path: Path, chat: ChatDouble, statuspage: StatusPageDouble,
             monkeypatch: pytest.MonkeyPatch) -> Channels:
    directory = tmp_path / "project"
    directory.mkdir()
    text = (ROOT / "Pulumi.dr.yaml").read_text()
    old = "    componentIds: [r9hgdzfqbtv2, b13yz5g2cw10]\n"
    assert old in text
    (directory / "Pulumi.dr.yaml").write_text(
        text.replace(old, old + f"    apiUrl: {statuspage.api_url}\n"))
    monkeypatch.setenv(ENV_CHAT_WEBHOOK, chat.url)
    monkeypatch.setenv(ENV_STATUSPAGE_KEY, statuspage.api_key)
    return Channels(chat, statuspage, directory)


def _report(path: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def test_a_failover_posts_its_incident(world: w.World, failover: Any, tmp_path: Path,
                                       channels: Channels) -> None:
    chat, statuspage, project = channels.chat, channels.statuspage, channels.project
    report_path = tmp_path / "run.json"
    result = failover("--yes", "--report", str(report_path), "--project-dir", str(project))
    assert result.code == ExitCode.OK, result.out
    notifications = _report(report_path)["notifications"]
    assert notifications["problems"] == [] and notifications["failedDeliveries"] == 0
    assert notifications["ended"] == "resolved"
    assert notifications["kind"] == "region-failover"
    assert [e["tier"] for e in notifications["engagedTiers"]] == ["on-call"]
    texts = [p["text"] for p in chat.posted]
    assert texts[0].startswith("<!subteam^S0ONCALL01> *[caresync-dr] Regional failover started")
    assert "Promote caresync-dr-db in us-west-2 and move traffic to it." in texts[0]
    assert any("promote-database done" in t for t in texts)
    assert "completed" in texts[-1]
    # Users: one public incident, investigating -> identified -> monitoring -> resolved.
    assert statuspage.problems == []
    (incident,) = statuspage.incidents.values()
    assert [u["status"] for u in reversed(incident["incident_updates"])] == [
        "investigating", "identified", "monitoring", "resolved"]
    for call in statuspage.calls:
        for private in PRIVATE:
            assert private not in json.dumps(call.body), (private, call.body)
    # The e-mail went to the standby alert topic.
    assert world.calls.count("Publish") == 2


def test_dead_channels_change_neither_exit_code_nor_outcome(
        world: w.World, failover: Any, tmp_path: Path, channels: Channels,
        monkeypatch: pytest.MonkeyPatch) -> None:
    statuspage, project = channels.statuspage, channels.project
    monkeypatch.setenv(ENV_CHAT_WEBHOOK, refusing_url())
    statuspage.behaviour.fail_next = [500] * 100
    take_down = w.take_down(world.session, lambda url: "sns." in url)
    report_path = tmp_path / "run.json"
    started = time.monotonic()
    result = failover("--yes", "--report", str(report_path), "--project-dir", str(project))
    took = time.monotonic() - started
    assert result.code == ExitCode.OK, result.out
    report = _report(report_path)
    assert report["outcome"] == "completed"
    assert {s["outcome"] for s in report["steps"]} <= {"done", "skipped"}
    failed = {(d["channel"], d["status"]) for d in report["notifications"]["deliveries"]
              if not d["ok"]}
    assert {c for c, _ in failed} == {"chat", "email", "statuspage"}, failed
    assert any("connection refused" in d["detail"]
               for d in report["notifications"]["deliveries"] if d["channel"] == "chat")
    assert take_down, "the alert topic was never tried"
    # Bounded by construction, not by this machine's speed: the first failed delivery of a
    # channel uses its retries, every later one a single attempt (the breaker); a delivery
    # never outlives its deadline; the run waited for the channels at most close_seconds.
    for channel in ("chat", "statuspage"):
        attempts = [d["attempts"] for d in report["notifications"]["deliveries"]
                    if d["channel"] == channel and d["status"] == "failed"]
        assert attempts[0] == DEFAULT_POLICY.attempts and set(attempts[1:]) <= {1}, attempts
    assert all(d["seconds"] <= DEFAULT_POLICY.deadline_seconds + 1
               for d in report["notifications"]["deliveries"])
    log.info("failover with every channel dead took %.1f s", took)
    journal = json.loads(world.parameter(w.STANDBY, world.inventory.journal_parameter) or "{}")
    assert journal["status"] == "completed"


def test_a_resumed_failover_does_not_reopen_its_incident(world: w.World, failover: Any,
                                                        channels: Channels) -> None:
    chat, statuspage, project = channels.chat, channels.statuspage, channels.project
    world.overrides["health"] = {"status": "ok", "region": w.STANDBY,
                                 "database": {"writable": False, "role": "replica"}}
    first = failover("--yes", "--verify-timeout", "0.3", "--project-dir", str(project))
    assert first.code == ExitCode.FAILED, first.out
    assert "STOPPED (failed)" in chat.posted[-1]["text"]
    del world.overrides["health"]
    resumed = failover("--yes", "--resume", "--project-dir", str(project))
    assert resumed.code == ExitCode.OK, resumed.out
    starts = [p["text"] for p in chat.posted if "started" in p["text"].split("\n")[0]]
    assert len(starts) == 1
    assert any("resumed" in p["text"] for p in chat.posted)
    (incident,) = statuspage.incidents.values()
    assert incident["status"] == "resolved"
    assert [c.method for c in statuspage.calls].count("POST") == 1


def test_read_only_modes_and_refusals_post_nothing(world: w.World, failover: Any,
                                                   channels: Channels) -> None:
    chat, statuspage, project = channels.chat, channels.statuspage, channels.project
    assert failover("--check", "--project-dir", str(project)).code == ExitCode.OK
    assert failover("--dry-run", "--project-dir", str(project)).code == ExitCode.OK
    w.put_lag(w.STANDBY, w.STANDBY_DB, 1800, minutes_ago=0.5)     # beyond the RPO
    assert failover("--yes", "--project-dir", str(project)).code == ExitCode.REFUSED
    assert chat.calls == [] and statuspage.calls == []
    assert world.calls.count("Publish") == 0


def _refuse_journal_write_after_promotion(world: w.World) -> None:
    """SSM refuses the journal write that records the promotion done (once): the run stops
    there with the journal unavailable, its incident just opened."""
    refused: list[str] = []

    def refuse(params: dict[str, Any], **_: Any) -> None:
        value = str(params.get("Value", ""))
        if params.get("Name") == world.inventory.journal_parameter and not refused and \
                '"name":"promote-database","outcome":"done"' in value.replace(" ", ""):
            refused.append(value)
            raise ClientError({"Error": {"Code": "InternalServerError",
                                         "Message": "SSM is having a bad minute"}},
                              "PutParameter")

    world.session.events.register("before-parameter-build.ssm.PutParameter", refuse)


def _interrupt_right_after_promotion(world: w.World) -> None:
    """SIGTERM arrives as the first step after the promotion request makes its change."""
    sent: list[str] = []

    def interrupt(params: dict[str, Any], **_: Any) -> None:
        if params.get("AutoScalingGroupName") == "dr-app" and not sent:
            sent.append("SIGTERM")
            raise Interrupted(signal.SIGTERM)

    world.session.events.register("before-parameter-build.autoscaling.UpdateAutoScalingGroup",
                                  interrupt)


def _fail_verification(world: w.World) -> None:
    world.overrides["health"] = {"status": "ok", "region": w.STANDBY,
                                 "database": {"writable": False, "role": "replica"}}


@pytest.mark.parametrize("stop", [_fail_verification, _interrupt_right_after_promotion,
                                  _refuse_journal_write_after_promotion],
                         ids=["step failed", "SIGTERM", "journal write refused"])
def test_an_incident_opened_after_the_runs_last_journal_write_is_not_reopened(
        world: w.World, failover: Any, channels: Channels,
        monkeypatch: pytest.MonkeyPatch, stop: Callable[[w.World], None]) -> None:
    """The notifier opens the incident on the hook thread, which may save its state (opened,
    the status page incident's id) after the run has written its journal for the last time:
    here always, by holding the hook until the journal says how the run ended. ``--resume``
    must still find the incident open: one "started", one status page incident."""
    chat, statuspage, project = channels.chat, channels.statuspage, channels.project
    ended = threading.Event()
    finish, opened = Journal.finish, OperationNotifier.incident_opened

    def finish_then_tell(journal: Journal, status: str, **extra: Any) -> None:
        try:
            finish(journal, status, **extra)
        finally:
            if status != "running":
                ended.set()

    def open_late(notifier: OperationNotifier, event: Any) -> None:
        assert ended.wait(10), "the run never wrote how it ended"
        opened(notifier, event)

    monkeypatch.setattr(Journal, "finish", finish_then_tell)
    monkeypatch.setattr(OperationNotifier, "incident_opened", open_late)
    stop(world)
    first = failover("--yes", "--verify-timeout", "0.3", "--project-dir", str(project))
    assert first.code == ExitCode.FAILED, first.out
    assert ended.is_set()
    assert sum("started" in p["text"].split("\n")[0] for p in chat.posted) == 1
    world.overrides.pop("health", None)
    monkeypatch.setattr(OperationNotifier, "incident_opened", opened)
    resumed = failover("--yes", "--resume", "--project-dir", str(project))
    assert resumed.code == ExitCode.OK, resumed.out
    starts = [p["text"] for p in chat.posted if "started" in p["text"].split("\n")[0]]
    assert len(starts) == 1, starts
    assert any("resumed" in p["text"] for p in chat.posted)
    (incident,) = statuspage.incidents.values()
    assert incident["status"] == "resolved"
    assert [c.method for c in statuspage.calls].count("POST") == 1
