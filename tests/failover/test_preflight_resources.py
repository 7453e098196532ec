"""Issue 10, item 9: every resource the plan will change is read before the first change; a
missing one refuses the run (exit 3) with nothing changed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from caresync_dr.cli import ExitCode
from tests.failover import world as w

MISSING_TG = "arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/gone/0123456789abcdef"
LOCK_CALLS = {"ssm:PutParameter", "ssm:DeleteParameter"}


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        doc = doc[part]
    doc[last] = value


@dataclass(frozen=True)
class Missing:
    scope: str
    field: str
    value: str
    row: str
    why: str


@pytest.mark.parametrize("case", [Missing(*c) for c in [
    ("region", "standby.app.autoScalingGroupName", "dr-app-gone", "app tier",
     "Auto Scaling group dr-app-gone not found in us-west-2"),
    ("region", "standby.app.targetGroupArn", MISSING_TG, "target group",
     "target group arn:aws:elasticloadbalancing:us-west-2:123456789012:targetgroup/gone/"),
    ("database", "primary.database.securityGroupId", "sg-0123456789abcdef0",
     "old primary security group", "security group sg-0123456789abcdef0 not found"),
    ("database", "primary.app.autoScalingGroupName", "prod-app-gone", "app tier",
     "Auto Scaling group prod-app-gone not found in us-east-1"),
    ("database", "primary.database.endpointParameter", "/caresync-dr/prod/gone",
     "endpoint parameter", "SSM parameter /caresync-dr/prod/gone not found in us-east-1"),
]], ids=lambda c: f"{c.scope}-{c.row}")
def test_a_missing_resource_refuses_before_any_change(
        world: w.World, failover: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        case: Missing) -> None:
    scope, row, why = case.scope, case.row, case.why
    doc = json.loads(world.inventory.to_json())
    _set(doc, case.field, case.value)
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(doc))
    world.calls.seen.clear()
    result = failover("--scope", scope, "--yes", "--inventory", str(path))
    assert result.code == ExitCode.REFUSED, (result.out, caplog.text)
    assert f"{row}: {why}" in caplog.text
    assert "Nothing was changed" in caplog.text
    changed = {n for n in world.calls.names()
               if not n.split(":")[1].startswith(("Describe", "Get", "List"))}
    assert changed <= LOCK_CALLS, changed
    assert world.calls.count("PromoteReadReplica") == 0
    assert world.parameter(w.STANDBY, world.inventory.lock_parameter) is None
    # --dry-run shows the same refusal (it runs the real preflight), --check fails on it.
    assert failover("--scope", scope, "--dry-run", "--inventory", str(path)).code \
        == ExitCode.REFUSED
    assert failover("--scope", scope, "--check", "--inventory", str(path)).code \
        == ExitCode.NOT_READY


def test_a_missing_launch_template_refuses_before_any_change(
        world: w.World, failover: Any, caplog: pytest.LogCaptureFixture) -> None:
    ec2 = w.client("ec2", w.STANDBY)
    ec2.delete_launch_template(LaunchTemplateId=world.inventory.standby.app.launch_template_id)
    result = failover("--yes")
    assert result.code == ExitCode.REFUSED, (result.out, caplog.text)
    assert "app tier: dr-app: launch template" in caplog.text and "not found" in caplog.text
    assert world.calls.count("PromoteReadReplica") == 0
    assert world.switch_value() == "PRIMARY"
