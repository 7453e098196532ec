"""A moto-seeded pair of CareSync sites in the shapes the dr stack creates, wired to the shims
for moto's documented gaps, so the failover tests assert what real AWS would do.

The shims themselves live in ``caresync_dr.emulation`` (decision D3), shared with the drill;
this module keeps the names the failover tests use and chooses the clock:

- ``install_shims``: promotions stay ``modifying`` until the tool's PromoteReadReplica call
  returns (or ``overrides["promote_seconds"]`` later), as ``emulation.rds.ReplicaPromotions``
  models them; ``StatusInfos`` on every replica (``emulation.rds.ReplicationStatus``) with the
  status in ``replication_status[0]``; instance refreshes that stay in progress
  (``emulation.autoscaling.InstanceRefreshes``). Returns the armed shims: disarm them when the
  world ends (``with``).
- ``complete_promotion``: a promotion finished, the way RDS ends it (``emulation.rds``).
- ``take_down`` / ``throttle``: faults below botocore's retry logic (``emulation.network``).
- ``put_lag``: the ReplicaLag datapoints RDS publishes (``emulation.cloudwatch``).
- The public health URL: a local HTTP server whose answer is computed from the emulated state
  (the traffic switch picks the region, the database's promotion decides ``writable``), the way
  Route 53 plus the site apps would answer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.rds.models import rds_backends
from moto.s3.models import s3_backends
from moto.ssm.models import ssm_backends

from caresync_dr.drill.localhttp import serve
from caresync_dr.emulation import network
from caresync_dr.emulation.autoscaling import InstanceRefreshes
from caresync_dr.emulation.cloudwatch import publish_replica_lag
from caresync_dr.emulation.rds import (
    ReplicaPromotions,
    ReplicationStatus,
    detach_replica_everywhere,
)
from caresync_dr.inventory import (
    AppInventory,
    DatabaseInventory,
    DnsInventory,
    Inventory,
    Objectives,
    SiteInventory,
    TrafficSwitch,
)
from caresync_dr.names import site_key_alias
from caresync_dr.settings import Capacity

PRIMARY = "us-east-1"
STANDBY = "us-west-2"
INVENTORY_PARAMETER = "/caresync-dr/failover-inventory"   # the default in Pulumi.dr.yaml
PRIMARY_DB = "caresync-prod-db"
PRIMARY_REPLICA = "caresync-prod-db-replica-1"
STANDBY_DB = "caresync-dr-db"
SWITCH_KEY = "switch/traffic"


@dataclass
class Calls:
    """Every AWS call a run makes, as (service id, operation, client region)."""

    seen: list[tuple[str, str, str]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [f"{s}:{o}" for s, o, _ in self.seen]

    def count(self, operation: str) -> int:
        return sum(1 for _, o, _ in self.seen if o == operation)


@dataclass
class World:
    session: boto3.Session
    inventory: Inventory
    health_url: str
    calls: Calls
    switch_bucket: str
    backup_bucket: str
    refreshes: list[dict[str, Any]]
    replication_status: list[str]
    server: ThreadingHTTPServer
    overrides: dict[str, Any] = field(default_factory=dict)   # e.g. {"health": {...}}

    # --- direct reads of the emulator (not through boto3: these are not the tool's calls) ---
    def db(self, region: str, identifier: str) -> Any:
        return rds_backends[DEFAULT_ACCOUNT_ID][region].databases[identifier]

    def switch_value(self) -> str:
        key = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object(self.switch_bucket, SWITCH_KEY)
        assert key is not None
        return bytes(key.value).decode()

    def parameter(self, region: str, name: str) -> str | None:
        """The value as the app reads it (decrypted: moto stores SecureStrings wrapped)."""
        if ssm_backends[DEFAULT_ACCOUNT_ID][region].get_parameter(name) is None:
            return None
        return str(client("ssm", region).get_parameter(Name=name, WithDecryption=True)[
            "Parameter"]["Value"])


# One botocore loader for every session the tests create: parsing the service models (EC2's is
# megabytes of JSON) once instead of per session keeps the suite fast.
_LOADER = botocore.loaders.create_loader()
_CLIENTS: dict[tuple[str, str, str], Any] = {}


def fast_session() -> boto3.Session:
    session = boto3.Session()
    session._session.register_component("data_loader", _LOADER)
    return session


def client(service: str, region: str) -> Any:
    """A client for seeding and inspecting; its calls are not the tool's and are not recorded.

    Cached for the whole test session: moto's mock intercepts at send time, so a client made
    under one ``mock_aws()`` serves the next one's fresh backends just as well."""
    key = (service, region, os.environ.get("AWS_ENDPOINT_URL", ""))
    if key not in _CLIENTS:
        _CLIENTS[key] = fast_session().client(service, region_name=region)  # type: ignore
    return _CLIENTS[key]


