"""Issue 9's faults in the program, one test each (each failed against the program before).

The kinds behind them are tested where they live (tests/stack, tests/emulation); these keep the
named cases from the issue.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from caresync_dr.offline.runtime import ProgramRun, of_type, run_program
from caresync_dr.settings import SettingsError, load_settings, read_stack_file
from tests import offline_runs
from tests.ci_paths import ROOT
from tests.stack.boot import run_boot
from tests.stack.checks import one

INSTANCE = "aws:rds/instance:Instance"
SECRET = "aws:secretsmanager/secret:Secret"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
BACKUP_REPLICATION = ("aws:rds/instanceAutomatedBackupsReplication:"
                      "InstanceAutomatedBackupsReplication")


def test_fault_1_no_database_that_replicas_follow_has_a_managed_password(
        prod_linked: ProgramRun, dr: ProgramRun) -> None:
    for run in (prod_linked, dr):
        for db in of_type(run.resources, INSTANCE):
            assert not db.inputs.get("manageMasterUserPassword"), db.urn
    writer = one(prod_linked, INSTANCE, "primary-database-instance")
    assert writer.inputs["password"], "the master password comes from the random secret"
    assert "password" in writer.ignore_changes, "rotation would be fought by pulumi up"
    names = {s.inputs["name"] for s in of_type(prod_linked.resources, SECRET)}
    assert names == {"caresync/db/master", "caresync/db/app"}


def test_fault_2_in_region_replicas_name_their_source_by_arn(prod_linked: ProgramRun) -> None:
    writer = one(prod_linked, INSTANCE, "primary-database-instance")
    replica = one(prod_linked, INSTANCE, "primary-database-replica-1")
    assert replica.inputs["dbSubnetGroupName"]
    assert replica.inputs["replicateSourceDb"] == writer.outputs["arn"]


def test_fault_3_the_reconciled_standby_applies_multi_az_now(dr: ProgramRun) -> None:
    promoted = offline_runs.dr_with({"activeSite": "standby"})
    db = one(promoted, INSTANCE, "standby-database-instance")
    assert "replicateSourceDb" not in db.inputs and db.inputs["multiAz"] is True
    assert db.inputs["applyImmediately"] is True, "Multi-AZ would wait for the maintenance window"
    # The backup replication's delete would wait on the failed source region: dropping it from
    # the program must not call AWS.
    replication = one(dr, BACKUP_REPLICATION, "standby-pitr-replication")
    assert replication.retain_on_delete


def test_fault_4_failback_builds_a_new_generation_instead_of_re_sourcing(
        dr: ProgramRun) -> None:
    promoted = offline_runs.dr_with({"activeSite": "standby"})
    prod = run_program("prod", project_dir=ROOT, config_overrides={
        "activeSite": "standby", "dbGeneration": "2",
        "dbRetiring": '{"generation": 1, "role": "writer"}'},
        stack_references={"dr": promoted.outputs})
    fresh = one(prod, INSTANCE, "primary-database-g2-instance")
    assert fresh.inputs["identifier"] == "caresync-primary-db-g2"
    assert fresh.inputs["replicateSourceDb"] == promoted.outputs["dbArn"]
    retired = one(prod, INSTANCE, "primary-database-instance")
    assert "replicateSourceDb" not in retired.inputs and not retired.protect


def test_fault_5_in_region_replicas_can_be_deleted(prod_linked: ProgramRun) -> None:
    replica = one(prod_linked, INSTANCE, "primary-database-replica-1")
    assert replica.inputs.get("skipFinalSnapshot") is True
    assert "finalSnapshotIdentifier" not in replica.inputs
    assert replica.inputs.get("deletionProtection") is False and not replica.protect


def test_fault_6_app_volumes_use_the_site_key(prod_linked: ProgramRun) -> None:
    template = one(prod_linked, "aws:ec2/launchTemplate:LaunchTemplate",
                   "primary-app-launch-template")
    (device,) = template.inputs["blockDeviceMappings"]
    assert device["ebs"]["kmsKeyId"] == prod_linked.outputs["kmsKeyArn"]


def test_fault_7_rds_log_groups_exist_before_the_instance(prod_linked: ProgramRun) -> None:
    groups = {g.inputs["name"]: g for g in of_type(prod_linked.resources, LOG_GROUP)}
    for ident in ("caresync-primary-db", "caresync-primary-db-replica-1"):
        for log in ("postgresql", "upgrade"):
            group = groups[f"/aws/rds/instance/{ident}/{log}"]
            assert group.inputs["kmsKeyId"] == prod_linked.outputs["kmsKeyArn"]
            assert group.inputs["retentionInDays"] > 0


def test_fault_8_engine_version_13_is_refused() -> None:
    values, region = read_stack_file("prod", ROOT)
    with pytest.raises(SettingsError, match="14"):
        load_settings("prod", {**values, "dbEngineVersion": "13"}, region)


def test_fault_9_the_standby_boots_from_its_own_region_only(dr: ProgramRun,
                                                           tmp_path: Path) -> None:
    """The standby app authenticates with the primary region unreachable."""
    template = one(dr, "aws:ec2/launchTemplate:LaunchTemplate", "standby-app-launch-template")
    secret = {"engine": "postgres", "username": "caresync_app", "password": "pw-1",
              "dbname": "caresync"}
    boot = run_boot(template.inputs["userData"], tmp_path, serves="us-west-2", secret=secret)
    assert boot.returncode == 0, boot.stderr
    assert boot.env_file["DATABASE_USER"] == "caresync_app"
    assert boot.env_file["DATABASE_PASSWORD"] == "pw-1"
    assert {call[call.index("--region") + 1] for call in boot.calls} == {"us-west-2"}


def test_fault_10_a_broken_replica_pages(prod_linked: ProgramRun, dr: ProgramRun) -> None:
    for run, replica in ((prod_linked, "caresync-primary-db-replica-1"),
                         (dr, "caresync-standby-db")):
        broken = [a for a in of_type(run.resources, ALARM)
                  if a.inputs.get("metricName") == "ReplicaLag"
                  and a.inputs.get("dimensions") == {"DBInstanceIdentifier": replica}
                  and a.inputs.get("comparisonOperator") == "LessThanThreshold"
                  and a.inputs.get("threshold") == 0]
        assert broken, f"{replica}: no alarm on ReplicaLag -1 (replication stopped)"
        assert json.dumps(broken[0].inputs["treatMissingData"]) == '"breaching"'
