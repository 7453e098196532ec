"""Deploy both stacks into the emulator: the real program under Pulumi's mock runtime.

:class:`EmulatorHandler` is the resource hook of ``caresync_dr.offline.runtime.run_program``.
For each resource type that ``scripts/failover.py``, the backup commands or the apps' boot read
or change it creates the resource in the emulator (through the emulator's API, like the AWS
provider would) and returns the real ids, ARNs and DNS names on top of the offline fake's
state; every other resource keeps the default fake. Passwords (``random.RandomPassword``) are
drawn fresh for each deploy, as the random provider does. There is no second definition of
the infrastructure: what exists in the emulator is exactly what ``__main__.py`` declared.

Things that exist before ``pulumi up`` in a real account are seeded, as an operator would have
them: the hosted zone (``hostedZoneId`` is an input of the stack) and the AMI of the launch
templates (moto only knows its own sample images).

Bootstrap order (docs/deploying.md): prod, then dr with prod's outputs, then prod
again with dr's outputs. A resource seen again in a later run is updated in place (parameters,
records; a secret's new replica regions, as the provider's ReplicateSecretToRegions) or left as
created; nothing is created twice.
"""

from __future__ import annotations

import logging
import secrets
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from caresync_dr.emulation.server import ACCOUNT_ID, Emulator
from caresync_dr.settings import settings_from_stack_file

log = logging.getLogger(__name__)

Creator = Callable[["EmulatorHandler", str, dict[str, Any], str], dict[str, Any]]
STACK_ORDER = ("prod", "dr", "prod")


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


@dataclass
class EmulatorHandler:
    """Creates the failover-relevant resources of one stack run in the emulator."""

    emulator: Emulator
    region: str  # the stack's aws:region; a resource's ``region`` input overrides it
    created: dict[tuple[str, str, str], tuple[str, dict[str, Any]]] = field(default_factory=dict)
    clients: dict[tuple[str, str], Any] = field(default_factory=dict)
    # One session for every client: it caches the service models (a new session per client
    # re-reads them, seconds per deploy).
    session: boto3.session.Session = field(default_factory=boto3.session.Session)

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        if key not in self.clients:
            self.clients[key] = self.session.client(  # type: ignore[call-overload]
                service, region_name=region, endpoint_url=self.emulator.endpoint,
                aws_access_key_id="testing", aws_secret_access_key="testing",
                config=Config(retries={"mode": "standard", "total_max_attempts": 2}))
        return self.clients[key]

    # --- the Pulumi mock hooks -----------------------------------------------------------------
    def new_resource(self, args: Any) -> tuple[str, dict[str, Any]] | None:
        creator = CREATORS.get(args.typ)
        if creator is None:
            return None
        from caresync_dr.offline.fakes import fake_state

        inputs = dict(args.inputs)  # run_program has unwrapped secrets already
        region = str(inputs.get("region") or self.region)
        key = (args.typ, args.name, region)
        fake_id, state = fake_state(args.typ, args.name, inputs, region, ACCOUNT_ID)
        if key in self.created and args.typ not in UPDATABLE:
            updater = UPDATERS.get(args.typ)
            if updater is not None:
                ident, previous = self.created[key]
                previous.update(updater(self, ident, inputs, region, previous))
            return self.created[key]
        real = creator(self, args.name, inputs, region)
        state.update(real)
        ident = str(real.get("id") or fake_id)
        state["id"] = ident
        self.created[key] = (ident, state)
        return ident, state

    def call(self, args: Any) -> dict[str, Any] | None:
        return None  # the offline fakes answer data sources with the emulator's account


# --- creators: one per resource type failover touches -----------------------------------------

