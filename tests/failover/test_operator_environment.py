"""What an operator's environment does to failover.py (issue 12, faults 1-3): no credentials
names the operator role; AWS not answering before any step started is exit 3, "nothing was
changed"; both as one line with a report."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.credentials import CredentialResolver

from caresync_dr.cli import ExitCode
from caresync_dr.failover.command import run
from tests.failover import world as w
from tests.failover.conftest import FAST, ROOT
from tests.failover.test_region_failover import assert_untouched, mutating


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("mode", [[], ["--check"], ["--dry-run"]])
def test_no_credentials_names_the_operator_role(world: w.World, tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture,
                                                mode: list[str]) -> None:
    bare = botocore.session.Session()
    bare.register_component("credential_provider", CredentialResolver(providers=[]))
    report = tmp_path / "report.json"
    caplog.clear()
    code = run(["--yes", *mode, "--report", str(report), "--project-dir", str(ROOT),
                "--journal-file", str(tmp_path / "journal.json"), *FAST],
               session=boto3.Session(botocore_session=bare), stdin=io.StringIO(""),
               out=io.StringIO())
    assert code == ExitCode.REFUSED
    (line,) = _errors(caplog)
    assert "caresync-dr-operator" in line and "aws sts assume-role" in line
    assert "role_arn" in line and "(exit 3: refused)" in line
    assert not any(r.exc_info for r in caplog.records)
    written = json.loads(report.read_text())
    assert written["exitCode"] == 3 and "caresync-dr-operator" in written["message"]
    assert_untouched(world)


def test_aws_not_answering_before_any_step_is_exit_3(world: w.World, failover: Any,
                                                     tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """The run reads its inventory from a file, so the first AWS call is the run's own (the
    journal): nothing started, so exit 3 and "nothing was changed", not 1 and --resume."""
    inventory = tmp_path / "inventory.json"
    inventory.write_text(world.inventory.to_json())
    refused = w.take_down(world.session, lambda url: True)
    report = tmp_path / "report.json"
    caplog.clear()
    result = failover("--yes", "--inventory", str(inventory), "--report", str(report))
    assert refused, "the run did not try AWS"
    assert result.code == ExitCode.REFUSED, result.out
    (line,) = _errors(caplog)
    assert "Nothing was changed" in line and "--resume" not in line
    written = json.loads(report.read_text())
    assert written["outcome"] == "refused" and written["exitCode"] == 3
    assert mutating(world) == []


def test_the_dry_run_report_proves_no_change_from_the_first_call(world: w.World, failover: Any,
                                                                 tmp_path: Path) -> None:
    """The engine's recorder is installed before the inventory is read: the dry run's report
    counts every call of the command, and none changed anything."""
    report = tmp_path / "dry.json"
    assert failover("--dry-run", "--report", str(report)).code == ExitCode.OK
    calls = json.loads(report.read_text())["awsCalls"]
    assert calls["changes"] == 0 and calls["blocked"] is True
    assert calls["operations"]["ssm:GetParameter"] >= 1          # the inventory, the lock
    assert calls["reads"] == sum(calls["operations"].values()) == len(world.calls.seen)
    run_report = tmp_path / "run.json"
    assert failover("--yes", "--report", str(run_report)).code == ExitCode.OK
    done = json.loads(run_report.read_text())["awsCalls"]
    assert done["blocked"] is False and done["operations"]["rds:PromoteReadReplica"] == 1