def _promoted(db: Any) -> bool:
    return not db.is_replica and not db.source_db_instance_identifier


# --- shims ------------------------------------------------------------------------------------

def complete_promotion(params: dict[str, Any], **_: Any) -> None:
    """A promotion finished: detached and available, the way RDS ends it."""
    detach_replica_everywhere(DEFAULT_ACCOUNT_ID, params["DBInstanceIdentifier"])


@dataclass
class Shims:
    """The emulation shims one world armed; ``disarm`` (or leaving ``with``) removes them."""

    promotions: ReplicaPromotions
    replication: ReplicationStatus
    refreshes: InstanceRefreshes

    def disarm(self) -> None:
        for shim in (self.refreshes, self.replication, self.promotions):
            shim.disarm()

    def __enter__(self) -> Shims:
        return self

    def __exit__(self, *exc: object) -> None:
        self.disarm()


_ARMED: list[Shims] = []


def install_shims(world_session: boto3.Session, refreshes: list[dict[str, Any]],
                  replication_status: list[str], overrides: dict[str, Any]) -> Shims:
    """``overrides["promote_seconds"]``: promotion stays "modifying" that long, as in RDS --
    set before this call, RDS's clock runs it whatever becomes of the caller (a run killed
    right after asking); set later, it counts from the tool's answer. Without it the
    promotion finishes when the tool's call returns. Started refreshes are appended to
    ``refreshes`` as DescribeInstanceRefreshes shows them."""
    for earlier in _ARMED:  # a world whose creator never disarmed it ends here
        earlier.disarm()
    _ARMED.clear()
    given = overrides.get("promote_seconds")
    promotions = ReplicaPromotions(delay_seconds=None if given is None else float(given)).arm()
    shims = Shims(promotions=promotions,
                  replication=ReplicationStatus(lambda *_: replication_status[0]).arm(),
                  refreshes=InstanceRefreshes(
                      on_start=lambda refresh: refreshes.append(refresh.api())).arm())

    def remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["shim_params"] = params

    def promoted(context: dict[str, Any], **_: Any) -> None:
        if promotions.delay_seconds is not None:
            return  # on RDS's clock already
        body = context.get("shim_params", {}).get("body", {})
        promotions.finish_after(body["DBInstanceIdentifier"],
                                float(overrides.get("promote_seconds", 0)))

    world_session.events.register("before-call.rds.PromoteReadReplica", remember)
    world_session.events.register("after-call.rds.PromoteReadReplica", promoted)
    _ARMED.append(shims)
    return shims


def record_calls(session: boto3.Session, calls: Calls) -> None:
    """Records at before-parameter-build: emitted once per API call, before any handler can
    answer the call, and above the retry loop."""

    def record(event_name: str, context: dict[str, Any], **_: Any) -> None:
        service, operation = event_name.split(".", 2)[1:]
        calls.seen.append((service, operation, str(context.get("client_region", ""))))

    session.events.register_first("before-parameter-build", record)


# --- faults injected below the retry logic (before-send) ---------------------------------------

def take_down(session: boto3.Session, predicate: Callable[[str], bool]) -> list[str]:
    """Every request whose URL matches fails to connect, as when a region is gone."""
    return network.refuse_requests(session, lambda request: predicate(request.url))


