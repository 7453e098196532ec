"""Databases: encrypted, deletion-protected, retention, rds.force_ssl, not public; the standby
replica uses the primary's ARN and a standby-region key; activeSite standby drops the source."""

from __future__ import annotations

from caresync_dr.offline.runtime import ProgramRun, RegisteredResource, of_type
from tests.stack.checks import check, one

INSTANCE = "aws:rds/instance:Instance"
PARAMS = "aws:rds/parameterGroup:ParameterGroup"


def _parameter_group(run: ProgramRun, db: RegisteredResource) -> RegisteredResource:
    groups = [g for g in of_type(run.resources, PARAMS)
              if g.outputs["name"] == db.inputs["parameterGroupName"]]
    check(db, len(groups) == 1, f"parameter group {db.inputs['parameterGroupName']!r} unknown")
    return groups[0]


def test_every_database_has_the_hipaa_defaults(any_stack: ProgramRun) -> None:
    instances = of_type(any_stack.resources, INSTANCE)
    assert instances, f"stack {any_stack.stack} has no database"
    key_arn = any_stack.outputs["kmsKeyArn"]
    for db in instances:
        check(db, db.inputs.get("storageEncrypted") is True, "storage not encrypted")
        check(db, db.inputs.get("kmsKeyId") == key_arn,
              f"not encrypted with the site's customer-managed key {key_arn}")
        in_region_replica = db.inputs.get("tags", {}).get("caresync:role") == "read-replica"
        check(db, db.inputs.get("deletionProtection") is (not in_region_replica),
              "deletion protection must guard the writer and the cross-region replica, and "
              "must not block removing an in-region replica")
        check(db, db.inputs.get("backupRetentionPeriod") == 30,
              f"automated backups kept {db.inputs.get('backupRetentionPeriod')} days, not 30")
        check(db, db.inputs.get("publiclyAccessible") is False, "publicly accessible")
        check(db, set(db.inputs.get("enabledCloudwatchLogsExports", [])) >= {"postgresql"},
              "PostgreSQL logs are not exported")
        check(db, "password" not in db.inputs or db.name == "primary-database-instance",
              "only the bootstrap writer sets the master password (replicas inherit it)")
        check(db, not db.inputs.get("manageMasterUserPassword"),
              "RDS refuses read replicas of a source whose password Secrets Manager manages")
        params = _parameter_group(any_stack, db)
        force_ssl = [p for p in params.inputs["parameters"] if p["name"] == "rds.force_ssl"]
        check(params, [p["value"] for p in force_ssl] == ["1"], "rds.force_ssl is not 1")
        check(params, params.inputs["family"] == "postgres15", "not a postgres15 family")


def test_primary_is_multi_az_with_the_secret_password_and_a_replica(
        prod_bootstrap: ProgramRun) -> None:
    db = one(prod_bootstrap, INSTANCE, "primary-database-instance")
    assert db.inputs["identifier"] == "caresync-primary-db"
    assert db.inputs["engine"] == "postgres" and db.inputs["multiAz"] is True
    password = one(prod_bootstrap, "random:index/randomPassword:RandomPassword",
                   "primary-credentials-master-password")
    assert db.inputs["password"] == password.outputs["result"]
    assert db.ignore_changes == ("password",), "a rotated password must not be set back"
    assert "replicateSourceDb" not in db.inputs
    replica = one(prod_bootstrap, INSTANCE, "primary-database-replica-1")
    assert replica.inputs["identifier"] == "caresync-primary-db-replica-1"
    assert replica.inputs["replicateSourceDb"] == db.outputs["arn"], \
        "with db_subnet_group_name an in-region replica must name its source by ARN"
    assert prod_bootstrap.outputs["dbReplicaIdentifiers"] == ["caresync-primary-db-replica-1"]


def test_standby_is_a_cross_region_replica_of_the_primary(
        prod_bootstrap: ProgramRun, dr: ProgramRun) -> None:
    db = one(dr, INSTANCE, "standby-database-instance")
    assert db.inputs["identifier"] == "caresync-standby-db"
    assert db.inputs["replicateSourceDb"] == prod_bootstrap.outputs["dbArn"], \
        "a cross-region replica must name its source by ARN"
    assert db.inputs["kmsKeyId"].startswith("arn:aws:kms:us-west-2:"), db.inputs["kmsKeyId"]
    assert db.inputs["kmsKeyId"] == dr.outputs["kmsKeyArn"]
    for field in ("username", "dbName", "engine", "password", "engineVersion"):
        assert field not in db.inputs, f"{field} cannot be set on a replica"
    subnet_group = one(dr, "aws:rds/subnetGroup:SubnetGroup", "standby-database-subnets")
    assert db.inputs["dbSubnetGroupName"] == subnet_group.outputs["name"] == "caresync-standby-db"
    assert db.inputs["parameterGroupName"] == "caresync-standby-postgres15"
    assert db.inputs["vpcSecurityGroupIds"] == [dr.outputs["dbSecurityGroupId"]]
    assert dr.outputs["dbSecurityGroupId"] != prod_bootstrap.outputs["dbSecurityGroupId"]


