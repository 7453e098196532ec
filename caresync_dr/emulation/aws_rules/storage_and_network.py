"""S3, load balancer, EC2, Auto Scaling, CloudWatch alarm and SSM rules."""

from __future__ import annotations

import json
import re

from caresync_dr.emulation.aws_rules.core import (
    ResourceLike,
    Rule,
    RunView,
    allows,
    arn_region,
    as_list,
    first,
    number,
    policy_statements,
)

BUCKET = "aws:s3/bucket:Bucket"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE = "aws:iam/role:Role"
LB = "aws:lb/loadBalancer:LoadBalancer"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
LISTENER = "aws:lb/listener:Listener"
SUBNET = "aws:ec2/subnet:Subnet"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
ASG = "aws:autoscaling/group:Group"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
PARAMETER = "aws:ssm/parameter:Parameter"
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
WEB_ACL_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
WEB_ACL_LOGGING = "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"
INSTANCE = "aws:rds/instance:Instance"
S3_GUIDE = "https://docs.aws.amazon.com/AmazonS3/latest/userguide/"
_BUCKET_NAME = re.compile(r"(?!xn--)(?!sthree-)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_LB_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?")


def _on_bucket(view: RunView, type_: str, bucket_id: object) -> ResourceLike | None:
    for resource in view.of_type(type_):
        if resource.inputs.get("bucket") == bucket_id:
            return resource
    return None


def bucket_name(bucket: ResourceLike, view: RunView) -> list[str]:
    name = str(bucket.inputs.get("bucket") or "")
    if name and (not _BUCKET_NAME.fullmatch(name) or ".." in name or name.endswith("-s3alias")):
        return [f"bucket name {name!r} breaks S3's naming rules (3-63 lowercase letters, digits, "
                "dots and hyphens)"]
    return []


def replication_prerequisites(config: ResourceLike, view: RunView) -> list[str]:
    problems = []
    bucket = config.inputs.get("bucket")
    versioning = _on_bucket(view, VERSIONING, bucket)
    status = first(versioning.inputs.get("versioningConfiguration")).get("status") \
        if versioning else None
    if status != "Enabled":
        problems.append("the source bucket is not versioned: S3 replication requires versioning "
                        "on source and destination")
    elif not view.depends_on(config, versioning):  # type: ignore[arg-type]
        problems.append("the replication configuration does not wait for the source bucket's "
                        "versioning (InvalidRequest: versioning must be enabled)")
    if not config.inputs.get("role"):
        problems.append("replication needs an IAM role S3 can assume")
    role_policy = _role_policy(view, config.inputs.get("role"))
    for rule in as_list(config.inputs.get("rules")):
        destination = first(rule.get("destination"))
        kms_selected = first(first(rule.get("sourceSelectionCriteria"))
                             .get("sseKmsEncryptedObjects")).get("status") == "Enabled"
        replica_key = first(destination.get("encryptionConfiguration")).get("replicaKmsKeyId")
        if kms_selected and not replica_key:
            problems.append(f"rule {rule.get('id')} replicates SSE-KMS objects without "
                            "encryption_configuration.replica_kms_key_id")
        if rule.get("filter") is not None and rule.get("deleteMarkerReplication") is None:
            problems.append(f"rule {rule.get('id')} uses a filter without "
                            "delete_marker_replication (required by the V2 schema)")
        if kms_selected and role_policy is not None and replica_key:
            statements = policy_statements(role_policy)
            if not any(allows(s, "kms:Encrypt") and replica_key in as_list(s.get("Resource"))
                       for s in statements):
                problems.append(f"the replication role may not kms:Encrypt with {replica_key}")
            if not any(allows(s, "kms:Decrypt") for s in statements):
                problems.append("the replication role may not kms:Decrypt the source objects")
    return problems