throttle = network.throttle  # the first N requests of an operation get a throttling error
THROTTLE_BODIES = network.THROTTLE_BODIES  # (status, content type, body) per protocol
_headers = network.response_headers


# --- a moto server for subprocess runs (the drill's way) ----------------------------------------

def slow_promotion(seconds: float, finished_at: list[float]) -> Callable[..., Any]:
    """A replacement for moto's ``RDSBackend.promote_read_replica`` that behaves like RDS: the
    instance is 'modifying' for ``seconds``, then detached and available (time appended)."""
    promotions = ReplicaPromotions(delay_seconds=seconds,
                                   on_finished=lambda _record: finished_at.append(time.time()))
    return promotions.backend_method()


def standby_health() -> dict[str, Any]:
    """The standby site's /api/health, computed from the emulated standby database."""
    db = rds_backends[DEFAULT_ACCOUNT_ID][STANDBY].databases[STANDBY_DB]
    writable = _promoted(db)
    return {"status": "ok", "region": STANDBY,
            "database": {"writable": writable, "role": "primary" if writable else "replica"}}


def run_script(root: Path, endpoint: str, health_url: str, report: Path,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python scripts/failover.py --yes --report REPORT`` with the drill's environment knobs."""
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint,
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "CARESYNC_DR_POLL_SECONDS": "0.05", "CARESYNC_DR_POLL_MAX_SECONDS": "0.2",
           "CARESYNC_DR_WAIT_TIMEOUT_SECONDS": "60", "CARESYNC_DR_VERIFY_TIMEOUT_SECONDS": "30",
           "CARESYNC_DR_HEALTH_URL": health_url}
    return subprocess.run([sys.executable, "scripts/failover.py", "--yes", "--report",
                           str(report)], cwd=root, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


# --- the health URL ----------------------------------------------------------------------------

def start_health_server(answer: Callable[[], dict[str, Any]],
                        posted: list[dict[str, Any]] | None = None) -> ThreadingHTTPServer:
    """GET answers ``answer()``; POST bodies (a webhook) are appended to ``posted``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            if posted is not None:
                posted.append(json.loads(self.rfile.read(length) or b"{}"))
            self.send_response(204)
            self.end_headers()

        def do_GET(self) -> None:
            body = json.dumps(answer()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    # The drill's server: a client that hung up (a verification GET that timed out) is no
    # traceback printed from a handler thread into whichever test runs then.
    return serve(Handler, 0, "world-health-url")


# --- seeding -----------------------------------------------------------------------------------

def _site_network(ec2: Any, cidr: str) -> tuple[str, list[str], str, str]:
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    base = cidr.split("/", maxsplit=1)[0].rsplit(".", 2)[0]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"{base}.{i}.0/24")["Subnet"]["SubnetId"]
               for i in (1, 2)]
    app_sg = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
    db_sg = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
        "UserIdGroupPairs": [{"GroupId": app_sg}]}])
    return vpc, subnets, app_sg, db_sg


def _app(region: str, prefix: str, *, vpc: str, subnets: list[str], app_sg: str,
         capacity: Capacity) -> tuple[str, str, str]:
    ec2 = client("ec2", region)
    template = ec2.create_launch_template(LaunchTemplateName=f"{prefix}-app", LaunchTemplateData={
        "ImageId": "ami-12c6146b", "InstanceType": "t3.medium",
        "SecurityGroupIds": [app_sg]})["LaunchTemplate"]["LaunchTemplateId"]
    elbv2 = client("elbv2", region)
    tg = elbv2.create_target_group(Name=f"{prefix}-app", Protocol="HTTP", Port=8080,
                                   VpcId=vpc, HealthCheckPath="/api/health",
                                   TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
    lb = elbv2.create_load_balancer(Name=f"{prefix}-alb", Subnets=subnets,
                                    SecurityGroups=[app_sg])["LoadBalancers"][0]
    client("autoscaling", region).create_auto_scaling_group(
        AutoScalingGroupName=f"{prefix}-app",
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
        MinSize=capacity.min, DesiredCapacity=capacity.desired, MaxSize=capacity.max,
        VPCZoneIdentifier=",".join(subnets), TargetGroupARNs=[tg])
    return template, tg, str(lb["DNSName"])


def put_lag(region: str, identifier: str, seconds: float, minutes_ago: float = 1) -> None:
    """Real RDS publishes this every minute; moto publishes nothing, so the seed does."""
    publish_replica_lag(client("cloudwatch", region), identifier, seconds,
                        at=datetime.now(UTC) - timedelta(minutes=minutes_ago))


def seed() -> tuple[Inventory, str, str]:
    """Both sites as the stacks create them; returns (inventory, switch bucket, backup bucket)."""
    prod_cap = Capacity(2, 2, 6)
    warm = Capacity(1, 1, 6)
    p_ec2 = client("ec2", PRIMARY)
    s_ec2 = client("ec2", STANDBY)
    p_vpc, p_subnets, p_app_sg, p_db_sg = _site_network(p_ec2, "10.10.0.0/16")
    s_vpc, s_subnets, s_app_sg, s_db_sg = _site_network(s_ec2, "10.20.0.0/16")

    p_rds = client("rds", PRIMARY)
    primary = p_rds.create_db_instance(
        DBInstanceIdentifier=PRIMARY_DB, Engine="postgres", EngineVersion="15.5",
        DBInstanceClass="db.r6g.large", AllocatedStorage=100, MasterUsername="caresync_admin",
        ManageMasterUserPassword=True, StorageEncrypted=True, BackupRetentionPeriod=30,
        VpcSecurityGroupIds=[p_db_sg], DeletionProtection=True)["DBInstance"]
    # The in-region replica has a security group of its own (as the stack creates it), so
    # fencing the old primary (--scope database) leaves the replica reachable.
    p_replica_sg = p_ec2.create_security_group(GroupName="db-replica", Description="db replica",
                                               VpcId=p_vpc)["GroupId"]
    p_ec2.authorize_security_group_ingress(GroupId=p_replica_sg, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
        "UserIdGroupPairs": [{"GroupId": p_app_sg}]}])
    p_rds.create_db_instance_read_replica(DBInstanceIdentifier=PRIMARY_REPLICA,
                                          SourceDBInstanceIdentifier=PRIMARY_DB,
                                          VpcSecurityGroupIds=[p_replica_sg])
    s_rds = client("rds", STANDBY)
    standby = s_rds.create_db_instance_read_replica(
        DBInstanceIdentifier=STANDBY_DB, SourceDBInstanceIdentifier=primary["DBInstanceArn"],
        DBInstanceClass="db.r6g.large", VpcSecurityGroupIds=[s_db_sg])["DBInstance"]

    p_template, p_tg, p_lb = _app(PRIMARY, "prod", vpc=p_vpc, subnets=p_subnets,
                                      app_sg=p_app_sg, capacity=prod_cap)
    s_template, s_tg, s_lb = _app(STANDBY, "dr", vpc=s_vpc, subnets=s_subnets,
                                      app_sg=s_app_sg, capacity=warm)

    s3 = client("s3", STANDBY)
    switch_bucket, backup_bucket = "caresync-dr-switch-test", "caresync-dr-backups-test"
    for bucket in (switch_bucket, backup_bucket):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": STANDBY})
    s3.put_object(Bucket=switch_bucket, Key=SWITCH_KEY, Body=b"PRIMARY")
    topic = client("sns", STANDBY).create_topic(
        Name="caresync-dr-alerts")["TopicArn"]

    r53 = client("route53", PRIMARY)
    zone = r53.create_hosted_zone(Name="caresync.health", CallerReference="z")[
        "HostedZone"]["Id"].split("/")[-1]

    def check(config: dict[str, Any]) -> str:
        return str(r53.create_health_check(CallerReference=str(uuid.uuid4()),
                                           HealthCheckConfig=config)["HealthCheck"]["Id"])

    def endpoint_check(fqdn: str) -> str:
        return check({"Type": "HTTPS", "FullyQualifiedDomainName": fqdn, "Port": 443,
                      "ResourcePath": "/api/health", "RequestInterval": 10,
                      "FailureThreshold": 3})

    p_hc, s_hc = endpoint_check(p_lb), endpoint_check(s_lb)
    switch_hc = check({"Type": "HTTPS_STR_MATCH", "Inverted": True, "Port": 443,
                       "FullyQualifiedDomainName": f"{switch_bucket}.s3.{STANDBY}.amazonaws.com",
                       "ResourcePath": f"/{SWITCH_KEY}", "SearchString": "FAILOVER",
                       "RequestInterval": 10, "FailureThreshold": 1})
    calculated = check({"Type": "CALCULATED", "HealthThreshold": 2,
                        "ChildHealthChecks": [p_hc, switch_hc]})

    endpoints = {}
    for region, key, ident, site_name in ((PRIMARY, "prod", PRIMARY_DB, "primary"),
                                          (STANDBY, "dr", STANDBY_DB, "standby")):
        db = client("rds", region).describe_db_instances(
            DBInstanceIdentifier=ident)["DBInstances"][0]["Endpoint"]
        endpoints[key] = f"{db['Address']}:{db['Port']}"
        # SecureStrings with the site key, as components/database.py creates them.
        client("ssm", region).put_parameter(
            Name=f"/caresync-dr/{key}/database-endpoint", Value=endpoints[key],
            Type="SecureString", KeyId=site_key_alias(site_name))

    put_lag(STANDBY, STANDBY_DB, 2.0)
    put_lag(PRIMARY, PRIMARY_REPLICA, 0.5)

    def site(region: str, key: str, *, db_id: str, arn: str, sg: str, replicas: tuple[str, ...],
             template: str, tg: str, lb: str, capacity: Capacity, hc: str) -> SiteInventory:
        return SiteInventory(
            region=region,
            database=DatabaseInventory(identifier=db_id, arn=arn, security_group_id=sg,
                                       backup_retention_days=30, replica_identifiers=replicas,
                                       endpoint_parameter=f"/caresync-dr/{key}/database-endpoint"),
            app=AppInventory(auto_scaling_group_name=f"{key}-app", launch_template_id=template,
                             target_group_arn=tg, load_balancer_dns=lb, capacity=capacity,
                             production_capacity=prod_cap),
            health_check_id=hc)

    inventory = Inventory(
        version=1, project="caresync-dr", stack="dr",
        objectives=Objectives(rto_minutes=60, rpo_minutes=15),
        primary=site(PRIMARY, "prod", db_id=PRIMARY_DB, arn=primary["DBInstanceArn"],
                     sg=p_db_sg, replicas=(PRIMARY_REPLICA,), template=p_template, tg=p_tg,
                     lb=p_lb, capacity=prod_cap, hc=p_hc),
        standby=site(STANDBY, "dr", db_id=STANDBY_DB, arn=standby["DBInstanceArn"],
                     sg=s_db_sg, replicas=(), template=s_template, tg=s_tg, lb=s_lb,
                     capacity=warm, hc=s_hc),
        dns=DnsInventory(hosted_zone_id=zone, record_name="app.caresync.health",
                         primary_set_identifier="primary", secondary_set_identifier="secondary",
                         public_health_url="https://app.caresync.health/api/health"),
        traffic_switch=TrafficSwitch(region=STANDBY, bucket=switch_bucket, key=SWITCH_KEY,
                                     health_check_id=switch_hc,
                                     primary_health_check_id=calculated),
        alert_topic_arn=topic, backup_bucket=backup_bucket,
        lock_parameter="/caresync-dr/failover/lock",
        journal_parameter="/caresync-dr/failover/journal")
    client("ssm", STANDBY).put_parameter(
        Name=INVENTORY_PARAMETER, Value=inventory.to_json(), Type="SecureString",
        KeyId=site_key_alias("standby"), Tier="Advanced")
    return inventory, switch_bucket, backup_bucket
