"""AWS's rules for the names and identifiers the failover inventory carries, each with its source.

Every function takes a value and returns ``None`` when AWS would accept it, else one sentence
saying what AWS allows. They only check shape (a name that AWS would refuse, or an ARN of
another service or region); whether the resource exists is for the failover's preflight to read.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import urlsplit

Check = Callable[[str], "str | None"]   # a rule: None when AWS accepts the value

# Region names: us-east-1, eu-central-2, us-gov-west-1, ap-southeast-4 ...
_REGION = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d")
# Account ids are 12 digits (IAM User Guide, "Your AWS account ID").
_ACCOUNT = r"\d{12}"
_PARTITION = r"aws(-cn|-us-gov|-iso|-iso-b|-iso-e|-iso-f)?"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def region(value: str) -> str | None:
    if not _REGION.fullmatch(value):
        return "expected an AWS region name such as us-west-2"
    return None


def rds_identifier(value: str) -> str | None:
    """RDS API Reference, CreateDBInstance, DBInstanceIdentifier: 1 to 63 letters, digits or
    hyphens; the first a letter; no trailing hyphen and no two consecutive hyphens."""
    if (not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,62}", value) or value.endswith("-")
            or "--" in value):
        return ("RDS identifiers are 1 to 63 letters, digits or hyphens, start with a letter, "
                "and neither end with a hyphen nor contain two in a row")
    return None


_RDS_ARN = re.compile(rf"arn:{_PARTITION}:rds:(?P<region>[a-z0-9-]+):{_ACCOUNT}:db:"
                      r"(?P<identifier>[A-Za-z0-9-]+)")


def rds_instance_arn(value: str, *, in_region: str, identifier: str) -> str | None:
    """``arn:aws:rds:<region>:<account>:db:<identifier>`` (RDS User Guide, "Amazon Resource Names
    (ARNs) in Amazon RDS"), of this site's region and this site's database."""
    match = _RDS_ARN.fullmatch(value)
    if match is None:
        return "expected an RDS DB instance ARN such as arn:aws:rds:us-east-1:111122223333:db:NAME"
    if match["region"] != in_region:
        return f"the ARN is in {match['region']}, the site is in {in_region}"
    if match["identifier"].lower() != identifier.lower():
        return f"the ARN names {match['identifier']}, the site's database is {identifier}"
    return None


def security_group_id(value: str) -> str | None:
    """EC2 resource ids: ``sg-`` and 8 or 17 hexadecimal digits (EC2 User Guide, "Resource IDs")."""
    if not re.fullmatch(r"sg-([0-9a-f]{8}|[0-9a-f]{17})", value):
        return "expected a security group id such as sg-0123456789abcdef0"
    return None


def launch_template_id(value: str) -> str | None:
    if not re.fullmatch(r"lt-([0-9a-f]{8}|[0-9a-f]{17})", value):
        return "expected a launch template id such as lt-0123456789abcdef0"
    return None


def auto_scaling_group_name(value: str) -> str | None:
    """Auto Scaling API Reference, AutoScalingGroupName: 1 to 255 characters, no control
    characters (the API's XmlStringMaxLen255 pattern)."""
    if not 1 <= len(value) <= 255 or _CONTROL.search(value):
        return "Auto Scaling group names are 1 to 255 characters without control characters"
    return None


_TARGET_GROUP_ARN = re.compile(
    rf"arn:{_PARTITION}:elasticloadbalancing:(?P<region>[a-z0-9-]+):{_ACCOUNT}:"
    r"targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}")


def target_group_arn(value: str, *, in_region: str) -> str | None:
    """``arn:aws:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<16 hex>``; target
    group names are 1 to 32 letters, digits or hyphens (ELBv2 CreateTargetGroup)."""
    match = _TARGET_GROUP_ARN.fullmatch(value)
    if match is None:
        return ("expected a target group ARN such as arn:aws:elasticloadbalancing:us-west-2:"
                "111122223333:targetgroup/NAME/0123456789abcdef")
    if match["region"] != in_region:
        return f"the ARN is in {match['region']}, the site is in {in_region}"
    return None


_SNS_ARN = re.compile(rf"arn:{_PARTITION}:sns:(?P<region>[a-z0-9-]+):{_ACCOUNT}:"
                      r"[A-Za-z0-9_-]{1,256}(\.fifo)?")


def sns_topic_arn(value: str, *, in_region: str) -> str | None:
    """SNS CreateTopic: names of 1 to 256 letters, digits, hyphens and underscores. The topic
    must live in ``in_region``: the standby region must not depend on the failed one."""
    match = _SNS_ARN.fullmatch(value)
    if match is None:
        return "expected an SNS topic ARN such as arn:aws:sns:us-west-2:111122223333:NAME"
    if match["region"] != in_region:
        return f"the topic is in {match['region']}, it must be in {in_region}"
    return None


# SSM's limit is 1011 characters *including* the ARN prefix arn:aws:ssm:REGION:ACCOUNT:parameter
# (PutParameter API Reference, Name); 900 leaves room for the longest partition and region.
SSM_NAME_MAX = 900


def ssm_parameter_name(value: str) -> str | None:
    """PutParameter API Reference, Name: only ``a-zA-Z0-9_.-`` and ``/`` for the hierarchy, no
    spaces, not prefixed with ``aws`` or ``ssm`` (case-insensitive), at most 15 levels. This
    tool also requires the fully qualified form with a leading ``/`` (the stack's)."""
    if not re.fullmatch(r"(/[A-Za-z0-9_.-]+)+", value) or len(value) > SSM_NAME_MAX:
        return (f"SSM parameter names here are paths like /caresync-dr/failover/lock: '/'-"
                f"separated parts of a-zA-Z0-9_.-, at most {SSM_NAME_MAX} characters")
    first = value.split("/")[1].lower()
    if first.startswith(("aws", "ssm")):
        return "SSM reserves names that start with 'aws' or 'ssm'"
    if value.count("/") > 15:
        return "SSM allows at most 15 levels in a parameter hierarchy"
    return None


def s3_bucket_name(value: str) -> str | None:
    """S3 User Guide, "General purpose bucket naming rules": 3 to 63 lowercase letters, digits,
    dots and hyphens; begins and ends with a letter or digit; no two adjacent dots; not an IP
    address; not prefixed ``xn--`` or ``sthree-``, not suffixed ``-s3alias`` or ``--ol-s3``."""
    rule = ("S3 bucket names are 3 to 63 lowercase letters, digits, dots and hyphens, begin and "
            "end with a letter or digit, and are not IP addresses")
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", value) or ".." in value:
        return rule
    try:
        ipaddress.IPv4Address(value)
        return rule
    except ValueError:
        pass
    if value.startswith(("xn--", "sthree-")) or value.endswith(("-s3alias", "--ol-s3")):
        return "S3 reserves the prefixes xn--, sthree- and the suffixes -s3alias, --ol-s3"
    return None


def s3_key(value: str) -> str | None:
    """S3 object keys are 1 to 1024 bytes of UTF-8 (S3 User Guide, "Naming objects"); control
    characters are refused here, since Route 53 must fetch this key as a URL path."""
    if not 1 <= len(value.encode("utf-8")) <= 1024 or _CONTROL.search(value):
        return "S3 keys are 1 to 1024 bytes of UTF-8 text without control characters"
    return None


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def route53_health_check_id(value: str) -> str | None:
    """Route 53 health check ids are UUIDs (CreateHealthCheck returns ``HealthCheck.Id``)."""
    if not _UUID.fullmatch(value):
        return "expected a Route 53 health check id (a UUID such as abcdef11-2222-3333-4444-" \
               "555555fedcba)"
    return None


def route53_zone_id(value: str) -> str | None:
    """Route 53 API Reference, ResourceId: at most 32 characters (upper-case letters and digits
    in practice, Z... for public zones)."""
    if not re.fullmatch(r"[A-Z0-9]{1,32}", value):
        return "expected a Route 53 hosted zone id such as Z0123456789ABC"
    return None


def route53_set_identifier(value: str) -> str | None:
    """ResourceRecordSet SetIdentifier: 1 to 128 characters."""
    if not 1 <= len(value) <= 128 or _CONTROL.search(value):
        return "Route 53 set identifiers are 1 to 128 characters"
    return None


def dns_name(value: str) -> str | None:
    """RFC 1035 host names: labels of 1 to 63 letters, digits and hyphens, 253 characters."""
    labels = value.rstrip(".").split(".")
    if (len(value) > 253 or len(labels) < 2
            or not all(re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?", label)
                       for label in labels)):
        return "expected a DNS name such as app.caresync.health"
    return None


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def url(value: str, *, https_only: bool, loopback_http: bool = False) -> str | None:
    """An absolute http(s) URL with a host. ``https_only``: plain http is refused, except to a
    loopback host when ``loopback_http`` (drills and tests on one machine)."""
    try:
        parts = urlsplit(value)
        port = parts.port   # raises ValueError for a port out of range
    except ValueError:
        return "expected an absolute URL such as https://app.caresync.health/api/health"
    del port
    if parts.scheme not in ("http", "https") or not parts.hostname or _CONTROL.search(value) \
            or " " in value:
        return "expected an absolute http(s) URL such as https://app.caresync.health/api/health"
    if https_only and parts.scheme != "https" and not (
            loopback_http and parts.hostname in LOOPBACK_HOSTS):
        return "expected an https:// URL"
    return None
