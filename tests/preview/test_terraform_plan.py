"""The Terraform plan export: every resource named, Terraform's shapes, references kept."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from caresync_dr.cli import ExitCode
from caresync_dr.commands import preview as preview_script
from caresync_dr.offline.runtime import ProgramRun
from caresync_dr.preview import terraform_names, terraform_plan
from caresync_dr.preview.terraform_plan import PlanExport
from tests import offline_runs

STATES: dict[str, Callable[[], ProgramRun]] = {
          "prod-bootstrap": lambda: offline_runs.steady()["bootstrap"],
          "prod-steady": lambda: offline_runs.steady()["prod"],
          "dr-steady": lambda: offline_runs.steady()["dr"],
          "dr-promoted": offline_runs.dr_promoted}


@functools.cache
def exported(state: str) -> PlanExport:
    run: ProgramRun = STATES[state]()
    return terraform_plan.export(run.resources, str(run.outputs["region"]))


def planned(export: PlanExport, address: str) -> dict[str, Any]:
    for resource in export.plan["planned_values"]["root_module"]["resources"]:
        if resource["address"] == address:
            values: dict[str, Any] = resource["values"]
            return values
    raise AssertionError(f"{address} is not in the plan")


def expressions(export: PlanExport, address: str) -> dict[str, Any]:
    for resource in export.plan["configuration"]["root_module"]["resources"]:
        if resource["address"] == address:
            found: dict[str, Any] = resource["expressions"]
            return found
    raise AssertionError(f"{address} is not in the configuration")


@pytest.mark.parametrize("state", sorted(STATES))
def test_every_resource_of_every_state_is_exported_under_terraform_names(state: str) -> None:
    export = exported(state)
    run = STATES[state]()
    custom = [r for r in run.resources if r.custom and not r.type.startswith("pulumi:")]
    assert export.unmapped_types == ()
    assert export.unmapped_properties == ()
    assert len(export.plan["planned_values"]["root_module"]["resources"]) == len(custom)
    assert len(export.plan["resource_changes"]) == len(custom)
    assert {r["address"] for r in export.plan["configuration"]["root_module"]["resources"]} \
        == set(export.addresses.values())


def test_the_plan_has_terraforms_shape() -> None:
    plan = exported("dr-steady").plan
    assert plan["format_version"] and plan["terraform_version"]
    assert plan["configuration"]["provider_config"]["aws"]["expressions"]["region"] == {
        "constant_value": "us-west-2"}
    change = plan["resource_changes"][0]
    assert change["change"]["actions"] == ["create"] and change["change"]["before"] is None


def test_types_and_properties_are_the_providers() -> None:
    export = exported("prod-steady")
    database = planned(export, "aws_db_instance.primary-database-instance")
    assert database["storage_encrypted"] is True and database["publicly_accessible"] is False
    assert database["backup_retention_period"] == 30  # an int, as Terraform writes numbers
    # A repeated block takes the singular Terraform name the bridge built its type from.
    listener = planned(export, "aws_lb_listener.primary-app-http-redirect")
    assert listener["default_action"][0]["redirect"][0]["protocol"] == "HTTPS"
    sse = planned(export, "aws_s3_bucket_server_side_encryption_configuration."
                          "primary-backups-bucket-sse")
    assert sse["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"] \
        == "aws:kms"
    # A flattened one-item block is a one-element list again; a map stays a map.
    versioning = planned(export, "aws_s3_bucket_versioning.primary-backups-bucket-versioning")
    assert versioning["versioning_configuration"] == [{"status": "Enabled"}]
    assert planned(export, "aws_vpc.primary-network-vpc")["tags"] == {"Name": "caresync-primary"}
    group = planned(export, "aws_security_group.primary-network-alb-sg")
    assert [rule["from_port"] for rule in group["ingress"]] == [443, 80]


def test_references_say_which_resource_a_value_came_from() -> None:
    export = exported("prod-steady")
    versioning = expressions(export, "aws_s3_bucket_versioning.primary-backups-bucket-versioning")
    assert versioning["bucket"] == {"references": [
        "aws_s3_bucket.primary-backups-bucket.id", "aws_s3_bucket.primary-backups-bucket"]}
    assert versioning["versioning_configuration"] == [{"status": {"constant_value": "Enabled"}}]
    # Inside a block, on the leaf that holds the other resource's id.
    db_group = expressions(export, "aws_security_group.primary-network-db-sg")
    assert db_group["ingress"][0]["security_groups"]["references"][0] == \
        "aws_security_group.primary-network-app-sg.id"
    # A document derived from another resource refers to it as a whole.
    policy = expressions(export, "aws_s3_bucket_policy.primary-backups-bucket-policy")
    assert "aws_s3_bucket.primary-backups-bucket" in policy["policy"]["references"]


def test_an_unknown_type_is_reported_not_dropped_silently() -> None:
    run = offline_runs.steady()["dr"]
    [vpc] = [r for r in run.resources if r.type == "aws:ec2/vpc:Vpc"]
    alien = type(vpc)(type="aws:ec2/notAType:NotAType", name="alien", custom=True, inputs={},
                      outputs={}, resource_id="x", urn="urn:pulumi:dr::caresync-dr::alien")
    export = terraform_plan.export([vpc, alien], "us-west-2")
    assert export.unmapped_types == ("aws:ec2/notAType:NotAType",)
    with pytest.raises(terraform_names.UnmappedTypeError, match=r"terraform_types\.json"):
        terraform_names.terraform_type("aws:ec2/notAType:NotAType")


def test_an_unknown_property_keeps_a_guessed_name_and_is_reported() -> None:
    fields = terraform_names.resource_fields("aws:ec2/vpc:Vpc")
    unmapped: list[str] = []
    values = terraform_plan.convert(fields, {"cidrBlock": "10.0.0.0/16", "madeUpThing": 1.0},
                                    "aws_vpc.x: ", unmapped)
    assert values == {"cidr_block": "10.0.0.0/16", "made_up_thing": 1}
    assert unmapped == ["aws_vpc.x: made_up_thing"]


def test_script_writes_the_plan_of_a_state(tmp_path: Path) -> None:
    out = tmp_path / "dr-promoted.json"
    assert preview_script.main(["--stack", "dr", "--state", "promoted", "--format",
                                "terraform-plan", "--output", str(out)]) == ExitCode.OK
    plan = json.loads(out.read_text())
    addresses = {r["address"] for r in plan["planned_values"]["root_module"]["resources"]}
    assert "aws_db_instance.standby-database-instance" in addresses
    database = next(r for r in plan["planned_values"]["root_module"]["resources"]
                    if r["address"] == "aws_db_instance.standby-database-instance")
    assert "replicate_source_db" not in database["values"]  # promoted: a standalone primary


def test_script_refuses_a_state_the_stack_does_not_have(tmp_path: Path) -> None:
    assert preview_script.main(["--stack", "dr", "--state", "bootstrap", "--format",
                                "terraform-plan", "--output", str(tmp_path / "x.json")]) \
        == ExitCode.USAGE
    assert preview_script.main(["--stack", "prod", "--state", "bootstrap", "--diff"]) \
        == ExitCode.USAGE
