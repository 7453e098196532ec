"""What every guardrail shares: the stack's settings, resource types, and lookups across resources.

A policy pack runs in its own process and sees resources, not the stack's configuration. The
settings come from ``Pulumi.<stack>.yaml`` beside the pack (the stack name is in every URN), so
the guardrails and the program read the same validated values. ``CARESYNC_DR_PROJECT_DIR``
points elsewhere (tests use it for deliberately bad configurations).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidation,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from caresync_dr.settings import Settings, SettingsError, StackFileError, settings_from_stack_file

PROJECT_DIR_ENV = "CARESYNC_DR_PROJECT_DIR"

# v7 resource types, with the deprecated V2 aliases that mean the same thing.
BUCKET = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
BUCKET_SSE = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
BUCKET_VERSIONING = ("aws:s3/bucketVersioning:BucketVersioning",
                     "aws:s3/bucketVersioningV2:BucketVersioningV2")
BUCKET_PAB = ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",)
BUCKET_POLICY = ("aws:s3/bucketPolicy:BucketPolicy",)
BUCKET_LIFECYCLE = ("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2")
RDS_INSTANCE = ("aws:rds/instance:Instance",)
RDS_PARAMETER_GROUP = ("aws:rds/parameterGroup:ParameterGroup",)
ROUTE53_RECORD = ("aws:route53/record:Record",)
ROUTE53_HEALTH_CHECK = ("aws:route53/healthCheck:HealthCheck",)
BACKUP_PLAN = ("aws:backup/plan:Plan",)
SECURITY_GROUP = ("aws:ec2/securityGroup:SecurityGroup",)
SG_INGRESS_RULE = ("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",)
SG_RULE = ("aws:ec2/securityGroupRule:SecurityGroupRule",)
LOAD_BALANCER = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
SSM_PARAMETER = ("aws:ssm/parameter:Parameter",)
VPC = ("aws:ec2/vpc:Vpc",)
DEFAULT_SECURITY_GROUP = ("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",)
WAF_WEB_ACL = ("aws:wafv2/webAcl:WebAcl",)
WAF_ASSOCIATION = ("aws:wafv2/webAclAssociation:WebAclAssociation",)
AUTOSCALING_GROUP = ("aws:autoscaling/group:Group",)


def project_dir() -> Path:
    override = os.environ.get(PROJECT_DIR_ENV)
    return Path(override) if override else Path(__file__).resolve().parents[1]


def stack_of(urn: str) -> str:
    """``urn:pulumi:<stack>::<project>::<type>::<name>`` -> ``<stack>``."""
    prefix = "urn:pulumi:"
    if not urn.startswith(prefix) or "::" not in urn:
        raise ValueError(f"not a Pulumi URN: {urn!r}")
    return urn[len(prefix):].split("::", 1)[0]


_CACHE: dict[tuple[str, str, int, int], Settings] = {}
# Settings given directly for a local evaluation (policy/local.py): a mocked run with config
# overrides is judged on those overrides, not on the stack file.
GIVEN_SETTINGS: ContextVar[Settings | None] = ContextVar("given_settings", default=None)


class SettingsUnavailableError(Exception):
    """The stack's settings cannot be read; the message says why and what to fix."""


def settings_for(urn: str) -> Settings:
    """The validated settings of the stack that ``urn`` belongs to (cached per file version)."""
    stack = stack_of(urn)
    given = GIVEN_SETTINGS.get()
    if given is not None and given.stack == stack:
        return given
    root = project_dir()
    path = root / f"Pulumi.{stack}.yaml"
    try:
        stat = path.stat()
    except OSError:
        stat = None
    key = (str(path), stack, stat.st_mtime_ns if stat else 0, stat.st_size if stat else 0)
    if key not in _CACHE:
        try:
            _CACHE[key] = settings_from_stack_file(stack, root)
        except (SettingsError, StackFileError) as exc:
            raise SettingsUnavailableError(
                f"the guardrails need the stack settings: {exc}") from exc
    return _CACHE[key]


