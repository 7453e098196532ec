"""After a failover, failback.py (re-protection) and switchover.py (back home) keep their own
journals beside the failover's. While one of them is unfinished the promoted standby still
writes, so a failover rerun says "already failed over ... Nothing to do" -- and did not name
the run that stopped part-way, nor how to continue it.

The message is the engine's ``already_done`` sentence for FailoverOperation, which now adds
what caresync_dr.failback.unfinished finds."""

from __future__ import annotations

import json
from typing import Any

from caresync_dr.cli import ExitCode
from caresync_dr.names import FAILBACK_JOURNAL_PARAMETER
from tests.failover import world as w


def test_already_failed_over_names_an_unfinished_failback(world: w.World,
                                                          failover: Any) -> None:
    assert failover("--yes").code == ExitCode.OK
    w.client("ssm", w.STANDBY).put_parameter(
        Name=FAILBACK_JOURNAL_PARAMETER, Type="String", Overwrite=True, Value=json.dumps(
            {"operation": "failback", "runId": "20261130T180000Z-fb0001", "stack": "dr",
             "startedAt": "2026-11-30T18:00:00+00:00", "status": "interrupted",
             "steps": [], "facts": {}}))
    again = failover("--yes")
    assert again.code == ExitCode.OK
    assert "already failed over" in again.out
    assert "failback run 20261130T180000Z-fb0001" in again.out
    assert "caresync-failback --stack dr --resume" in again.out
