"""A primary site's app tier and database seeded into the emulator in the shapes the prod
stack creates (names from the same functions), for the app.py and pitr.py tests.

Faster than deploying the program (tests/drill does that): only what the two commands read
and change, each built the way the program builds it - a numbered launch template version on
the group, the deploy alarms, an encrypted writer in the site's subnet and parameter groups,
the SecureString endpoint, the app's secret, the no-access group, the incident bucket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import boto3

from caresync_dr import names
from caresync_dr.app.rollout import rollout_alarm_names
from caresync_dr.db.secrets import APP_SECRET_NAME
from caresync_dr.emulation.server import ACCOUNT_ID
from caresync_dr.names import app_name as group_name
from caresync_dr.names import restore_test_security_group_name, site_key_alias

REGION = "us-east-1"
SITE = "primary"
GOOD_AMI = "ami-0123456789abcdef0"
NEXT_AMI = "ami-0fedcba9876543210"


def client(service: str, region: str = REGION) -> Any:
    return boto3.client(service, region_name=region)  # type: ignore[call-overload]


@dataclass
class Site:
    name: str = SITE
    region: str = REGION
    vpc: str = ""
    subnets: list[str] = field(default_factory=list)
    template: str = ""
    target_group: str = ""
    db_group: str = ""
    app_group: str = ""
    fence_group: str = ""
    key_arn: str = ""
    writer: str = ""
    endpoint: str = ""

    def __post_init__(self) -> None:
        self.writer = self.writer or names.db_identifier(self.name)


def seed_image(region: str, image: str) -> None:
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import Ami

    backend = ec2_backends[ACCOUNT_ID][region]
    if image not in backend.amis:
        backend.amis[image] = Ami(backend, ami_id=image, name=image, state="available")


def app_tier(site: Site | None = None, version: str = "1", desired: int = 2) -> Site:
    """VPC, target group, the launch template (versions 1 and 2: the good release and the next
    one) and the group on ``version``, the deploy alarms (OK), the incident bucket."""
    site = site or Site()
    region, name = site.region, site.name
    ec2 = client("ec2", region)
    if not site.vpc:
        site.vpc = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
        site.subnets = [ec2.create_subnet(VpcId=site.vpc, CidrBlock=f"10.10.{i}.0/24",
                                          AvailabilityZone=f"{region}{z}")["Subnet"]["SubnetId"]
                        for i, z in ((1, "a"), (2, "b"))]
    for image in (GOOD_AMI, NEXT_AMI):
        seed_image(region, image)
    template = ec2.create_launch_template(
        LaunchTemplateName=group_name(name),
        LaunchTemplateData={"ImageId": GOOD_AMI, "InstanceType": "t3.medium"})
    site.template = template["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(LaunchTemplateId=site.template, SourceVersion="1",
                                       LaunchTemplateData={"ImageId": NEXT_AMI})
    site.target_group = client("elbv2", region).create_target_group(
        Name=group_name(name), Protocol="HTTP", Port=8080,
        VpcId=site.vpc)["TargetGroups"][0]["TargetGroupArn"]
    client("autoscaling", region).create_auto_scaling_group(
        AutoScalingGroupName=group_name(name), MinSize=desired, MaxSize=6,
        DesiredCapacity=desired, VPCZoneIdentifier=",".join(site.subnets),
        TargetGroupARNs=[site.target_group],
        LaunchTemplate={"LaunchTemplateId": site.template, "Version": version})
    for alarm in rollout_alarm_names(name):
        client("cloudwatch", region).put_metric_alarm(
            AlarmName=alarm, MetricName="UnHealthyHostCount", Namespace="AWS/ApplicationELB",
            Statistic="Maximum", Period=60, EvaluationPeriods=1, Threshold=0,
            ComparisonOperator="GreaterThanThreshold")
    bucket = f"caresync-{name}-backups-{ACCOUNT_ID}"
    if region == "us-east-1":
        client("s3", region).create_bucket(Bucket=bucket)
    else:
        client("s3", region).create_bucket(Bucket=bucket, CreateBucketConfiguration={
            "LocationConstraint": region})
    return site


def database(site: Site, app_password: str) -> Site:
    """The site key (alias), subnet/parameter/security groups, the no-access group, the
    encrypted writer, its SecureString endpoint and the app's secret."""
    region, name = site.region, site.name
    ec2, rds, kms = client("ec2", region), client("rds", region), client("kms", region)
    key = kms.create_key(Description="site key")["KeyMetadata"]
    kms.create_alias(AliasName=site_key_alias(name), TargetKeyId=key["KeyId"])
    site.key_arn = key["Arn"]
    site.app_group = ec2.create_security_group(
        GroupName=f"caresync-{name}-app", Description="app", VpcId=site.vpc)["GroupId"]
    site.db_group = ec2.create_security_group(
        GroupName=f"caresync-{name}-db", Description="db", VpcId=site.vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=site.db_group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
        "UserIdGroupPairs": [{"GroupId": site.app_group}]}])
    site.fence_group = ec2.create_security_group(
        GroupName=restore_test_security_group_name(name), Description="no access",
        VpcId=site.vpc)["GroupId"]
    ec2.revoke_security_group_egress(GroupId=site.fence_group, IpPermissions=[{
        "IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    rds.create_db_subnet_group(DBSubnetGroupName=f"caresync-{name}-db",
                               DBSubnetGroupDescription="private", SubnetIds=site.subnets)
    rds.create_db_parameter_group(DBParameterGroupName=f"caresync-{name}-postgres15",
                                  DBParameterGroupFamily="postgres15", Description="tls")
    db = rds.create_db_instance(
        DBInstanceIdentifier=site.writer, DBInstanceClass="db.r6g.large", Engine="postgres",
        EngineVersion="15.4", MasterUsername="caresync_admin", MasterUserPassword="x" * 24,
        AllocatedStorage=100, DBSubnetGroupName=f"caresync-{name}-db",
        VpcSecurityGroupIds=[site.db_group], DBParameterGroupName=f"caresync-{name}-postgres15",
        StorageEncrypted=True, KmsKeyId=site.key_arn, BackupRetentionPeriod=30, MultiAZ=True,
        Tags=[{"Key": "caresync:generation", "Value": "1"}])["DBInstance"]
    site.endpoint = f"{db['Endpoint']['Address']}:{db['Endpoint']['Port']}"
    client("ssm", region).put_parameter(
        Name=names.endpoint_parameter_name(name), Value=site.endpoint, Type="SecureString",
        KeyId=site_key_alias(name))
    client("secretsmanager", region).create_secret(Name=APP_SECRET_NAME, SecretString=json.dumps({
        "engine": "postgres", "username": "caresync_app", "password": app_password,
        "dbname": "caresync"}))
    return site


def saved_version() -> str:
    group = client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[group_name(SITE)])["AutoScalingGroups"][0]
    return str(group["LaunchTemplate"]["Version"])


def refresh_requests(recorded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in recorded if r.get("AutoScalingGroupName") == group_name(SITE)]
