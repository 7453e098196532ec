"""Issue 12 item 4: failover.py starts its work sooner. What is not on the way to the
promotion request -- the notifier (its imports, clients and posts), the steps beside the
promotion (scale-up, fencing) and the clients only later steps use -- waits until RDS has been
asked. Checked by order and by what is imported, never by timing."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from caresync_dr.aws import PlainJSONFileLoader, new_session
from caresync_dr.cli import ExitCode
from caresync_dr.operations import hooks, runner
from tests.failover import world as w
from tests.failover.conftest import ROOT

# Services whose clients only what follows the promotion request uses: Route 53's control
# plane (observe step), the notifier's SNS topics and Secrets Manager (its channel secrets).
LATER_CLIENTS = {"route53", "sns", "secretsmanager"}
# Calls of the notifier and of the steps beside the promotion (fencing, scale-up).
LATER_CALLS = {("sns", "Publish"), ("secrets-manager", "GetSecretValue"),
               ("auto-scaling", "UpdateAutoScalingGroup"),
               ("ec2", "RevokeSecurityGroupIngress"), ("ec2", "DescribeSecurityGroups")}


def test_the_command_module_imports_no_notifier_and_no_requests() -> None:
    """requests and the notifier (templates, channels) are imported on the hook thread once
    the promotion is requested, not at start-up."""
    code = ("import json, sys; import caresync_dr.failover.command; "
            "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    modules = set(json.loads(done.stdout))
    assert "caresync_dr.failover.command" in modules
    assert "requests" not in modules
    assert not {m for m in modules if m.startswith("caresync_dr.notify")}
    assert "caresync_dr.failover.notifications" not in modules


def test_nothing_off_the_way_runs_before_the_promotion_request(
        world: w.World, failover: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # The hold's backstop is never what releases anything here, however slow the machine.
    monkeypatch.setattr(hooks, "HOOK_HOLD_SECONDS", 120.0)
    monkeypatch.setattr(runner, "HOLD_SECONDS", 120.0)
    seen: list[tuple[str, str]] = []

    def client(event_name: str, **_: Any) -> None:
        seen.append(("client", event_name.rsplit(".", 1)[-1]))

    def call(event_name: str, **_: Any) -> None:
        service, operation = event_name.split(".", 2)[1:]
        seen.append((service, operation))

    world.session.events.register("creating-client-class", client)
    world.session.events.register_first("before-parameter-build", call)
    report = tmp_path / "run.json"
    result = failover("--yes", "--report", str(report))
    assert result.code == ExitCode.OK, result.out

    promote = seen.index(("rds", "PromoteReadReplica"))
    before, after = seen[:promote], seen[promote + 1:]
    assert not [s for kind, s in before if kind == "client" and s in LATER_CLIENTS], before
    assert not [c for c in before if c in LATER_CALLS], before
    # They did run, after it: the notifier posted, the old primary was fenced, the standby
    # scaled up, and the report has every step.
    assert {("sns", "Publish"), ("ec2", "RevokeSecurityGroupIngress"),
            ("auto-scaling", "UpdateAutoScalingGroup")} <= set(after)
    document = json.loads(report.read_text())
    assert document["notifications"]["problems"] == []
    outcomes = {step["name"]: step["outcome"] for step in document["steps"]}
    for name in ("fence-primary-app", "fence-primary-database", "promote-database",
                 "scale-standby-app", "switch-traffic", "verify"):
        assert outcomes[name] == "done", document["steps"]


def test_the_plain_json_loader_loads_the_same_models() -> None:
    """new_session's loader parses botocore's models into plain dicts: the same data as
    botocore's own loader (OrderedDicts), and its clients work."""
    session = new_session()
    loader = session._session.get_component("data_loader")
    assert isinstance(loader.file_loader, PlainJSONFileLoader)
    import botocore.loaders

    default = botocore.loaders.Loader()
    for service in ("ec2", "rds", "ssm"):
        assert loader.load_service_model(service, "service-2") == \
            default.load_service_model(service, "service-2")
    assert loader.load_data("endpoints") == default.load_data("endpoints")
    client = session.client("ec2", region_name="us-west-2", aws_access_key_id="x",
                            aws_secret_access_key="y")
    assert client.can_paginate("describe_launch_templates")