def _tags(inputs: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": str(v)} for k, v in (inputs.get("tags") or {}).items()]


def _vpc(h: EmulatorHandler, name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    vpc = h.client("ec2", region).create_vpc(CidrBlock=inputs["cidrBlock"])["Vpc"]
    return {"id": vpc["VpcId"]}


def _subnet(h: EmulatorHandler, name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"VpcId": inputs["vpcId"], "CidrBlock": inputs["cidrBlock"]}
    if inputs.get("availabilityZone"):
        kwargs["AvailabilityZone"] = inputs["availabilityZone"]
    subnet = h.client("ec2", region).create_subnet(**kwargs)["Subnet"]
    return {"id": subnet["SubnetId"], "arn": subnet.get("SubnetArn", "")}


def _security_group(h: EmulatorHandler, name: str, inputs: dict[str, Any],
                    region: str) -> dict[str, Any]:
    ec2 = h.client("ec2", region)
    group_id = ec2.create_security_group(
        GroupName=inputs.get("name") or name, Description=inputs.get("description") or name,
        VpcId=inputs["vpcId"])["GroupId"]
    permissions = []
    for rule in inputs.get("ingress") or []:
        perm: dict[str, Any] = {"IpProtocol": rule.get("protocol", "tcp"),
                                "FromPort": int(rule.get("fromPort", 0)),
                                "ToPort": int(rule.get("toPort", 0))}
        if rule.get("cidrBlocks"):
            perm["IpRanges"] = [{"CidrIp": c} for c in rule["cidrBlocks"]]
        if rule.get("securityGroups"):
            perm["UserIdGroupPairs"] = [{"GroupId": g} for g in rule["securityGroups"]
                                        if str(g).startswith("sg-")]
        permissions.append(perm)
    if permissions:
        ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=permissions)
    return {"id": group_id,
            "arn": f"arn:aws:ec2:{region}:{ACCOUNT_ID}:security-group/{group_id}"}


def _load_balancer(h: EmulatorHandler, name: str, inputs: dict[str, Any],
                   region: str) -> dict[str, Any]:
    lb = h.client("elbv2", region).create_load_balancer(
        Name=inputs.get("name") or name, Subnets=list(inputs.get("subnets") or []),
        SecurityGroups=list(inputs.get("securityGroups") or []),
        Scheme="internal" if inputs.get("internal") else "internet-facing",
        Type=inputs.get("loadBalancerType", "application"))["LoadBalancers"][0]
    return {"id": lb["LoadBalancerArn"], "arn": lb["LoadBalancerArn"],
            "dnsName": lb["DNSName"].lower(), "zoneId": lb["CanonicalHostedZoneId"]}


def _target_group(h: EmulatorHandler, name: str, inputs: dict[str, Any],
                  region: str) -> dict[str, Any]:
    check = _first(inputs.get("healthCheck")) or {}
    group = h.client("elbv2", region).create_target_group(
        Name=inputs.get("name") or name, Protocol=inputs.get("protocol", "HTTP"),
        Port=int(inputs.get("port", 80)), VpcId=inputs["vpcId"],
        TargetType=inputs.get("targetType", "instance"),
        HealthCheckPath=check.get("path", "/"))["TargetGroups"][0]
    return {"id": group["TargetGroupArn"], "arn": group["TargetGroupArn"]}


def _seed_image(region: str, image_id: str) -> None:
    """The AMI exists in a real account before the stack; moto only has its samples."""
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import Ami

    backend = ec2_backends[ACCOUNT_ID][region]
    if image_id not in backend.amis:
        backend.amis[image_id] = Ami(backend, ami_id=image_id, name="caresync-app",
                                     architecture="x86_64", platform=None)


def _launch_template(h: EmulatorHandler, name: str, inputs: dict[str, Any],
                     region: str) -> dict[str, Any]:
    _seed_image(region, inputs["imageId"])
    data: dict[str, Any] = {"ImageId": inputs["imageId"],
                            "InstanceType": inputs.get("instanceType", "t3.medium")}
    if inputs.get("vpcSecurityGroupIds"):
        data["SecurityGroupIds"] = list(inputs["vpcSecurityGroupIds"])
    template = h.client("ec2", region).create_launch_template(
        LaunchTemplateName=inputs.get("name") or name,
        LaunchTemplateData=data)["LaunchTemplate"]
    ident = template["LaunchTemplateId"]
    return {"id": ident, "arn": f"arn:aws:ec2:{region}:{ACCOUNT_ID}:launch-template/{ident}",
            "latestVersion": float(template["LatestVersionNumber"])}


def _launch_template_update(h: EmulatorHandler, ident: str, inputs: dict[str, Any],
                            region: str, previous: dict[str, Any]) -> dict[str, Any]:
    """A later run with another image or instance type (a release): the provider's update is
    CreateLaunchTemplateVersion (and, with update_default_version, the default follows). The
    group is left alone: it ignores its version (components/app_tier.py)."""
    wanted = {"ImageId": inputs["imageId"], "InstanceType": inputs.get("instanceType",
                                                                      "t3.medium")}
    if previous.get("imageId") == wanted["ImageId"] and \
            previous.get("instanceType") == wanted["InstanceType"]:
        return {}
    _seed_image(region, wanted["ImageId"])
    ec2 = h.client("ec2", region)
    version = ec2.create_launch_template_version(
        LaunchTemplateId=ident, SourceVersion=str(int(previous.get("latestVersion", 1))),
        LaunchTemplateData=wanted)["LaunchTemplateVersion"]["VersionNumber"]
    if inputs.get("updateDefaultVersion"):
        ec2.modify_launch_template(LaunchTemplateId=ident, DefaultVersion=str(version))
    return {"imageId": wanted["ImageId"], "instanceType": wanted["InstanceType"],
            "latestVersion": float(version)}


def _asg(h: EmulatorHandler, name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    group_name = inputs.get("name") or name
    template = _first(inputs.get("launchTemplate")) or {}
    h.client("autoscaling", region).create_auto_scaling_group(
        AutoScalingGroupName=group_name, MinSize=int(inputs.get("minSize", 0)),
        MaxSize=int(inputs.get("maxSize", 1)),
        DesiredCapacity=int(inputs.get("desiredCapacity", inputs.get("minSize", 0))),
        VPCZoneIdentifier=",".join(inputs.get("vpcZoneIdentifiers") or []),
        TargetGroupARNs=list(inputs.get("targetGroupArns") or []),
        LaunchTemplate={"LaunchTemplateId": template.get("id", ""),
                        "Version": template.get("version", "$Latest")},
        HealthCheckType=inputs.get("healthCheckType", "EC2"),
        HealthCheckGracePeriod=int(inputs.get("healthCheckGracePeriod", 300)))
    group = h.client("autoscaling", region).describe_auto_scaling_groups(
        AutoScalingGroupNames=[group_name])["AutoScalingGroups"][0]
    return {"id": group_name, "name": group_name, "arn": group["AutoScalingGroupARN"]}


def _db_instance(h: EmulatorHandler, name: str, inputs: dict[str, Any],
                 region: str) -> dict[str, Any]:
    rds = h.client("rds", region)
    ident = inputs.get("identifier") or name
    common: dict[str, Any] = {"DBInstanceIdentifier": ident,
                              "DBInstanceClass": inputs.get("instanceClass", "db.r6g.large")}
    if inputs.get("vpcSecurityGroupIds"):
        common["VpcSecurityGroupIds"] = list(inputs["vpcSecurityGroupIds"])
    # Where and how the program places it: what a point-in-time restore copies and checks.
    if inputs.get("dbSubnetGroupName"):
        common["DBSubnetGroupName"] = inputs["dbSubnetGroupName"]
    if inputs.get("parameterGroupName"):
        common["DBParameterGroupName"] = inputs["parameterGroupName"]
    if inputs.get("kmsKeyId"):
        common["KmsKeyId"] = inputs["kmsKeyId"]
    if inputs.get("tags"):
        common["Tags"] = _tags(inputs)
    source = inputs.get("replicateSourceDb")
    if source:
        # moto resolves a replica's subnet group in the *source's* region while it copies
        # the source (a moto quirk): give it once the replica exists.
        group = common.pop("DBSubnetGroupName", None)
        db = rds.create_db_instance_read_replica(SourceDBInstanceIdentifier=source,
                                                 **common)["DBInstance"]
        if group:
            db = rds.modify_db_instance(DBInstanceIdentifier=ident, DBSubnetGroupName=group,
                                        ApplyImmediately=True)["DBInstance"]
    else:
        db = rds.create_db_instance(
            Engine=inputs.get("engine", "postgres"),
            EngineVersion=str(inputs.get("engineVersion", "15")),
            AllocatedStorage=int(inputs.get("allocatedStorage", 100)),
            MasterUsername=inputs.get("username", "caresync"),
            ManageMasterUserPassword=True, MultiAZ=bool(inputs.get("multiAz", False)),
            BackupRetentionPeriod=int(inputs.get("backupRetentionPeriod", 1)),
            StorageEncrypted=bool(inputs.get("storageEncrypted", False)),
            DBName=inputs.get("dbName") or "caresync", **common)["DBInstance"]
    address = db["Endpoint"]["Address"]
    return {"id": ident, "identifier": ident, "arn": db["DBInstanceArn"], "address": address,
            "endpoint": f"{address}:{db['Endpoint']['Port']}",
            "port": float(db["Endpoint"]["Port"])}


def _db_subnet_group(h: EmulatorHandler, name: str, inputs: dict[str, Any],
                     region: str) -> dict[str, Any]:
    group = inputs.get("name") or name
    answer = h.client("rds", region).create_db_subnet_group(
        DBSubnetGroupName=group, DBSubnetGroupDescription=inputs.get("description") or group,
        SubnetIds=list(inputs.get("subnetIds") or []))["DBSubnetGroup"]
    return {"id": group, "name": group, "arn": answer.get("DBSubnetGroupArn", "")}


def _db_parameter_group(h: EmulatorHandler, name: str, inputs: dict[str, Any],
                        region: str) -> dict[str, Any]:
    group = inputs.get("name") or name
    answer = h.client("rds", region).create_db_parameter_group(
        DBParameterGroupName=group, DBParameterGroupFamily=inputs["family"],
        Description=inputs.get("description") or group)["DBParameterGroup"]
    return {"id": group, "name": group, "arn": answer.get("DBParameterGroupArn", "")}


def _metric_alarm(h: EmulatorHandler, name: str, inputs: dict[str, Any],
                  region: str) -> dict[str, Any]:
    """The alarm exists under its name (what an instance refresh's AlarmSpecification and
    DescribeAlarms see); moto evaluates none (caresync_dr.emulation.alarms does, when armed)."""
    alarm = inputs.get("name") or name
    h.client("cloudwatch", region).put_metric_alarm(
        AlarmName=alarm, MetricName=inputs.get("metricName") or "Expression",
        Namespace=inputs.get("namespace") or "CareSync/Drill",
        Statistic=inputs.get("statistic") or "Maximum",
        Period=int(inputs.get("period") or 60),
        EvaluationPeriods=int(inputs.get("evaluationPeriods") or 1),
        Threshold=float(inputs.get("threshold") or 0),
        ComparisonOperator=inputs.get("comparisonOperator") or "GreaterThanThreshold")
    return {"id": alarm, "name": alarm,
            "arn": f"arn:aws:cloudwatch:{region}:{ACCOUNT_ID}:alarm:{alarm}"}


def ensure_hosted_zone(zone_id: str, domain: str) -> None:
    """Seed the pre-existing public hosted zone under the id the stack settings name."""
    from moto.route53.models import route53_backends

    backend = route53_backends[ACCOUNT_ID]["aws"]
    if zone_id in backend.zones:
        return
    zone = backend.create_hosted_zone(domain, private_zone=False)
    del backend.zones[zone.resource_id]
    zone.resource_id = zone_id
    backend.zones[zone_id] = zone


def _health_check(h: EmulatorHandler, name: str, inputs: dict[str, Any],
                  region: str) -> dict[str, Any]:
    kind = inputs["type"]
    config: dict[str, Any] = {"Type": kind}
    mapping = {"fqdn": "FullyQualifiedDomainName", "ipAddress": "IPAddress", "port": "Port",
               "resourcePath": "ResourcePath", "searchString": "SearchString",
               "requestInterval": "RequestInterval", "failureThreshold": "FailureThreshold",
               "invertHealthcheck": "Inverted", "childHealthchecks": "ChildHealthChecks",
               "childHealthThreshold": "HealthThreshold", "regions": "Regions",
               "enableSni": "EnableSNI", "measureLatency": "MeasureLatency"}
    for key, aws_key in mapping.items():
        if inputs.get(key) is not None:
            value = inputs[key]
            config[aws_key] = int(value) if isinstance(value, float) else value
    if kind == "CALCULATED":
        for key in ("Port", "RequestInterval", "FailureThreshold", "Regions"):
            config.pop(key, None)
    check = h.client("route53", "us-east-1").create_health_check(
        CallerReference=f"{name}-{time.monotonic_ns()}", HealthCheckConfig=config)
    ident = check["HealthCheck"]["Id"]
    return {"id": ident, "arn": f"arn:aws:route53:::healthcheck/{ident}"}


def _record(h: EmulatorHandler, name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    zone_id = inputs["zoneId"]
    record: dict[str, Any] = {"Name": inputs["name"], "Type": inputs["type"]}
    if inputs.get("setIdentifier"):
        record["SetIdentifier"] = inputs["setIdentifier"]
    policy = _first(inputs.get("failoverRoutingPolicies"))
    if policy:
        record["Failover"] = policy["type"]
    if inputs.get("healthCheckId"):
        record["HealthCheckId"] = inputs["healthCheckId"]
    alias = _first(inputs.get("aliases"))
    if alias:
        record["AliasTarget"] = {"HostedZoneId": alias["zoneId"], "DNSName": alias["name"],
                                 "EvaluateTargetHealth": bool(alias.get("evaluateTargetHealth"))}
    else:
        record["TTL"] = int(inputs.get("ttl", 60))
        record["ResourceRecords"] = [{"Value": v} for v in inputs.get("records") or []]
    h.client("route53", "us-east-1").change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": record}]})
    ident = "_".join(str(x) for x in (zone_id, inputs["name"], inputs["type"],
                                      inputs.get("setIdentifier", "")))
    return {"id": ident, "fqdn": inputs["name"]}


def _bucket(h: EmulatorHandler, name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    bucket = inputs.get("bucket") or name
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    h.client("s3", region).create_bucket(**kwargs)
    return {"id": bucket, "bucket": bucket}


def _bucket_versioning(h: EmulatorHandler, name: str, inputs: dict[str, Any],
                       region: str) -> dict[str, Any]:
    config = _first(inputs.get("versioningConfiguration")) or {}
    h.client("s3", region).put_bucket_versioning(
        Bucket=inputs["bucket"],
        VersioningConfiguration={"Status": config.get("status", "Enabled")})
    return {"id": inputs["bucket"]}


def _bucket_object(h: EmulatorHandler, name: str, inputs: dict[str, Any],
                   region: str) -> dict[str, Any]:
    s3 = h.client("s3", region)
    s3.put_object(Bucket=inputs["bucket"], Key=inputs["key"],
                  Body=str(inputs.get("content", "")).encode(),
                  ContentType=inputs.get("contentType", "text/plain"))
    return {"id": inputs["key"]}


def _ssm_parameter(h: EmulatorHandler, name: str, inputs: dict[str, Any],
                   region: str) -> dict[str, Any]:
    param = inputs.get("name") or name
    key = {"KeyId": inputs["keyId"]} if inputs.get("type") == "SecureString" and inputs.get(
        "keyId") else {}
    h.client("ssm", region).put_parameter(
        Name=param, Value=str(inputs["value"]), Type=inputs.get("type", "String"),
        Tier=inputs.get("tier", "Standard"), Overwrite=True, **key)
    path = param if param.startswith("/") else "/" + param
    return {"id": param, "name": param,
            "arn": f"arn:aws:ssm:{region}:{ACCOUNT_ID}:parameter{path}"}


def _topic(h: EmulatorHandler, name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    arn = h.client("sns", region).create_topic(Name=inputs.get("name") or name)["TopicArn"]
    return {"id": arn, "arn": arn}


def _kms_key(h: EmulatorHandler, name: str, inputs: dict[str, Any],
             region: str) -> dict[str, Any]:
    key = h.client("kms", region).create_key(
        Description=inputs.get("description") or name,
        MultiRegion=bool(inputs.get("multiRegion")))["KeyMetadata"]
    return {"id": key["KeyId"], "keyId": key["KeyId"], "arn": key["Arn"]}


def _kms_alias(h: EmulatorHandler, name: str, inputs: dict[str, Any],
               region: str) -> dict[str, Any]:
    alias = inputs.get("name") or f"alias/{name}"
    h.client("kms", region).create_alias(AliasName=alias, TargetKeyId=inputs["targetKeyId"])
    return {"id": alias, "name": alias,
            "arn": f"arn:aws:kms:{region}:{ACCOUNT_ID}:{alias}"}


def _replication_rule(rule: dict[str, Any]) -> dict[str, Any]:
    destination = _first(rule.get("destination")) or {}
    target: dict[str, Any] = {"Bucket": destination["bucket"]}
    if destination.get("storageClass"):
        target["StorageClass"] = destination["storageClass"]
    encryption = _first(destination.get("encryptionConfiguration")) or {}
    if encryption.get("replicaKmsKeyId"):
        target["EncryptionConfiguration"] = {"ReplicaKmsKeyID": encryption["replicaKmsKeyId"]}
    converted: dict[str, Any] = {"ID": rule.get("id") or "rule", "Status": rule["status"],
                                 "Priority": int(rule.get("priority") or 0),
                                 "Destination": target}
    selector = _first(rule.get("filter"))
    if selector is not None:
        converted["Filter"] = {"Prefix": selector.get("prefix") or ""}
    markers = _first(rule.get("deleteMarkerReplication")) or {}
    if markers.get("status"):
        converted["DeleteMarkerReplication"] = {"Status": markers["status"]}
    criteria = _first(rule.get("sourceSelectionCriteria")) or {}
    kms_objects = _first(criteria.get("sseKmsEncryptedObjects")) or {}
    if kms_objects.get("status"):
        converted["SourceSelectionCriteria"] = {
            "SseKmsEncryptedObjects": {"Status": kms_objects["status"]}}
    return converted


def _bucket_replication(h: EmulatorHandler, name: str, inputs: dict[str, Any],
                        region: str) -> dict[str, Any]:
    """Stored as S3 stores it; moto never acts on it (``caresync_dr.emulation.s3`` does)."""
    h.client("s3", region).put_bucket_replication(
        Bucket=inputs["bucket"], ReplicationConfiguration={
            "Role": inputs["role"],
            "Rules": [_replication_rule(r) for r in inputs.get("rules") or []]})
    return {"id": inputs["bucket"]}


def _secret(h: EmulatorHandler, name: str, inputs: dict[str, Any],
            region: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"Name": inputs.get("name") or name}
    if inputs.get("kmsKeyId"):
        kwargs["KmsKeyId"] = inputs["kmsKeyId"]
    replicas = _secret_replicas(inputs)
    if replicas:
        kwargs["AddReplicaRegions"] = replicas
    arn = h.client("secretsmanager", region).create_secret(**kwargs)["ARN"]
    return {"id": arn, "arn": arn, "replicas": list(inputs.get("replicas") or [])}


def _random_password(h: EmulatorHandler, name: str, inputs: dict[str, Any],
                     region: str) -> dict[str, Any]:
    """A fresh password per deploy, drawn as the random provider does (CSPRNG, the inputs'
    length, alphabet and minimum counts), so nothing in the drill knows it in advance."""
    specials = str(inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?")
    classes = {"minLower": string.ascii_lowercase, "minUpper": string.ascii_uppercase,
               "minNumeric": string.digits, "minSpecial": specials}
    enabled = {"minLower": inputs.get("lower", True), "minUpper": inputs.get("upper", True),
               "minNumeric": inputs.get("numeric", True),
               "minSpecial": inputs.get("special", True)}
    alphabet = "".join(chars for key, chars in classes.items() if enabled[key])
    length = int(inputs.get("length", 16))
    chosen = [secrets.choice(classes[key]) for key in classes if enabled[key]
              for _ in range(int(inputs.get(key) or 0))]
    chosen += [secrets.choice(alphabet) for _ in range(length - len(chosen))]
    secrets.SystemRandom().shuffle(chosen)
    return {"id": "none", "result": "".join(chosen)}


def _secret_replicas(inputs: Mapping[str, Any]) -> list[dict[str, str]]:
    return [{"Region": r["region"], **({"KmsKeyId": r["kmsKeyId"]} if r.get("kmsKeyId") else {})}
            for r in inputs.get("replicas") or []]


def _secret_update(h: EmulatorHandler, ident: str, inputs: dict[str, Any], region: str,
                   previous: dict[str, Any]) -> dict[str, Any]:
    """Replica regions added by a later run (bootstrap step 3): ReplicateSecretToRegions, the
    in-place update the provider makes."""
    known = {r["region"] for r in previous.get("replicas") or []}
    added = [r for r in _secret_replicas(inputs) if r["Region"] not in known]
    if added:
        h.client("secretsmanager", region).replicate_secret_to_regions(
            SecretId=ident, AddReplicaRegions=added)
    return {"replicas": list(inputs.get("replicas") or [])}


def _secret_version(h: EmulatorHandler, name: str, inputs: dict[str, Any],
                    region: str) -> dict[str, Any]:
    answer = h.client("secretsmanager", region).put_secret_value(
        SecretId=inputs["secretId"], SecretString=inputs["secretString"])
    return {"id": f"{answer['ARN']}|{answer['VersionId']}", "arn": answer["ARN"],
            "versionId": answer["VersionId"]}


def _log_group(h: EmulatorHandler, name: str, inputs: dict[str, Any],
               region: str) -> dict[str, Any]:
    group = inputs.get("name") or name
    kwargs: dict[str, Any] = {"logGroupName": group}
    if inputs.get("kmsKeyId"):
        kwargs["kmsKeyId"] = inputs["kmsKeyId"]
    logs = h.client("logs", region)
    logs.create_log_group(**kwargs)
    if inputs.get("retentionInDays"):
        logs.put_retention_policy(logGroupName=group,
                                  retentionInDays=int(inputs["retentionInDays"]))
    return {"id": group, "name": group,
            "arn": f"arn:aws:logs:{region}:{ACCOUNT_ID}:log-group:{group}"}


def _trail(h: EmulatorHandler, name: str, inputs: dict[str, Any],
           region: str) -> dict[str, Any]:
    """The audit trail (issue 13's detection) as CloudTrail keeps it: its bucket, scope, event
    selectors (the S3 data events breach.py reads and extends) and logging state. Delivery
    to CloudWatch Logs is not emulated (moto stores, never delivers)."""
    trail = inputs.get("name") or name
    ct = h.client("cloudtrail", region)
    kwargs: dict[str, Any] = {
        "Name": trail, "S3BucketName": inputs["s3BucketName"],
        "IsMultiRegionTrail": bool(inputs.get("isMultiRegionTrail")),
        "IncludeGlobalServiceEvents": bool(inputs.get("includeGlobalServiceEvents", True)),
        "EnableLogFileValidation": bool(inputs.get("enableLogFileValidation"))}
    if inputs.get("kmsKeyId"):
        kwargs["KmsKeyId"] = inputs["kmsKeyId"]
    arn = ct.create_trail(**kwargs)["TrailARN"]
    selectors = [{"ReadWriteType": s.get("readWriteType", "All"),
                  "IncludeManagementEvents": bool(s.get("includeManagementEvents", True)),
                  "DataResources": [{"Type": d["type"], "Values": list(d.get("values") or [])}
                                    for d in s.get("dataResources") or []]}
                 for s in inputs.get("eventSelectors") or []]
    if selectors:
        ct.put_event_selectors(TrailName=trail, EventSelectors=selectors)
    if inputs.get("enableLogging", True):
        ct.start_logging(Name=trail)
    return {"id": trail, "name": trail, "arn": arn, "homeRegion": region}


CREATORS: dict[str, Creator] = {
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:cloudtrail/trail:Trail": _trail,
    "aws:ec2/vpc:Vpc": _vpc,
    "aws:ec2/subnet:Subnet": _subnet,
    "aws:ec2/securityGroup:SecurityGroup": _security_group,
    "aws:lb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:lb/targetGroup:TargetGroup": _target_group,
    "aws:ec2/launchTemplate:LaunchTemplate": _launch_template,
    "aws:autoscaling/group:Group": _asg,
    "aws:rds/instance:Instance": _db_instance,
    "aws:rds/subnetGroup:SubnetGroup": _db_subnet_group,
    "aws:rds/parameterGroup:ParameterGroup": _db_parameter_group,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _metric_alarm,
    "aws:route53/healthCheck:HealthCheck": _health_check,
    "aws:route53/record:Record": _record,
    "aws:s3/bucket:Bucket": _bucket,
    "aws:s3/bucketVersioning:BucketVersioning": _bucket_versioning,
    "aws:s3/bucketObjectv2:BucketObjectv2": _bucket_object,
    "aws:ssm/parameter:Parameter": _ssm_parameter,
    "aws:sns/topic:Topic": _topic,
    "aws:kms/key:Key": _kms_key,
    "aws:kms/alias:Alias": _kms_alias,
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": _bucket_replication,
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:secretsmanager/secretVersion:SecretVersion": _secret_version,
    "random:index/randomPassword:RandomPassword": _random_password,
}
# Re-applied when a later bootstrap run declares them again (their inputs may have changed).
UPDATABLE = frozenset({"aws:ssm/parameter:Parameter", "aws:route53/record:Record"})
# Updated in place when a later run declares them with new inputs: (handler, id, inputs,
# region, previous state) -> state changes.
Updater = Callable[["EmulatorHandler", str, dict[str, Any], str, dict[str, Any]], dict[str, Any]]
UPDATERS: dict[str, Updater] = {"aws:secretsmanager/secret:Secret": _secret_update,
                                 "aws:ec2/launchTemplate:LaunchTemplate": _launch_template_update}


@dataclass(frozen=True)
class Deployment:
    """What the bootstrap left: each stack's outputs and registered resources."""

    outputs: dict[str, dict[str, Any]]
    resources: dict[str, list[Any]]
    seconds: float
    handlers: dict[str, EmulatorHandler] = field(default_factory=dict)


def redeploy(deployment: Deployment, project_dir: Path, stack: str,
             overrides: dict[str, str]) -> Any:
    """``pulumi up -s <stack>`` again with changed settings (a release: ``appAmiId``), through
    the same handler, so what exists is updated as the provider would update it."""
    from caresync_dr.offline.runtime import run_program

    other = "dr" if stack == "prod" else "prod"
    run = run_program(stack, project_dir=project_dir, config_overrides=overrides,
                      stack_references={other: deployment.outputs[other]},
                      handler=deployment.handlers[stack])
    deployment.outputs[stack] = run.outputs
    deployment.resources[stack] = run.resources
    return run


def deploy_stacks(emulator: Emulator, project_dir: Path) -> Deployment:
    """prod, dr (with prod's outputs), prod again (with dr's): the bootstrap order of
    docs/deploying.md."""
    from caresync_dr.offline.runtime import run_program

    started = time.monotonic()
    settings = {stack: settings_from_stack_file(stack, project_dir) for stack in ("prod", "dr")}
    dr = settings["dr"]
    if not dr.hosted_zone_id or not dr.domain_name:
        raise ValueError("the dr stack sets no hostedZoneId/domainName: nothing to fail over")
    # The zone is an input of the stack (it exists before `pulumi up`): seed it.
    ensure_hosted_zone(dr.hosted_zone_id, dr.domain_name.split(".", 1)[-1])
    outputs: dict[str, dict[str, Any]] = {}
    resources: dict[str, list[Any]] = {}
    handlers: dict[str, EmulatorHandler] = {}
    session = boto3.session.Session()
    regions = {stack: s.region for stack, s in settings.items()}
    for stack in STACK_ORDER:
        other = "dr" if stack == "prod" else "prod"
        references = {other: outputs[other]} if other in outputs else {}
        handler = handlers.setdefault(stack, EmulatorHandler(emulator, regions[stack],
                                                             session=session))
        run = run_program(stack, project_dir=project_dir, stack_references=references,
                          handler=handler)
        outputs[stack] = run.outputs
        resources[stack] = run.resources
        log.info("deployed stack %s into the emulator (%d resources)", stack,
                 len(run.resources))
    return Deployment(outputs=outputs, resources=resources,
                      seconds=round(time.monotonic() - started, 3), handlers=handlers)