def _role_policy(view: RunView, role_arn: object) -> object | None:
    role = view.with_output(ROLE, "arn", role_arn)
    if role is None:
        return None
    for policy in view.of_type(ROLE_POLICY):
        if policy.inputs.get("role") in (role.resource_id, role.outputs.get("name")):
            return policy.inputs.get("policy")
    return None


def alb_access_log_bucket_sse_s3(lb: ResourceLike, view: RunView) -> list[str]:
    logs = first(lb.inputs.get("accessLogs"))
    if not logs.get("enabled"):
        return []
    bucket = view.with_output(BUCKET, "bucket", logs.get("bucket"))
    if bucket is None:
        return []
    sse = _on_bucket(view, SSE, bucket.resource_id)
    algorithm = first(first(sse.inputs.get("rules") if sse else None)
                      .get("applyServerSideEncryptionByDefault")).get("sseAlgorithm")
    if algorithm != "AES256":
        return [f"access logs go to {logs.get('bucket')}, encrypted with {algorithm}: ELB delivers "
                "access logs only to buckets with SSE-S3 (AES256)"]
    return []


def lb_names(resource: ResourceLike, view: RunView) -> list[str]:
    name = str(resource.inputs.get("name") or "")
    if name and not _LB_NAME.fullmatch(name):
        return [f"name {name!r}: at most 32 letters, digits and hyphens, no hyphen at either end"]
    return []


def lb_subnets_in_two_zones(lb: ResourceLike, view: RunView) -> list[str]:
    zones = set()
    for subnet_id in as_list(lb.inputs.get("subnets")):
        subnet = view.with_output(SUBNET, "id", subnet_id)
        if subnet is not None:
            zones.add(subnet.inputs.get("availabilityZone"))
    if lb.inputs.get("loadBalancerType", "application") == "application" and len(zones) < 2:
        return ["an Application Load Balancer needs subnets in at least two Availability Zones"]
    return []


def https_listener(listener: ResourceLike, view: RunView) -> list[str]:
    if listener.inputs.get("protocol") != "HTTPS":
        return []
    problems = []
    certificate = listener.inputs.get("certificateArn")
    if not certificate or not listener.inputs.get("sslPolicy"):
        problems.append("an HTTPS listener needs certificate_arn and ssl_policy")
    elif arn_region(certificate) != view.region_of(listener):
        problems.append(f"certificate {certificate} is not in the listener's region "
                        f"{view.region_of(listener)} (ACM certificates are regional)")
    return problems


def security_group_description(group: ResourceLike, view: RunView) -> list[str]:
    text = str(group.inputs.get("description") or "")
    if not text or len(text) > 255 or not re.fullmatch(r"[A-Za-z0-9 ._\-:/()#,@\[\]+=&;{}!$*]*",
                                                       text):
        return [f"description {text!r}: 1-255 characters of EC2's allowed set"]
    return []


def flow_log_interval(flow_log: ResourceLike, view: RunView) -> list[str]:
    seconds = number(flow_log.inputs.get("maxAggregationInterval"))
    if seconds is not None and seconds not in (60, 600):
        return [f"max_aggregation_interval {seconds:g}: 60 or 600 seconds"]
    return []


def group_capacity(group: ResourceLike, view: RunView) -> list[str]:
    low = number(group.inputs.get("minSize")) or 0
    high = number(group.inputs.get("maxSize")) or 0
    desired = number(group.inputs.get("desiredCapacity"))
    if low > high or (desired is not None and not low <= desired <= high):
        return [f"min {low:g} <= desired {desired} <= max {high:g} does not hold"]
    return []


