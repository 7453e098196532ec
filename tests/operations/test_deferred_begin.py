"""A run that hurries to its critical request saves its journal's begin with the first write
that follows (that step's write-ahead record), never after a change: a step without a
write-ahead record (``converges`` False) saves it before its ``apply``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from caresync_dr.operations import RunContext, Stage, Step, Verdict, done, run, ssm
from caresync_dr.operations.journal import Journal
from caresync_dr.operations.runner import Runner

REGION = "us-west-2"
NAME = "/toy/journal"


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.Session().client("ssm", region_name=REGION)


def saved(client: Any) -> dict[str, Any] | None:
    text = ssm.read_parameter(client, NAME)
    return None if text is None else dict(json.loads(text))


class AlreadyDone(Step[RunContext]):
    name, title, expected_seconds, critical = "promote", "critical, found done", 1.0, True

    def check(self, ctx: RunContext) -> Verdict:
        return done("nothing to ask for")

    def apply(self, ctx: RunContext) -> str:
        raise AssertionError("not applied")


class Announce(Step[RunContext]):
    """No target state, so no write-ahead record; its apply notes what SSM held then."""

    name, title, expected_seconds, converges = "announce", "a change", 1.0, False
    seen: list[dict[str, Any] | None] = []

    def __init__(self, client: Any) -> None:
        self.client = client

    def check(self, ctx: RunContext) -> Verdict:
        return run("would announce")

    def apply(self, ctx: RunContext) -> str:
        Announce.seen.append(saved(self.client))
        return "announced"


def test_the_begin_is_saved_before_a_change_without_write_ahead(
        client: Any, tmp_path: Path) -> None:
    ctx = RunContext()
    journal = Journal(client, NAME, tmp_path / "journal.json")
    journal.begin({"runId": ctx.run_id, "status": "running"}, save=False)
    assert saved(client) is None
    ctx.journal = journal
    Announce.seen = []
    Runner(ctx, (Stage((Announce(client),)), Stage((AlreadyDone(),)))).run()
    first = Announce.seen[0]
    assert first is not None and first["status"] == "running" and first["runId"] == ctx.run_id
    final = saved(client)
    assert final is not None
    assert {s["name"]: s["outcome"] for s in final["steps"]} == {"promote": "skipped",
                                                                "announce": "done"}


def test_a_saved_begin_is_not_saved_twice(client: Any, tmp_path: Path) -> None:
    journal = Journal(client, NAME, tmp_path / "journal.json")
    journal.begin({"status": "running"})
    version = client.get_parameter(Name=NAME)["Parameter"]["Version"]
    journal.ensure_saved()
    assert client.get_parameter(Name=NAME)["Parameter"]["Version"] == version
