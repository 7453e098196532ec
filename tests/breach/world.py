"""Both CareSync sites in moto, in the shapes the stacks create, for the breach tests.

Per site: VPC, subnets, app security group, load balancer, target group and Auto Scaling group
``caresync-<site>-app`` (instances registered), backup and audit buckets, the trail
``caresync-<site>-audit`` with S3 data events on the backup bucket, its log group, the security
topic, the endpoint parameter. The primary holds the database secrets, replicated to the
standby. IAM: a user with an access key (the leaked one) and the app's role.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.loaders
from botocore.exceptions import EndpointConnectionError

from caresync_dr.breach.sites import Layout, layout_from
from caresync_dr.db.secrets import APP_SECRET_NAME, MASTER_SECRET_NAME, secret_value
from tests.ci_paths import ROOT

ACCOUNT = "123456789012"    # moto's default account
# One botocore loader for every session: parsing the service models once (as
# tests/failover/world.py does) instead of per client keeps these tests fast.
_LOADER = botocore.loaders.create_loader()


def fast_session() -> boto3.Session:
    session = boto3.Session()
    session._session.register_component("data_loader", _LOADER)
    return session


_SEED = fast_session()


def _client(service: str, region: str) -> Any:
    return _SEED.client(service, region_name=region)  # type: ignore[call-overload]
PRIMARY, STANDBY = "us-east-1", "us-west-2"
LEAKED_USER = "contractor"


@dataclass
class Site:
    region: str
    vpc: str
    app_sg: str
    target_group: str
    instances: list[str]


@dataclass
class BreachWorld:
    layout: Layout
    sites: dict[str, Site]
    access_key: str
    access_secret: str = field(repr=False)
    role: str
    passwords: dict[str, str] = field(default_factory=dict, repr=False)

    def client(self, service: str, region: str) -> Any:
        return _client(service, region)


def _site(layout: Layout, region: str, endpoint: str) -> Site:
    site = layout.by_region(region)
    ec2 = _client("ec2", region)
    vpc = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.10.{i}.0/24",
                                 AvailabilityZone=f"{region}{'ab'[i]}")["Subnet"]["SubnetId"]
               for i in range(2)]
    app_sg = ec2.create_security_group(GroupName=f"caresync-{site.site}-app", Description="app",
                                       VpcId=vpc)["GroupId"]
    elb = _client("elbv2", region)
    alb = elb.create_load_balancer(Name=f"caresync-{site.site}-alb", Subnets=subnets)
    tg = elb.create_target_group(Name=f"caresync-{site.site}-app", Protocol="HTTP", Port=8080,
                                 VpcId=vpc, TargetType="instance")["TargetGroups"][0]
    elb.create_listener(LoadBalancerArn=alb["LoadBalancers"][0]["LoadBalancerArn"],
                        Protocol="HTTP", Port=80,
                        DefaultActions=[{"Type": "forward",
                                         "TargetGroupArn": tg["TargetGroupArn"]}])
    ec2.create_launch_template(LaunchTemplateName=f"caresync-{site.site}-app",
                               LaunchTemplateData={"ImageId": "ami-12c6146b",
                                                   "InstanceType": "t3.medium",
                                                   "SecurityGroupIds": [app_sg]})
    asg = _client("autoscaling", region)
    desired = 2 if site.site == "primary" else 1
    asg.create_auto_scaling_group(
        AutoScalingGroupName=site.auto_scaling_group, MinSize=desired, MaxSize=4,
        DesiredCapacity=desired, VPCZoneIdentifier=",".join(subnets),
        LaunchTemplate={"LaunchTemplateName": f"caresync-{site.site}-app", "Version": "$Latest"},
        TargetGroupARNs=[tg["TargetGroupArn"]])
    instances = [i["InstanceId"] for i in asg.describe_auto_scaling_groups(
        AutoScalingGroupNames=[site.auto_scaling_group])["AutoScalingGroups"][0]["Instances"]]
    s3 = _client("s3", region)
    location = {} if region == "us-east-1" else {
        "CreateBucketConfiguration": {"LocationConstraint": region}}
    audit = f"caresync-{site.site}-audit-{ACCOUNT}"
    for bucket in (site.backup_bucket, audit):
        s3.create_bucket(Bucket=bucket, **location)
    logs = _client("logs", region)
    for group in (site.trail_log_group, site.db_log_group):
        logs.create_log_group(logGroupName=group)
    trail = _client("cloudtrail", region)
    trail.create_trail(Name=site.trail_name, S3BucketName=audit,
                       IsMultiRegionTrail=site.trail_multi_region)
    trail.put_event_selectors(TrailName=site.trail_name, EventSelectors=[{
        "ReadWriteType": "All", "IncludeManagementEvents": True,
        "DataResources": [{"Type": "AWS::S3::Object",
                           "Values": [f"arn:aws:s3:::{site.backup_bucket}/"]}]}])
    trail.start_logging(Name=site.trail_name)
    _client("sns", region).create_topic(
        Name=site.security_topic_arn.rsplit(":", 1)[1])
    _client("ssm", region).put_parameter(
        Name=site.endpoint_parameter, Value=endpoint, Type="SecureString")
    return Site(region=region, vpc=vpc, app_sg=app_sg, target_group=tg["TargetGroupArn"],
                instances=instances)


def seed(endpoints: dict[str, str] | None = None,
         passwords: dict[str, str] | None = None) -> BreachWorld:
    """Inside ``mock_aws()``: both sites, the secrets and the IAM principals."""
    layout = layout_from(ROOT, ACCOUNT)
    endpoints = endpoints or {PRIMARY: "db-primary.example:5432",
                              STANDBY: "db-standby.example:5432"}
    sites = {region: _site(layout, region, endpoints[region]) for region in (PRIMARY, STANDBY)}
    passwords = passwords or {"caresync_admin": "Master-First-Pass-1",
                              "caresync_app": "App-First-Pass-1"}
    secrets = _client("secretsmanager", PRIMARY)
    for name, user in ((MASTER_SECRET_NAME, "caresync_admin"), (APP_SECRET_NAME, "caresync_app")):
        secrets.create_secret(Name=name, SecretString=secret_value(user, passwords[user],
                                                                   "caresync"),
                              AddReplicaRegions=[{"Region": STANDBY}])
    iam = _client("iam", PRIMARY)
    iam.create_user(UserName=LEAKED_USER)
    key = iam.create_access_key(UserName=LEAKED_USER)["AccessKey"]
    role = "caresync-primary-app"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "ec2.amazonaws.com"}}]}))
    return BreachWorld(layout=layout, sites=sites, access_key=key["AccessKeyId"],
                       access_secret=key["SecretAccessKey"], role=role, passwords=passwords)


def take_down(session: boto3.Session, region: str) -> list[str]:
    """Every request to ``region`` fails to connect, as when the region is gone; for us-east-1
    that includes IAM, whose control plane answers there only."""
    refused: list[str] = []

    def refuse(request: Any, **_: Any) -> None:
        url = str(request.url)
        if f".{region}." in url or (region == "us-east-1" and "iam.amazonaws.com" in url):
            refused.append(url)
            raise EndpointConnectionError(endpoint_url=url)

    session.events.register_first("before-send", refuse)
    return refused