def test_primary_backups_are_replicated_into_the_standby_region(
        prod_bootstrap: ProgramRun, dr: ProgramRun) -> None:
    replication = one(dr, "aws:rds/instanceAutomatedBackupsReplication:"
                      "InstanceAutomatedBackupsReplication", "standby-pitr-replication")
    assert replication.inputs["sourceDbInstanceArn"] == prod_bootstrap.outputs["dbArn"]
    assert replication.inputs["kmsKeyId"] == dr.outputs["kmsKeyArn"]
    assert replication.inputs["retentionPeriod"] == 30
    assert replication.outputs["region"] == "us-west-2"


def test_active_standby_renders_its_database_as_the_writer(dr_promoted: ProgramRun) -> None:
    db = one(dr_promoted, INSTANCE, "standby-database-instance")
    assert "replicateSourceDb" not in db.inputs, "a promoted standby still names a source"
    assert db.inputs["identifier"] == "caresync-standby-db", "promotion must not rename it"
    assert db.inputs["multiAz"] is True and db.inputs["applyImmediately"] is True
    assert db.inputs["backupRetentionPeriod"] == 30
    for field in ("username", "dbName", "engine", "password", "allocatedStorage"):
        # set at creation only; on a promoted replica they would force a replacement
        assert field not in db.inputs, field
    assert db.protect and db.inputs["deletionProtection"] is True
    assert db.inputs["finalSnapshotIdentifier"] == "caresync-standby-db-final"
    assert of_type(dr_promoted.resources, "aws:rds/instanceAutomatedBackupsReplication:"
                   "InstanceAutomatedBackupsReplication") == [], \
        "the writer's own region needs no copy of its automated backups"
    replicas = [r for r in of_type(dr_promoted.resources, INSTANCE) if r is not db]
    assert [r.inputs["replicateSourceDb"] for r in replicas] == [db.outputs["arn"]]


def test_each_site_publishes_its_database_host_parameter(any_stack: ProgramRun) -> None:
    site = "primary" if any_stack.stack == "prod" else "standby"
    parameter = one(any_stack, "aws:ssm/parameter:Parameter", f"{site}-database-endpoint")
    db = one(any_stack, INSTANCE, f"{site}-database-instance")
    assert parameter.inputs["name"] == f"/caresync-dr/{site}/database-host"
    assert (parameter.inputs["type"], parameter.inputs["keyId"]) == (
        "SecureString", f"alias/caresync-{site}")
    # host:port, the form failover.py writes when it repoints the app (--scope database)
    assert parameter.inputs["value"] == db.outputs["endpoint"]
    assert parameter.inputs["value"].endswith(":5432")
    assert any_stack.outputs["dbEndpointParameter"] == parameter.inputs["name"]


def test_replicas_have_their_own_group_so_failover_fences_only_the_primary(
        prod_bootstrap: ProgramRun, dr: ProgramRun) -> None:
    sg_type = "aws:ec2/securityGroup:SecurityGroup"
    app = one(prod_bootstrap, sg_type, "primary-network-app-sg")
    primary_sg = one(prod_bootstrap, sg_type, "primary-network-db-sg")
    replica_sg = one(prod_bootstrap, sg_type, "primary-network-db-replica-sg")
    db = one(prod_bootstrap, INSTANCE, "primary-database-instance")
    replica = one(prod_bootstrap, INSTANCE, "primary-database-replica-1")
    assert db.inputs["vpcSecurityGroupIds"] == [primary_sg.resource_id]
    assert replica.inputs["vpcSecurityGroupIds"] == [replica_sg.resource_id]
    assert primary_sg.resource_id != replica_sg.resource_id
    for group in (primary_sg, replica_sg):
        (rule,) = group.inputs["ingress"]
        check(group, rule["securityGroups"] == [app.resource_id] and "cidrBlocks" not in rule,
              f"ingress not limited to the app group: {rule}")
        check(group, (rule["fromPort"], rule["toPort"]) == (5432, 5432), "not 5432 only")
        check(group, group.inputs.get("egress") == [], "egress allowed")
    # What failover revokes (the inventory's primary.database.securityGroupId) is the old
    # primary's group alone: no replica sits behind it.
    assert prod_bootstrap.outputs["dbSecurityGroupId"] == primary_sg.resource_id
    behind = [r.name for r in of_type(prod_bootstrap.resources, INSTANCE)
              if primary_sg.resource_id in r.inputs.get("vpcSecurityGroupIds", [])]
    assert behind == ["primary-database-instance"]
    assert not [r for r in of_type(dr.resources, sg_type) if r.name.endswith("db-replica-sg")]
