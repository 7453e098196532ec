"""A failover rerun after a failover finds itself "already failed over" while the way home
(failback.py's re-protection, switchover.py back to the primary) may have stopped part-way:
caresync_dr/failback/unfinished.py names such a run and the command that continues it."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from caresync_dr.failback.unfinished import unfinished_reverse_runs
from caresync_dr.names import FAILBACK_JOURNAL_PARAMETER, SWITCHOVER_JOURNAL_PARAMETER

REGION = "us-west-2"


def _journal(ssm: Any, name: str, **fields: Any) -> None:
    ssm.put_parameter(Name=name, Type="String", Overwrite=True, Value=json.dumps(
        {"runId": "20261130T170000Z-abc123", "startedAt": "2026-11-30T17:00:00+00:00",
         "stack": "dr", "steps": [], "facts": {}, **fields}))


def test_an_unfinished_failback_and_switchover_are_named_with_their_resume() -> None:
    with mock_aws():
        ssm = boto3.client("ssm", region_name=REGION)
        assert unfinished_reverse_runs(ssm) == []
        _journal(ssm, FAILBACK_JOURNAL_PARAMETER, status="interrupted")
        _journal(ssm, SWITCHOVER_JOURNAL_PARAMETER, status="failed", to="primary")
        failback, switchover = unfinished_reverse_runs(ssm)
        assert "failback run 20261130T170000Z-abc123" in failback
        assert "status interrupted" in failback
        assert "`caresync-failback --stack dr --resume`" in failback
        assert "`caresync-switchover --to primary --stack dr --resume`" in switchover


@pytest.mark.parametrize("status", ["completed", "refused"])
def test_a_finished_run_is_not_named(status: str) -> None:
    with mock_aws():
        ssm = boto3.client("ssm", region_name=REGION)
        _journal(ssm, FAILBACK_JOURNAL_PARAMETER, status=status)
        assert unfinished_reverse_runs(ssm) == []


def test_an_unreadable_journal_is_said_so() -> None:
    with mock_aws():
        ssm = boto3.client("ssm", region_name=REGION)

        def denied(**_: Any) -> None:
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}},
                              "GetParameter")

        ssm.meta.events.register("before-call.ssm.GetParameter", denied)
        found = unfinished_reverse_runs(ssm)
        assert len(found) == 2 and all("could not be read" in s for s in found)
