"""Fixtures: recording doubles of the chat webhook and Statuspage, a fake clock, settings."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from caresync_dr.emulation.notify_doubles import ChatDouble, StatusPageDouble
from caresync_dr.notify.notifier import Incident
from caresync_dr.notify.recording import RECORD_ENV
from caresync_dr.notify.secrets import ENV_CHAT_WEBHOOK, ENV_STATUSPAGE_KEY
from caresync_dr.settings import Settings, StatusPage, settings_from_stack_file

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 30, 2, 11, tzinfo=UTC)


class FakeClock:
    """``clock()`` answers the time the test set; ``advance(minutes=...)`` moves it."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (ENV_CHAT_WEBHOOK, ENV_STATUSPAGE_KEY, RECORD_ENV, "AWS_ENDPOINT_URL",
                 "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def chat() -> Iterator[ChatDouble]:
    with ChatDouble() as double:
        yield double


@pytest.fixture
def statuspage() -> Iterator[StatusPageDouble]:
    with StatusPageDouble() as double:
        yield double


@pytest.fixture
def settings(statuspage: StatusPageDouble) -> Settings:
    """The committed dr stack's settings, its status page pointed at the double."""
    committed = settings_from_stack_file("dr", ROOT)
    assert committed.status_page is not None
    page = StatusPage(page_id=committed.status_page.page_id,
                      component_ids=committed.status_page.component_ids,
                      api_url=statuspage.api_url)
    return dataclasses.replace(committed, status_page=page)


def incident(kind: str = "region-failover", breach: bool = False,
             key: str = "20261130T021100Z-abc123") -> Incident:
    return Incident(key=key, kind=kind, stack="dr", started_at=START,
                    operator="oncall@ops-laptop",
                    summary="promote caresync-standby-db in us-west-2 "
                            "(caresync-standby-db.c9x.us-west-2.rds.amazonaws.com)",
                    timeline="s3://caresync-standby-backups-111122223333/incidents/x.md",
                    breach=breach)