def alarm_shape(alarm: ResourceLike, view: RunView) -> list[str]:
    problems = []
    periods = number(alarm.inputs.get("evaluationPeriods")) or 0
    datapoints = number(alarm.inputs.get("datapointsToAlarm"))
    if datapoints is not None and datapoints > periods:
        problems.append(f"datapoints_to_alarm {datapoints:g} exceeds evaluation_periods "
                        f"{periods:g}")
    period = number(alarm.inputs.get("period"))
    if period is not None and period not in (10, 20, 30) and period % 60:
        problems.append(f"period {period:g}: 10, 20, 30 or a multiple of 60 seconds")
    queries = as_list(alarm.inputs.get("metricQueries"))
    if queries:
        returning = [q for q in queries if q.get("returnData")]
        if len(returning) != 1:
            problems.append("exactly one metric query must return data")
        if alarm.inputs.get("metricName"):
            problems.append("metric_name and metric_queries exclude each other")
    elif not alarm.inputs.get("metricName"):
        problems.append("an alarm needs metric_name or metric_queries")
    if alarm.inputs.get("statistic") and alarm.inputs.get("extendedStatistic"):
        problems.append("statistic and extended_statistic exclude each other")
    return problems


def replicas_alarm_when_replication_stops(db: ResourceLike, view: RunView) -> list[str]:
    if not db.inputs.get("replicateSourceDb") or (db.inputs.get("tags") or {}).get(
            "caresync:lifecycle") == "retiring":
        return []
    identifier = db.inputs.get("identifier")
    for alarm in view.of_type(ALARM):
        dims = alarm.inputs.get("dimensions") or {}
        if (alarm.inputs.get("metricName") == "ReplicaLag"
                and dims.get("DBInstanceIdentifier") == identifier
                and alarm.inputs.get("comparisonOperator") in ("LessThanThreshold",
                                                               "LessThanOrEqualToThreshold")
                and (number(alarm.inputs.get("threshold")) or 0) <= 0
                and alarm.inputs.get("treatMissingData") == "breaching"):
            return []
    return [f"no alarm fires when replication to {identifier} stops: RDS then reports "
            "ReplicaLag -1 (or nothing), which no lag threshold crosses; alarm on ReplicaLag "
            "< 0 with missing data breaching (fault 10)"]


def parameter_size_and_name(parameter: ResourceLike, view: RunView) -> list[str]:
    problems = []
    name = str(parameter.inputs.get("name") or "")
    if "/" in name and not name.startswith("/"):
        problems.append(f"name {name!r} has a path but no leading slash")
    if name.count("/") > 15:
        problems.append(f"name {name!r} is more than 15 levels deep")
    value = parameter.inputs.get("value")
    size = len((value if isinstance(value, str) else json.dumps(value)).encode())
    limit = 8192 if parameter.inputs.get("tier") == "Advanced" else 4096
    if size > limit:
        problems.append(f"value is {size} bytes; the {parameter.inputs.get('tier', 'Standard')} "
                        f"tier holds {limit}")
    return problems


def waf_log_destination(config: ResourceLike, view: RunView) -> list[str]:
    destinations = as_list(config.inputs.get("logDestinationConfigs"))
    problems = []
    if len(destinations) != 1:
        problems.append(f"{len(destinations)} log destinations: a web ACL logs to exactly one")
    for arn in destinations:
        name = str(arn).rsplit(":", 1)[-1].rsplit("/", 1)[-1]
        if not name.startswith("aws-waf-logs-"):
            problems.append(f"log destination {arn}: WAF delivers only to buckets, log groups "
                            "and streams named aws-waf-logs-...")
    return problems


def waf_association_regional(association: ResourceLike, view: RunView) -> list[str]:
    acl = view.with_output(WEB_ACL, "arn", association.inputs.get("webAclArn"))
    target = association.inputs.get("resourceArn")
    if acl is None:
        return []
    problems = []
    if acl.inputs.get("scope") != "REGIONAL":
        problems.append("a load balancer takes a REGIONAL web ACL, not a CLOUDFRONT one")
    if arn_region(target) not in (None, view.region_of(acl)):
        problems.append(f"the web ACL is in {view.region_of(acl)}, the resource in "
                        f"{arn_region(target)}: a regional web ACL protects its own region's "
                        "resources only")
    return problems


