"""Both stacks deployed into the emulator: what failover.py will read is really there."""

from __future__ import annotations

import json
import string

import boto3

from caresync_dr.drill.deploy import deploy_stacks
from caresync_dr.drill.runner import REPO_ROOT
from caresync_dr.emulation.server import Emulator
from caresync_dr.inventory import parse_inventory


def test_bootstrap_leaves_every_resource_the_inventory_names_in_the_emulator(
        aws: Emulator) -> None:
    deployment = deploy_stacks(aws, REPO_ROOT)
    assert set(deployment.outputs) == {"prod", "dr"}

    ssm = boto3.client("ssm", region_name="us-west-2")
    inv = parse_inventory(ssm.get_parameter(
        Name="/caresync-dr/failover-inventory", WithDecryption=True)["Parameter"]["Value"])
    east_rds = boto3.client("rds", region_name="us-east-1")
    west_rds = boto3.client("rds", region_name="us-west-2")

    # Databases: the standby replicates from the primary by ARN; nothing was created twice.
    primary = east_rds.describe_db_instances(
        DBInstanceIdentifier=inv.primary.database.identifier)["DBInstances"][0]
    standby = west_rds.describe_db_instances(
        DBInstanceIdentifier=inv.standby.database.identifier)["DBInstances"][0]
    assert standby["ReadReplicaSourceDBInstanceIdentifier"] == primary["DBInstanceArn"]
    assert inv.primary.database.arn == primary["DBInstanceArn"]
    assert len(east_rds.describe_db_instances()["DBInstances"]) == \
        1 + len(inv.primary.database.replica_identifiers)
    assert len(west_rds.describe_db_instances()["DBInstances"]) == 1

    # App tiers: groups at their deployed capacity, behind the inventory's target groups.
    for site in (inv.primary, inv.standby):
        group = boto3.client("autoscaling", region_name=site.region) \
            .describe_auto_scaling_groups(AutoScalingGroupNames=[
                site.app.auto_scaling_group_name])["AutoScalingGroups"][0]
        assert group["DesiredCapacity"] == site.app.capacity.desired
        assert group["TargetGroupARNs"] == [site.app.target_group_arn]
        endpoint = boto3.client("ssm", region_name=site.region).get_parameter(
            Name=site.database.endpoint_parameter, WithDecryption=True)["Parameter"]["Value"]
        assert endpoint.startswith(site.database.identifier + ".")

    # DNS: the failover records carry the inventory's checks; the switch says PRIMARY.
    r53 = boto3.client("route53", region_name="us-east-1")
    records = r53.list_resource_record_sets(HostedZoneId=inv.dns.hosted_zone_id)
    failover = {r["Failover"]: r for r in records["ResourceRecordSets"] if r.get("Failover")}
    assert failover["SECONDARY"]["HealthCheckId"] == inv.standby.health_check_id
    calculated = r53.get_health_check(HealthCheckId=failover["PRIMARY"]["HealthCheckId"])
    assert set(calculated["HealthCheck"]["HealthCheckConfig"]["ChildHealthChecks"]) == {
        inv.primary.health_check_id, inv.traffic_switch.health_check_id}
    switch = boto3.client("s3", region_name="us-west-2").get_object(
        Bucket=inv.traffic_switch.bucket, Key=inv.traffic_switch.key)["Body"].read()
    assert switch == inv.traffic_switch.primary_value.encode()
    topics = boto3.client("sns", region_name="us-west-2").list_topics()["Topics"]
    assert inv.alert_topic_arn in {t["TopicArn"] for t in topics}


def test_bootstrap_leaves_what_backups_need_in_both_regions(aws: Emulator) -> None:
    """Each site's KMS key under the alias backup.py names (D2), and the primary backup
    bucket's replication rule to the standby bucket, stored as S3 stores it."""
    deployment = deploy_stacks(aws, REPO_ROOT)
    for region, site in (("us-east-1", "primary"), ("us-west-2", "standby")):
        key = boto3.client("kms", region_name=region).describe_key(
            KeyId=f"alias/caresync-{site}")["KeyMetadata"]
        assert key["Arn"].startswith(f"arn:aws:kms:{region}:")
    primary_bucket = deployment.outputs["prod"]["backupBucketName"]
    standby_bucket = deployment.outputs["dr"]["backupBucketName"]
    config = boto3.client("s3", region_name="us-east-1").get_bucket_replication(
        Bucket=primary_bucket)["ReplicationConfiguration"]
    [rule] = config["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["Destination"]["Bucket"] == f"arn:aws:s3:::{standby_bucket}"
    assert rule["Destination"]["EncryptionConfiguration"]["ReplicaKmsKeyID"].startswith(
        "arn:aws:kms:us-west-2:")


def test_bootstrap_replicates_the_database_secrets_under_the_standby_key(
        aws: Emulator) -> None:
    """D1: the prod stack creates the secrets, step 3 adds the standby replica (an in-place
    ReplicateSecretToRegions); the standby region then reads them alone, under its own key.
    """
    from caresync_dr.db.secrets import APP_SECRET_NAME, MASTER_SECRET_NAME
    from caresync_dr.emulation.secretsmanager import ReplicaKeys

    with ReplicaKeys():
        deploy_stacks(aws, REPO_ROOT)
        standby_key = boto3.client("kms", region_name="us-west-2").describe_key(
            KeyId="alias/caresync-standby")["KeyMetadata"]["Arn"]
        aws.take_down(regions=["us-east-1"])
        west = boto3.client("secretsmanager", region_name="us-west-2")
        for name in (APP_SECRET_NAME, MASTER_SECRET_NAME):
            replica = west.describe_secret(SecretId=name)
            assert (replica["PrimaryRegion"], replica["KmsKeyId"]) == ("us-east-1", standby_key)
            value = json.loads(west.get_secret_value(SecretId=name)["SecretString"])
            assert set(value) == {"engine", "username", "password", "dbname"}
            assert len(value["password"]) >= 32
        app = json.loads(west.get_secret_value(SecretId=APP_SECRET_NAME)["SecretString"])
    assert app["username"] == "caresync_app"


def test_passwords_are_drawn_as_the_random_provider_draws_them() -> None:
    from caresync_dr.db.secrets import PASSWORD_LENGTH, PASSWORD_SPECIALS
    from caresync_dr.drill.deploy import CREATORS

    create = CREATORS["random:index/randomPassword:RandomPassword"]
    inputs = {"length": float(PASSWORD_LENGTH), "special": True,
              "overrideSpecial": PASSWORD_SPECIALS, "minLower": 1.0, "minUpper": 1.0,
              "minNumeric": 1.0, "minSpecial": 4.0}
    first, second = (str(create(None, "pw", dict(inputs), "us-east-1")["result"])  # type: ignore[arg-type]
                     for _ in range(2))
    assert first != second and len(first) == PASSWORD_LENGTH
    assert set(first) <= set(string.ascii_letters + string.digits + PASSWORD_SPECIALS)
    assert sum(c in PASSWORD_SPECIALS for c in first) >= 4
    assert any(c.islower() for c in first) and any(c.isupper() for c in first)
    assert any(c.isdigit() for c in first)
