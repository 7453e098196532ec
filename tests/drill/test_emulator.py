"""The emulator layer: a region that goes down, promotion that detaches, targets that warm up."""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

from caresync_dr.drill.emulator import Emulator
from caresync_dr.drill.promotion import ReplicaPromotions
from caresync_dr.drill.scaling import TargetWarmup

FAST = Config(retries={"mode": "standard", "total_max_attempts": 2},
              connect_timeout=1, read_timeout=2)


def test_region_down_resets_connections_for_that_region_and_route53(aws: Emulator) -> None:
    east = boto3.client("ssm", region_name="us-east-1", config=FAST)
    west = boto3.client("ssm", region_name="us-west-2", config=FAST)
    east.put_parameter(Name="/p", Value="east", Type="String")
    west.put_parameter(Name="/p", Value="west", Type="String")

    aws.take_down(regions=["us-east-1"])

    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        east.get_parameter(Name="/p")
    # Route 53's API is in us-east-1 whatever region the client is configured for.
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        boto3.client("route53", region_name="us-west-2", config=FAST).list_hosted_zones()
    assert west.get_parameter(Name="/p")["Parameter"]["Value"] == "west"
    assert aws.outage.refused >= 3  # two attempts for ssm, at least one for route53

    aws.restore()
    assert east.get_parameter(Name="/p")["Parameter"]["Value"] == "east"


def _replica_pair() -> tuple[str, str]:
    east = boto3.client("rds", region_name="us-east-1")
    west = boto3.client("rds", region_name="us-west-2")
    source = east.create_db_instance(DBInstanceIdentifier="db-east", Engine="postgres",
                                     DBInstanceClass="db.r6g.large", AllocatedStorage=100,
                                     MasterUsername="caresync", MasterUserPassword="x" * 12)
    arn = source["DBInstance"]["DBInstanceArn"]
    west.create_db_instance_read_replica(DBInstanceIdentifier="db-west",
                                         SourceDBInstanceIdentifier=arn)
    return arn, "db-west"


def test_promotion_takes_its_time_runs_the_real_action_and_detaches(aws: Emulator) -> None:
    _source_arn, replica = _replica_pair()
    promoted: list[float] = []
    promotions = ReplicaPromotions(delay_seconds=0.6)
    promotions.bind("us-west-2", replica, lambda: promoted.append(time.monotonic()))
    aws.hooks.append(promotions)
    west = boto3.client("rds", region_name="us-west-2")

    asked = time.monotonic()
    west.promote_read_replica(DBInstanceIdentifier=replica)
    during = west.describe_db_instances(DBInstanceIdentifier=replica)["DBInstances"][0]
    assert during["DBInstanceStatus"] == "modifying"
    assert during.get("ReadReplicaSourceDBInstanceIdentifier")  # still replicating
    assert not promoted

    promotions.join()
    after = west.describe_db_instances(DBInstanceIdentifier=replica)["DBInstances"][0]
    assert after["DBInstanceStatus"] == "available"
    assert "ReadReplicaSourceDBInstanceIdentifier" not in after
    assert promoted and promoted[0] - asked >= 0.6
    source = boto3.client("rds", region_name="us-east-1").describe_db_instances(
        DBInstanceIdentifier="db-east")["DBInstances"][0]
    assert source["ReadReplicaDBInstanceIdentifiers"] == []
    assert promotions.records[0].completed_at is not None


def test_promotion_of_an_unbound_instance_is_left_to_moto(aws: Emulator) -> None:
    _replica_pair()
    promotions = ReplicaPromotions(delay_seconds=5)
    aws.hooks.append(promotions)
    boto3.client("rds", region_name="us-west-2").promote_read_replica(
        DBInstanceIdentifier="db-west")
    assert promotions.records == []


def test_a_failed_real_promotion_leaves_the_replica_attached(aws: Emulator) -> None:
    _replica_pair()
    promotions = ReplicaPromotions(delay_seconds=0)

    def broken() -> None:
        raise RuntimeError("pg_ctl promote failed")

    promotions.bind("us-west-2", "db-west", broken)
    aws.hooks.append(promotions)
    west = boto3.client("rds", region_name="us-west-2")
    west.promote_read_replica(DBInstanceIdentifier="db-west")
    promotions.join()
    after = west.describe_db_instances(DBInstanceIdentifier="db-west")["DBInstances"][0]
    assert after.get("ReadReplicaSourceDBInstanceIdentifier")
    assert promotions.records[0].error == "RuntimeError: pg_ctl promote failed"


def test_new_targets_pass_health_only_after_the_warmup(aws: Emulator) -> None:
    ec2 = boto3.client("ec2", region_name="us-west-2")
    elb = boto3.client("elbv2", region_name="us-west-2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    group = elb.create_target_group(Name="app", Protocol="HTTP", Port=8080,
                                    VpcId=vpc)["TargetGroups"][0]["TargetGroupArn"]
    image = ec2.describe_images()["Images"][0]["ImageId"]
    warm, new = (i["InstanceId"] for i in
                 ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2)["Instances"])
    elb.register_targets(TargetGroupArn=group, Targets=[{"Id": warm}])
    warmup = TargetWarmup(delay_seconds=0.5)
    warmup.arm()
    try:
        elb.register_targets(TargetGroupArn=group, Targets=[{"Id": new}])

        def states() -> dict[str, str]:
            health = elb.describe_target_health(TargetGroupArn=group)
            return {h["Target"]["Id"]: h["TargetHealth"]["State"]
                    for h in health["TargetHealthDescriptions"]}

        assert states() == {warm: "healthy", new: "initial"}
        time.sleep(0.6)
        assert states() == {warm: "healthy", new: "healthy"}
    finally:
        warmup.disarm()