ELB_GUIDE = "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/"
RULES = [
    Rule("s3-bucket-name", "Bucket names follow S3's naming rules",
         S3_GUIDE + "bucketnamingrules.html", (BUCKET,), bucket_name),
    Rule("s3-replication-prerequisites", "Replication: the source versioned first, a role, "
         "the replica key for SSE-KMS objects and the role's decrypt/encrypt grants",
         S3_GUIDE + "replication-requirements.html; " + S3_GUIDE
         + "replication-config-for-kms-objects.html", (REPLICATION,),
         replication_prerequisites),
    Rule("elb-access-logs-sse-s3", "ALB access logs go to an SSE-S3 bucket",
         ELB_GUIDE + "enable-access-logging.html", (LB,), alb_access_log_bucket_sse_s3),
    Rule("elb-names", "Load balancer and target group names: 32 letters, digits, hyphens",
         "pulumi-aws aws.lb.LoadBalancer and aws.lb.TargetGroup docstrings, name",
         (LB, TARGET_GROUP), lb_names),
    Rule("elb-two-availability-zones", "An ALB spans subnets in at least two AZs",
         ELB_GUIDE + "application-load-balancers.html#availability-zones", (LB,),
         lb_subnets_in_two_zones),
    Rule("elb-https-listener-certificate", "HTTPS listeners have a certificate of their region "
         "and an SSL policy", "pulumi-aws aws.lb.Listener docstring, certificate_arn and "
         "ssl_policy; ACM certificates are regional", (LISTENER,), https_listener),
    Rule("ec2-security-group-description", "Security group descriptions: 1-255 allowed "
         "characters (and no update API)", "pulumi-aws aws.ec2.SecurityGroup docstring, "
         "description", (SECURITY_GROUP,), security_group_description),
    Rule("ec2-flow-log-aggregation", "Flow logs aggregate over 60 or 600 seconds",
         "pulumi-aws aws.ec2.FlowLog docstring, max_aggregation_interval", (FLOW_LOG,),
         flow_log_interval),
    Rule("autoscaling-capacity", "min <= desired <= max",
         "https://docs.aws.amazon.com/autoscaling/ec2/APIReference/"
         "API_CreateAutoScalingGroup.html", (ASG,), group_capacity),
    Rule("cloudwatch-alarm-shape", "Alarms: datapoints <= periods, a valid period, one metric "
         "or one returning query", "https://docs.aws.amazon.com/AmazonCloudWatch/latest/"
         "APIReference/API_PutMetricAlarm.html", (ALARM,), alarm_shape),
    Rule("rds-replica-stopped-alarm", "Every replica pages when replication stops (ReplicaLag "
         "-1 or no data; fault 10)", "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/"
         "USER_ReadRepl.Monitoring.html; RDS read replica monitoring: 'If the ReplicaLag metric "
         "returns -1, then replication is currently not active'", (INSTANCE,),
         replicas_alarm_when_replication_stops),
    Rule("wafv2-log-destination", "A web ACL logs to one destination named aws-waf-logs-*",
         "https://docs.aws.amazon.com/waf/latest/developerguide/logging-s3.html (bucket name "
         "prefix); logging-management.html (one destination per web ACL)",
         (WEB_ACL_LOGGING,), waf_log_destination),
    Rule("wafv2-regional-association", "A load balancer's web ACL is REGIONAL and in its "
         "region", "https://docs.aws.amazon.com/waf/latest/developerguide/"
         "web-acl-associating-aws-resource.html", (WEB_ACL_ASSOCIATION,),
         waf_association_regional),
    Rule("ssm-parameter-name-and-size", "Parameter names with a path start with /, at most 15 "
         "levels; values fit their tier (4 KB standard, 8 KB advanced)",
         "https://docs.aws.amazon.com/systems-manager/latest/userguide/"
         "sysman-parameter-name-constraints.html; parameter-store-advanced-parameters.html",
         (PARAMETER,), parameter_size_and_name),
]
