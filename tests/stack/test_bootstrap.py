"""Bootstrap order and stack outputs: prod alone, dr from prod, prod linked to dr."""

from __future__ import annotations

import pytest

from caresync_dr.offline.runtime import ProgramRun, of_type, run_program
from components.stack_links import StackLinkError
from tests.stack.checks import one

STACK_REF = "pulumi:pulumi:StackReference"
COMMON_OUTPUTS = {
    "site", "region", "activeSite", "dbGeneration", "vpcId", "kmsKeyArn", "dbIdentifier",
    "dbArn", "dbAddress", "dbEndpoint",
    "dbSecurityGroupId", "dbEndpointParameter", "dbReplicaIdentifiers", "albDnsName",
    "albZoneId", "targetGroupArn", "autoScalingGroupName", "launchTemplateId", "appCapacity",
    "productionCapacity", "backupBucketName", "backupBucketArn", "backupVaultName",
    "backupVaultArn", "alertTopicArn", "auditBucketName", "albLogBucketName", "auditTrailArn",
    "trailLogGroupName", "securityTopicArn", "guardDutyDetectorId",
}
STANDBY_OUTPUTS = COMMON_OUTPUTS | {
    "recordName", "publicHealthUrl", "primaryHealthCheckId",
    "standbyHealthCheckId", "primaryRecordHealthCheckId", "trafficSwitchBucket",
    "trafficSwitchKey", "trafficSwitchHealthCheckId", "inventoryParameter", "operatorRoleArn",
    "roleArns",
}


def test_first_prod_up_works_without_the_dr_stack(prod_bootstrap: ProgramRun) -> None:
    reference = one(prod_bootstrap, STACK_REF, "standbyStack")
    assert reference.inputs["name"] == "organization/caresync-dr/dr"
    assert prod_bootstrap.outputs["standbyLinked"] is False
    assert set(prod_bootstrap.outputs) == COMMON_OUTPUTS | {
        "standbyLinked", "dbMasterSecretArn", "dbAppSecretArn"}


def test_second_prod_up_links_to_dr(prod_linked: ProgramRun) -> None:
    assert prod_linked.outputs["standbyLinked"] is True


def test_prod_links_only_when_all_standby_outputs_exist(dr: ProgramRun) -> None:
    partial = {k: v for k, v in dr.outputs.items() if k != "backupVaultArn"}
    run = run_program("prod", stack_references={"organization/caresync-dr/dr": partial})
    assert run.outputs["standbyLinked"] is False
    assert of_type(run.resources, "aws:s3/bucketReplicationConfig:BucketReplicationConfig") == []


def test_dr_reads_prod_through_primary_stack(dr: ProgramRun) -> None:
    reference = one(dr, STACK_REF, "primaryStack")
    assert reference.inputs["name"] == "organization/caresync-dr/prod"
    assert set(dr.outputs) == STANDBY_OUTPUTS
    assert dr.outputs["site"] == "standby" and dr.outputs["region"] == "us-west-2"


def test_dr_before_prod_fails_naming_what_is_missing() -> None:
    with pytest.raises(StackLinkError, match=r"organization/caresync-dr/prod has not published "
                       r"region, dbIdentifier, dbArn.*run `pulumi up -s prod` first"):
        run_program("dr")


def test_outputs_use_the_stable_physical_names(prod_bootstrap: ProgramRun,
                                               dr: ProgramRun) -> None:
    assert prod_bootstrap.outputs["dbIdentifier"] == "caresync-primary-db"
    assert dr.outputs["dbIdentifier"] == "caresync-standby-db"
    assert prod_bootstrap.outputs["autoScalingGroupName"] == "caresync-primary-app"
    assert dr.outputs["autoScalingGroupName"] == "caresync-standby-app"
    assert dr.outputs["inventoryParameter"] == "/caresync-dr/failover-inventory"
    assert prod_bootstrap.outputs["backupVaultName"] == "caresync-primary"
    assert dr.outputs["backupVaultName"] == "caresync-standby"


def test_every_child_resource_is_parented_to_a_component(any_stack: ProgramRun) -> None:
    for resource in any_stack.resources:
        if resource.type == STACK_REF:
            continue
        parents = resource.urn.split("::")[2].split("$")
        assert len(parents) >= 2, resource.urn
        if resource.custom:
            assert parents[-2].startswith("caresync:dr:"), \
                f"{resource.urn}: not parented to a caresync component"
