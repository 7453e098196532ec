"""Provider-computed fields, filled in by resource type the way AWS would.

The mocks in :mod:`caresync_dr.offline.runtime` echo a resource's inputs and add what the
provider would compute: ids, ARNs in the resource's own region and account, endpoints and DNS
names. Values are deterministic (derived from the logical name) so two runs of the same stack
produce the same state, and shaped like the real thing so code that parses them (an ARN's
region, a bucket's regional domain name) behaves as in AWS.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

ACCOUNT_ID = "111122223333"

# Canonical hosted zone ids of Application Load Balancers, per region (AWS general reference).
ALB_ZONE_IDS = {
    "us-east-1": "Z35SXDOTRQ7X7K", "us-east-2": "Z3AADJGX6KTTL2", "us-west-1": "Z368ELLRRE2KJ0",
    "us-west-2": "Z1H1FL5HABSF5", "eu-west-1": "Z32O12XQLNTSW2", "eu-central-1": "Z215JYRZR1TBD5",
}

# A sample of the published route53_healthchecks ranges (ip-ranges.json), enough to be realistic.
ROUTE53_HEALTHCHECK_CIDRS = (
    "15.177.0.0/18", "54.183.255.128/26", "54.228.16.0/26", "54.232.40.64/26",
    "54.241.32.64/26", "54.243.31.192/26", "54.244.52.192/26", "54.245.168.0/26",
    "54.248.220.0/26", "54.250.253.192/26", "54.251.31.128/26", "54.252.79.128/26",
    "54.252.254.192/26", "54.255.254.192/26", "107.23.255.0/26", "176.34.159.192/26",
    "177.71.207.128/26",
)
ROUTE53_HEALTHCHECK_IPV6 = ("2600:1f14:7ff:f800::/56", "2600:1f1c:7ff:f800::/55")


def short_hash(*parts: str, length: int = 12) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def _name(inputs: Mapping[str, Any], logical: str, *keys: str) -> str:
    for key in keys:
        value = inputs.get(key)
        if isinstance(value, str) and value:
            return value
    return logical


FakeState = tuple[str, dict[str, Any]]
Builder = Callable[[str, Mapping[str, Any], str, str], FakeState]


def _bucket(logical: str, inputs: Mapping[str, Any], region: str, account: str) -> FakeState:
    name = _name(inputs, logical, "bucket")
    return name, {"bucket": name, "arn": f"arn:aws:s3:::{name}", "region": region,
                  "bucketDomainName": f"{name}.s3.amazonaws.com",
                  "bucketRegionalDomainName": f"{name}.s3.{region}.amazonaws.com"}


def _kms_key(logical: str, inputs: Mapping[str, Any], region: str, account: str) -> FakeState:
    if inputs.get("multiRegion"):
        key_id = "mrk-" + short_hash(logical, region, length=32)
    else:
        key_id = (f"{short_hash(logical, region, length=8)}-1234-4abc-9def-"
                  f"{short_hash(logical, length=12)}")
    return key_id, {"keyId": key_id, "arn": f"arn:aws:kms:{region}:{account}:key/{key_id}"}


def _rds_instance(logical: str, inputs: Mapping[str, Any], region: str,
                  account: str) -> FakeState:
    ident = _name(inputs, logical, "identifier")
    address = f"{ident}.c{short_hash(account, region, length=10)}.{region}.rds.amazonaws.com"
    state: dict[str, Any] = {
        "identifier": ident, "arn": f"arn:aws:rds:{region}:{account}:db:{ident}",
        "address": address, "endpoint": f"{address}:5432", "port": 5432.0,
        "resourceId": "db-" + short_hash(ident, region, length=26).upper(),
        "hostedZoneId": "Z2R2ITUGPM61AM", "status": "available",
    }
    if inputs.get("manageMasterUserPassword"):
        state["masterUserSecrets"] = [{
            "secretArn": f"arn:aws:secretsmanager:{region}:{account}:secret:rds!db-"
                         f"{short_hash(ident, length=8)}-AbCdEf",
            "kmsKeyId": inputs.get("masterUserSecretKmsKeyId", ""), "secretStatus": "active"}]
    return ident, state


def _load_balancer(logical: str, inputs: Mapping[str, Any], region: str,
                   account: str) -> FakeState:
    name = _name(inputs, logical, "name")
    arn = (f"arn:aws:elasticloadbalancing:{region}:{account}:loadbalancer/app/{name}/"
           f"{short_hash(name, region, length=16)}")
    return arn, {"arn": arn, "name": name, "arnSuffix": arn.split(":loadbalancer/")[1],
                 "dnsName": f"{name}-{short_hash(name, length=10)}.{region}.elb.amazonaws.com",
                 "zoneId": ALB_ZONE_IDS.get(region, "Z0000000000000")}


def _target_group(logical: str, inputs: Mapping[str, Any], region: str,
                  account: str) -> FakeState:
    name = _name(inputs, logical, "name")
    arn = (f"arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/{name}/"
           f"{short_hash(name, region, length=16)}")
    return arn, {"arn": arn, "name": name, "arnSuffix": arn.rsplit(":", maxsplit=1)[-1]}


def _ssm_parameter(logical: str, inputs: Mapping[str, Any], region: str,
                   account: str) -> FakeState:
    name = _name(inputs, logical, "name")
    path = name if name.startswith("/") else "/" + name
    return name, {"name": name, "arn": f"arn:aws:ssm:{region}:{account}:parameter{path}",
                  "version": 1.0}


def _iam(kind: str) -> Builder:
    def build(logical: str, inputs: Mapping[str, Any], region: str, account: str) -> FakeState:
        name = _name(inputs, logical, "name")
        return name, {"name": name, "arn": f"arn:aws:iam::{account}:{kind}/{name}",
                      "uniqueId": "AROA" + short_hash(name, length=16).upper()}
    return build


def _regional(service: str, resource: str, id_prefix: str = "", key: str = "name",
              sep: str = ":") -> Builder:
    def build(logical: str, inputs: Mapping[str, Any], region: str, account: str) -> FakeState:
        name = _name(inputs, logical, key)
        ident = f"{id_prefix}{short_hash(logical, region, length=17)}" if id_prefix else name
        return ident, {"arn": f"arn:aws:{service}:{region}:{account}:{resource}{sep}{ident}",
                       "name": name}
    return build


def _health_check(logical: str, inputs: Mapping[str, Any], region: str,
                  account: str) -> FakeState:
    raw = short_hash(logical, length=32)
    ident = f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
    return ident, {"arn": f"arn:aws:route53:::healthcheck/{ident}"}


def _record(logical: str, inputs: Mapping[str, Any], region: str, account: str) -> FakeState:
    ident = "_".join(str(inputs.get(k, "")) for k in ("zoneId", "name", "type", "setIdentifier"))
    return ident, {"fqdn": inputs.get("name", logical)}


def _launch_template(logical: str, inputs: Mapping[str, Any], region: str,
                     account: str) -> FakeState:
    ident = "lt-" + short_hash(logical, region, length=17)
    return ident, {"arn": f"arn:aws:ec2:{region}:{account}:launch-template/{ident}",
                   "latestVersion": 1.0, "defaultVersion": 1.0}


def _asg(logical: str, inputs: Mapping[str, Any], region: str, account: str) -> FakeState:
    name = _name(inputs, logical, "name")
    return name, {"name": name, "arn": f"arn:aws:autoscaling:{region}:{account}:autoScalingGroup:"
                                       f"{short_hash(name, length=8)}-0000-4000-8000-"
                                       f"{short_hash(name, length=12)}:autoScalingGroupName/{name}"}


def _backup_plan(logical: str, inputs: Mapping[str, Any], region: str,
                 account: str) -> FakeState:
    raw = short_hash(logical, region, length=32)
    ident = f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
    return ident, {"arn": f"arn:aws:backup:{region}:{account}:backup-plan:{ident}",
                   "version": short_hash(ident, length=40)}


def _random_password(logical: str, inputs: Mapping[str, Any], region: str,
                     account: str) -> FakeState:
    """A deterministic stand-in (the real provider draws from a CSPRNG); it honours the
    length and the special-character alphabet so consumers see a realistic value."""
    length = int(inputs.get("length", 16))
    specials = str(inputs.get("overrideSpecial") or "!@#")
    digest = hashlib.sha256(f"password/{logical}".encode()).hexdigest()
    body = "".join(c.upper() if i % 3 == 0 else c for i, c in enumerate(digest))
    value = ("Aa1" + specials[0] + body)[:length]
    return logical, {"result": value, "bcryptHash": "$2a$10$" + short_hash(value, length=53)}


def _secret(logical: str, inputs: Mapping[str, Any], region: str, account: str) -> FakeState:
    name = _name(inputs, logical, "name")
    # Secrets Manager appends a dash and six random characters to the name.
    arn = f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-{short_hash(name, length=6)}"
    replicas = [{**r, "status": "InSync", "statusMessage": "Replication succeeded"}
                for r in inputs.get("replicas") or []]
    return arn, {"arn": arn, "name": name, "replicas": replicas}


def _secret_version(logical: str, inputs: Mapping[str, Any], region: str,
                    account: str) -> FakeState:
    version = short_hash(logical, length=8) + "-0000-4000-8000-" + short_hash(logical, length=12)
    secret = str(inputs.get("secretId", logical))
    return f"{secret}|{version}", {"arn": secret, "versionId": version,
                                   "versionStages": ["AWSCURRENT"]}


def _log_group(logical: str, inputs: Mapping[str, Any], region: str, account: str) -> FakeState:
    name = _name(inputs, logical, "name")
    return name, {"name": name, "arn": f"arn:aws:logs:{region}:{account}:log-group:{name}"}


def _service_linked_role(logical: str, inputs: Mapping[str, Any], region: str,
                         account: str) -> FakeState:
    service = str(inputs.get("awsServiceName", "autoscaling.amazonaws.com"))
    base = {"autoscaling.amazonaws.com": "AWSServiceRoleForAutoScaling"}.get(
        service, "AWSServiceRoleFor" + service.split(".", maxsplit=1)[0].title())
    suffix = inputs.get("customSuffix")
    name = f"{base}_{suffix}" if suffix else base
    arn = f"arn:aws:iam::{account}:role/aws-service-role/{service}/{name}"
    return arn, {"arn": arn, "name": name, "path": f"/aws-service-role/{service}/",
                 "uniqueId": "AROA" + short_hash(name, length=16).upper()}


def _automated_backups_replication(logical: str, inputs: Mapping[str, Any], region: str,
                                   account: str) -> FakeState:
    source = str(inputs.get("sourceDbInstanceArn", logical))
    arn = (f"arn:aws:rds:{region}:{account}:auto-backup:ab-"
           f"{short_hash(source, region, length=26)}")
    return arn, {}


def _web_acl(logical: str, inputs: Mapping[str, Any], region: str, account: str) -> FakeState:
    name = _name(inputs, logical, "name")
    raw = short_hash(logical, region, length=32)
    ident = f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
    scope = "global" if inputs.get("scope") == "CLOUDFRONT" else "regional"
    return ident, {"arn": f"arn:aws:wafv2:{region}:{account}:{scope}/webacl/{name}/{ident}",
                   "name": name, "capacity": 0.0, "lockToken": short_hash(ident)}


def _detector(logical: str, inputs: Mapping[str, Any], region: str, account: str) -> FakeState:
    ident = short_hash(logical, region, account, length=32)  # GuardDuty: 32 hex characters
    return ident, {"arn": f"arn:aws:guardduty:{region}:{account}:detector/{ident}",
                   "accountId": account}


def _event_rule(logical: str, inputs: Mapping[str, Any], region: str, account: str) -> FakeState:
    name = _name(inputs, logical, "name")
    bus = str(inputs.get("eventBusName") or "default")
    path = name if bus == "default" else f"{bus}/{name}"
    return name, {"arn": f"arn:aws:events:{region}:{account}:rule/{path}", "name": name}


def _by_keys(*keys: str, sep: str = "/") -> Builder:
    """Resources whose provider id joins some of their inputs (feature, target, filter)."""
    def build(logical: str, inputs: Mapping[str, Any], region: str, account: str) -> FakeState:
        return sep.join(str(inputs.get(k, logical)) for k in keys), {}
    return build


def _ec2(prefix: str, resource: str) -> Builder:
    def build(logical: str, inputs: Mapping[str, Any], region: str, account: str) -> FakeState:
        ident = f"{prefix}-{short_hash(logical, region, length=17)}"
        state: dict[str, Any] = {"arn": f"arn:aws:ec2:{region}:{account}:{resource}/{ident}",
                                 "ownerId": account}
        if prefix == "eipalloc":
            state["publicIp"] = "198.51.100." + str(int(short_hash(logical, length=2), 16) % 250)
        return ident, state
    return build


BUILDERS: dict[str, Builder] = {
    "aws:s3/bucket:Bucket": _bucket,
    "aws:kms/key:Key": _kms_key,
    "aws:rds/instance:Instance": _rds_instance,
    "aws:lb/loadBalancer:LoadBalancer": _load_balancer,
    "aws:lb/targetGroup:TargetGroup": _target_group,
    "aws:ssm/parameter:Parameter": _ssm_parameter,
    "aws:iam/role:Role": _iam("role"),
    "aws:iam/instanceProfile:InstanceProfile": _iam("instance-profile"),
    "aws:iam/policy:Policy": _iam("policy"),
    "aws:sns/topic:Topic": _regional("sns", "", sep=""),
    "aws:rds/subnetGroup:SubnetGroup": _regional("rds", "subgrp"),
    "aws:rds/parameterGroup:ParameterGroup": _regional("rds", "pg"),
    "aws:backup/vault:Vault": _regional("backup", "backup-vault"),
    "aws:backup/plan:Plan": _backup_plan,
    "aws:backup/restoreTestingPlan:RestoreTestingPlan": _regional(
        "backup", "restore-testing-plan"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": _regional("cloudwatch", "alarm"),
    "aws:route53/healthCheck:HealthCheck": _health_check,
    "aws:route53/record:Record": _record,
    "aws:ec2/launchTemplate:LaunchTemplate": _launch_template,
    "aws:autoscaling/group:Group": _asg,
    "aws:ec2/vpc:Vpc": _ec2("vpc", "vpc"),
    "aws:ec2/subnet:Subnet": _ec2("subnet", "subnet"),
    "aws:ec2/securityGroup:SecurityGroup": _ec2("sg", "security-group"),
    "aws:ec2/internetGateway:InternetGateway": _ec2("igw", "internet-gateway"),
    "aws:ec2/natGateway:NatGateway": _ec2("nat", "natgateway"),
    "aws:ec2/eip:Eip": _ec2("eipalloc", "elastic-ip"),
    "aws:ec2/routeTable:RouteTable": _ec2("rtb", "route-table"),
    "aws:lb/listener:Listener": _regional("elasticloadbalancing", "listener/app", "lst-", sep="/"),
    "random:index/randomPassword:RandomPassword": _random_password,
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:secretsmanager/secretVersion:SecretVersion": _secret_version,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:iam/serviceLinkedRole:ServiceLinkedRole": _service_linked_role,
    "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication":
        _automated_backups_replication,
    "aws:wafv2/webAcl:WebAcl": _web_acl,
    "aws:guardduty/detector:Detector": _detector,
    "aws:guardduty/detectorFeature:DetectorFeature": _by_keys("detectorId", "name"),
    "aws:cloudwatch/eventRule:EventRule": _event_rule,
    "aws:cloudwatch/eventTarget:EventTarget": _by_keys("rule", "targetId", sep="-"),
    "aws:cloudwatch/logMetricFilter:LogMetricFilter": _by_keys("name"),
    "aws:sns/topicPolicy:TopicPolicy": _by_keys("arn"),
}


def fake_state(typ: str, logical: str, inputs: Mapping[str, Any], region: str,
               account: str = ACCOUNT_ID) -> FakeState:
    """(id, state) for a new resource: its inputs plus what the provider would compute."""
    builder = BUILDERS.get(typ)
    if builder is None:
        ident = f"{logical}-{short_hash(typ, logical, region, length=8)}"
        computed: dict[str, Any] = {}
    else:
        ident, computed = builder(logical, inputs, region, account)
    state = dict(inputs)
    state.update(computed)
    state.setdefault("id", ident)
    state.setdefault("region", region)
    return ident, state


def fake_call(token: str, args: Mapping[str, Any], region: str,
              account: str = ACCOUNT_ID) -> dict[str, Any] | None:
    """Answers to the data sources the program uses; None for an unknown token."""
    where = str(args.get("region") or region)
    if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
        names = [f"{where}{suffix}" for suffix in "abcd"]
        return {"names": names, "zoneIds": [f"{where[:2]}{where.split('-')[1][:1]}-az{i + 1}"
                                            for i in range(len(names))],
                "id": where, "groupNames": [where], "region": where}
    if token == "aws:index/getIpRanges:getIpRanges":
        return {"cidrBlocks": list(ROUTE53_HEALTHCHECK_CIDRS),
                "ipv6CidrBlocks": list(ROUTE53_HEALTHCHECK_IPV6),
                "services": list(args.get("services") or []), "regions": ["GLOBAL"],
                "createDate": "2026-11-20-18-03-12", "syncToken": 1763661792.0,
                "id": "1763661792", "url": "https://ip-ranges.amazonaws.com/ip-ranges.json"}
    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {"accountId": account, "arn": f"arn:aws:iam::{account}:user/offline",
                "userId": "AIDAOFFLINE", "id": account}
    if token == "aws:index/getRegion:getRegion":
        return {"name": where, "region": where, "id": where,
                "endpoint": f"ec2.{where}.amazonaws.com",
                "description": where}
    if token == "aws:index/getPartition:getPartition":
        return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws",
                "reverseDnsPrefix": "com.amazonaws"}
    return None
