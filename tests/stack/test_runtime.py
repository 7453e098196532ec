"""The offline runtime itself: isolation between runs, the handler hook, finding resources."""

from __future__ import annotations

from typing import Any

import pulumi
import pytest

from caresync_dr.offline.runtime import (
    ProgramRun,
    by_id,
    named,
    of_type,
    run_program,
)


def test_runs_do_not_leak_config_or_resources(prod_bootstrap: ProgramRun) -> None:
    refs = {"prod": prod_bootstrap.outputs}
    slow = run_program("dr", config_overrides={"healthCheckIntervalSeconds": "30"},
                       stack_references=refs)
    default = run_program("dr", stack_references=refs)
    intervals = {c.inputs.get("requestInterval")
                 for c in of_type(default.resources, "aws:route53/healthCheck:HealthCheck")}
    assert intervals == {10, None}, "the earlier override leaked into the next run"
    assert len(default.resources) == len(slow.resources)
    assert [r.urn for r in default.resources].count(
        "urn:pulumi:dr::caresync-dr::pulumi:pulumi:Stack$pulumi:pulumi:StackReference"
        "::primaryStack") == 1


def test_fakes_use_the_resource_region(dr: ProgramRun) -> None:
    db = named(dr.resources, "standby-database-instance")
    assert db.outputs["arn"] == "arn:aws:rds:us-west-2:111122223333:db:caresync-standby-db"
    assert db.outputs["address"].endswith(".us-west-2.rds.amazonaws.com")
    alarm = named(dr.resources, "dns-primary-health-alarm")
    assert alarm.outputs["arn"].startswith("arn:aws:cloudwatch:us-east-1:")


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.parameters: dict[str, Any] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs
                     ) -> tuple[str, dict[str, Any]] | None:
        if args.typ == "aws:ssm/parameter:Parameter":
            self.parameters[args.inputs["name"]] = args.inputs["value"]
        if args.typ == "aws:sns/topic:Topic":
            arn = "arn:aws:sns:us-east-1:123456789012:from-the-emulator"
            return "emulated-topic", {**args.inputs, "arn": arn}
        return None

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any] | None:
        self.calls.append(args.token)
        return None


def test_handler_creates_resources_and_sees_invokes() -> None:
    recorder = _Recorder()
    run = run_program("prod", handler=recorder)
    topic = by_id(run.resources, "emulated-topic")
    assert topic.outputs["arn"].endswith(":from-the-emulator")
    assert run.outputs["alertTopicArn"] == topic.outputs["arn"]
    assert "aws:index/getAvailabilityZones:getAvailabilityZones" in recorder.calls
    endpoint = recorder.parameters["/caresync-dr/primary/database-host"]
    assert endpoint == run.outputs["dbAddress"] + ":5432", \
        "the handler must see secret inputs as plain values"


def test_finders_name_what_exists(prod_bootstrap: ProgramRun) -> None:
    with pytest.raises(LookupError, match="primary-database-instance"):
        named(prod_bootstrap.resources, "no-such-resource")
    with pytest.raises(LookupError, match="no registered resource has id"):
        by_id(prod_bootstrap.resources, "missing")


def test_preview_registers_the_same_resources(prod_bootstrap: ProgramRun) -> None:
    preview = run_program("prod", preview=True)
    assert sorted(r.urn for r in preview.resources) == sorted(
        r.urn for r in prod_bootstrap.resources)
