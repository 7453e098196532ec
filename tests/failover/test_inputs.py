"""Bad input gets one clear error naming the problem, exit 2, and changes nothing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from caresync_dr.cli import ExitCode
from tests.failover import world as w
from tests.failover.conftest import ROOT
from tests.failover.test_region_failover import assert_untouched, mutating


def _store_inventory(text: str) -> None:
    w.client("ssm", w.STANDBY).put_parameter(Name=w.INVENTORY_PARAMETER, Value=text,
                                             Type="String", Overwrite=True, Tier="Advanced")


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: "{not json", "is not valid JSON"),
    (lambda d: {**d, "version": 2}, "inventory version 2 is not supported"),
    (lambda d: {k: v for k, v in d.items() if k != "trafficSwitch"},
     "inventory field trafficSwitch is missing"),
    (lambda d: {**d, "standby": {**d["standby"], "region": "mars-1"}},
     "inventory field standby.region = 'mars-1' is invalid: expected an AWS region"),
])
def test_malformed_inventory_is_a_usage_error(world: w.World, failover: Any, mutate: Any,
                                              message: str,
                                              caplog: pytest.LogCaptureFixture) -> None:
    data = json.loads(world.inventory.to_json())
    changed = mutate(data)
    _store_inventory(changed if isinstance(changed, str) else json.dumps(changed))
    world.calls.seen.clear()
    assert failover("--yes").code == ExitCode.USAGE
    assert message in caplog.text
    assert f"ssm:us-west-2:{w.INVENTORY_PARAMETER}" in caplog.text
    assert mutating(world) == []
    assert_untouched(world)


def test_missing_inventory_is_a_usage_error(world: w.World, failover: Any,
                                            caplog: pytest.LogCaptureFixture) -> None:
    w.client("ssm", w.STANDBY).delete_parameter(Name=w.INVENTORY_PARAMETER)
    assert failover("--yes").code == ExitCode.USAGE
    assert "inventory parameter /caresync-dr/failover-inventory not found in us-west-2" \
        in caplog.text
    assert mutating(world) == []
    assert_untouched(world)


def test_inventory_file_is_read_and_validated(world: w.World, failover: Any, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "inventory.json"
    data = json.loads(world.inventory.to_json())
    data["standby"]["app"]["productionCapacity"]["min"] = 9
    path.write_text(json.dumps(data))
    assert failover("--check", "--inventory", str(path)).code == ExitCode.USAGE
    assert "standby.app.productionCapacity = " in caplog.text
    assert "must satisfy 0 <= min <= desired <= max" in caplog.text
    path.write_text(world.inventory.to_json())
    assert failover("--check", "--inventory", str(path)).code == ExitCode.OK
    missing = tmp_path / "nope.json"
    assert failover("--check", "--inventory", str(missing)).code == ExitCode.USAGE
    assert f"cannot read --inventory {missing}" in caplog.text


def test_unknown_stack_and_broken_stack_file(world: w.World, failover: Any, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    assert failover("--yes", "--stack", "staging").code == ExitCode.USAGE
    assert "unknown stack 'staging'" in caplog.text and "stacks here: dr, prod" in caplog.text
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "Pulumi.dr.yaml", project / "Pulumi.dr.yaml")
    (project / "Pulumi.broken.yaml").write_text("config: [unclosed\n")
    text = (project / "Pulumi.dr.yaml").read_text()
    (project / "Pulumi.bad.yaml").write_text(text.replace('rpoMinutes: "15"',
                                                          'rpoMinutes: "soon"'))
    assert failover("--yes", "--stack", "broken", "--project-dir", str(project)).code \
        == ExitCode.USAGE
    assert "Pulumi.broken.yaml is not valid YAML" in caplog.text
    assert failover("--yes", "--stack", "bad", "--project-dir", str(project)).code \
        == ExitCode.USAGE
    assert "caresync-dr:rpoMinutes = 'soon' is invalid" in caplog.text
    assert world.calls.seen == []
    assert_untouched(world)


def test_bad_timing_knob_is_a_usage_error(world: w.World, failover: Any,
                                          monkeypatch: pytest.MonkeyPatch,
                                          caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("CARESYNC_DR_VERIFY_TIMEOUT_SECONDS", "soon")
    assert failover("--check", fast=False).code == ExitCode.USAGE
    assert "--verify-timeout must be a number of seconds, got 'soon'" in caplog.text


def test_read_only_modes_do_not_need_a_writable_journal(
        world: w.World, failover: Any, tmp_path: Path) -> None:
    """--check and --dry-run write no journal: an unwritable journal path is no reason to
    refuse them (a real run refuses it, exit 2)."""
    blocker = tmp_path / "plain-file"
    blocker.write_text("x")
    flags = ("--journal-file", str(blocker / "journal.json"),
             "--report", str(tmp_path / "run.json"))
    assert failover("--check", *flags).code == ExitCode.OK
    assert failover("--dry-run", *flags).code == ExitCode.OK
    assert failover("--yes", *flags).code == ExitCode.USAGE