def with_settings(urn: str, report: ReportViolation) -> Settings | None:
    """Settings, or a violation saying why they could not be read (and None)."""
    try:
        return settings_for(urn)
    except (SettingsUnavailableError, ValueError) as exc:
        report(str(exc), None)
        return None


# --- policy factories: every rule is mandatory and names the resource it rejects -----------

Problems = Callable[[ResourceValidationArgs, ReportViolation], list[str]]


def resource_policy(name: str, description: str, types: tuple[str, ...],
                    problems: Problems) -> ResourceValidationPolicy:
    """A rule on each resource of ``types``: every problem returned becomes a violation."""
    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if args.resource_type in types:
            for problem in problems(args, report):
                report(f"{args.name}: {problem}", None)

    return ResourceValidationPolicy(name=name, description=description, validate=validate,
                                    enforcement_level=EnforcementLevel.MANDATORY)


def stack_policy(name: str, description: str, validate: StackValidation) -> StackValidationPolicy:
    return StackValidationPolicy(name=name, description=description, validate=validate,
                                 enforcement_level=EnforcementLevel.MANDATORY)


# --- reading props that may be unknown during preview ---------------------------------------

def prop(props: Mapping[str, Any], *path: str | int) -> Any:
    """``props[a][b]...`` or None when a key is absent; an unknown value raises
    :class:`UnknownValueError` (the framework reports "can't run during preview")."""
    value: Any = props
    for key in path:
        if isinstance(key, int):
            if not isinstance(value, Sequence) or isinstance(value, str) or key >= len(value):
                return None
            value = value[key]
        else:
            if not isinstance(value, Mapping) or key not in value:
                return None
            value = value[key]
    return value


def items(value: Any) -> list[Any]:
    """A list property as a list (absent -> empty; a single object -> one element)."""
    if value is None:
        return []
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [value[i] for i in range(len(value))]
    return [value]


def plain(value: Any) -> Any:
    """A property as plain dicts and lists (reading every value, so unknowns raise)."""
    if isinstance(value, Mapping):
        return {str(k): plain(value[k]) for k in value}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [plain(value[i]) for i in range(len(value))]
    return value


def truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


# --- stack-level helpers --------------------------------------------------------------------

def of_type(resources: Iterable[PolicyResource], types: tuple[str, ...]) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type in types]


def identities(resource: PolicyResource, *keys: str) -> set[str]:
    """Known string values by which other resources may refer to ``resource``."""
    found: set[str] = set()
    for key in ("id", *keys):
        try:
            value = prop(resource.props, key)
        except UnknownValueError:
            continue
        if isinstance(value, str) and value:
            found.add(value)
    return found


def refers_to(resource: PolicyResource, key: str, target: PolicyResource,
              target_keys: tuple[str, ...]) -> bool:
    """Does ``resource.props[key]`` point at ``target``? By property dependency (works during
    preview, when names are unknown) or by equal value."""
    if any(dep.urn == target.urn for dep in resource.property_dependencies.get(key, [])):
        return True
    try:
        value = prop(resource.props, key)
    except UnknownValueError:
        return False
    return isinstance(value, str) and value in identities(target, *target_keys)


class UnknownTracker:
    """Stack rules check every resource they can and then surface the first unknown value, so a
    preview shows both the violations it found and that a check could not run."""

    def __init__(self) -> None:
        self.first: UnknownValueError | None = None

    def run(self, check: Callable[[], None]) -> None:
        try:
            check()
        except UnknownValueError as exc:
            if self.first is None:
                self.first = exc

    def raise_if_any(self) -> None:
        if self.first is not None:
            raise self.first


_T = TypeVar("_T")


def check_each(items: Iterable[_T], check: Callable[[_T], None]) -> None:
    """Run ``check`` on every item, then raise the first unknown value one of them met: a stack
    rule reports every violation it can see and still says that a check could not run."""
    unknown = UnknownTracker()
    for item in items:
        unknown.run(functools.partial(check, item))
    unknown.raise_if_any()
