"""The failover inventory: everything ``scripts/failover.py`` needs, kept in the standby region.

The dr stack renders one JSON document into SSM Parameter Store in the standby region
(``inventoryParameter``, default ``/caresync-dr/failover-inventory``). failover.py reads it and
the local ``Pulumi.<stack>.yaml``; it needs neither the Pulumi CLI nor the state backend.

Schema, version 1 (JSON keys are the camelCase of the field names below)::

    {
      "version": 1,                        # bump on an incompatible change; readers refuse others
      "project": "caresync-dr", "stack": "dr",
      "objectives": {"rtoMinutes": 60, "rpoMinutes": 15},
      "primary":  Site,                    # the failed site during a regional failover
      "standby":  Site,                    # the site failover promotes
      "dns": {"hostedZoneId", "recordName", "primarySetIdentifier", "secondarySetIdentifier",
              "publicHealthUrl"},
      "trafficSwitch": {"region", "bucket", "key", "healthCheckId", "primaryHealthCheckId",
                        "primaryValue": "PRIMARY", "failoverValue": "FAILOVER"},
      "alertTopicArn": "arn:aws:sns:<standby>:...",
      "webhookUrl": null | "https://...",  # retired, ignored: chat goes through the notifier
                                           # (docs/communication.md); older documents parse
      "backupBucket": "<standby backup bucket, for incident timelines>",
      "primaryBackupBucket": null | "<primary backup bucket>",  # a reversed failover's
                                           # incident timelines (activeSite standby)
      "lockParameter": "/caresync-dr/failover/lock",       # SSM, standby region
      "journalParameter": "/caresync-dr/failover/journal", # SSM, standby region
      "activeSite": "primary"              # which site's database writes (the stacks'
                                           # activeSite); "standby" once a failover is reconciled
    }

While ``activeSite`` is ``standby`` the dr stack also writes the same document into the
*primary* region (same parameter name, the primary site's key): a regional failover then runs
standby -> primary, and everything it needs (this document, ``lockParameter``,
``journalParameter``, ``primaryBackupBucket``) must be in the region it promotes
(``caresync_dr/failover/context.py``, "reversed").

    Site = {
      "region": "us-east-1",
      "database": {"identifier", "arn", "securityGroupId", "backupRetentionDays",
                   "replicaIdentifiers": [...],    # in-region read replicas of this database
                   "endpointParameter",            # SSM name holding the writer endpoint host:port
                   "generation": 1},               # the database generation (a new identity
                                                   # each time a site must replicate again)
      "app": {"autoScalingGroupName", "launchTemplateId", "targetGroupArn", "loadBalancerDns",
              "capacity": {"min", "desired", "max"},            # what the site runs today
              "productionCapacity": {"min", "desired", "max"}}, # what it runs when serving
      "healthCheckId": "<Route 53 endpoint health check of this site's /api/health>"
    }

``activeSite``, ``database.generation`` and ``primaryBackupBucket`` were added to version 1
with defaults (``"primary"``, ``1``, ``null``): documents written before them still parse.

The traffic switch is an object in a standby-region S3 bucket. Route 53 probes it with an
inverted string-match health check, so writing ``failoverValue`` into it (an S3 data-plane call
in the standby region) marks the PRIMARY record unhealthy without any Route 53 API call; see
docs/traffic-switch.md.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Callable, Iterator
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from typing import Any, TypeVar, get_type_hints
from urllib.parse import urlsplit

from caresync_dr import aws_names

# One capacity type for settings and inventory: the inventory records what the settings said.
from caresync_dr.settings import (
    PROJECT_NAME,
    RDS_RETENTION_RANGE,
    Capacity,
)

INVENTORY_VERSION = 1
PRIMARY_VALUE = "PRIMARY"
FAILOVER_VALUE = "FAILOVER"
# SSM holds at most 8 KB (advanced tier); a file copy of the document is as small. 64 KiB leaves
# room for pretty-printing and refuses anything that cannot be an inventory before parsing it.
MAX_INVENTORY_BYTES = 64 * 1024
# Route 53 string matching searches the first 5,120 bytes for a SearchString of at most 255
# characters (Route 53 Developer Guide, "Values that you specify when you create or update
# health checks").
SWITCH_VALUE_MAX = 255

T = TypeVar("T")
Rule = Callable[[Any], "str | None"]
Problem = tuple[str, object, str]     # (field path, value, what is allowed)


class InventoryError(ValueError):
    """The inventory document is missing, malformed or of an unsupported version."""


def rule(check: Rule, *, each: Rule | None = None) -> dict[str, Any]:
    """Field metadata: ``check`` the field's value (``each``: every item of a list field).

    Every field of the schema carries a rule or is itself a schema dataclass (whose fields do):
    a new field cannot slip in unvalidated (``tests/failover/test_inventory_schema.py``)."""
    return {"rule": check, "each": each}


def _in_range(low: int, high: int, why: str) -> Rule:
    def check(value: int) -> str | None:
        return None if low <= value <= high else f"must be between {low} and {high}: {why}"
    return check


def _distinct(values: tuple[str, ...]) -> str | None:
    return None if len(set(values)) == len(values) else "lists a name twice"


def _capacity(serving: bool) -> Rule:
    def check(cap: Capacity) -> str | None:
        if not 0 <= cap.min <= cap.desired <= cap.max or cap.max < 1:
            return "must satisfy 0 <= min <= desired <= max and max >= 1 (Auto Scaling " \
                   "refuses anything else)"
        if serving and cap.desired < 1:
            return "production capacity must run at least one instance: a failover would " \
                   "scale the serving site to nothing"
        return None
    return check


def _printable(limit: int) -> Rule:
    def check(value: str) -> str | None:
        if not 1 <= len(value) <= limit or not value.isprintable() or value != value.strip():
            return f"expected 1 to {limit} printable characters without surrounding spaces"
        return None
    return check


def _switch_value(value: str) -> str | None:
    return _printable(SWITCH_VALUE_MAX)(value)


def _stack_name(value: str) -> str | None:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", value):
        return "expected a Pulumi stack name (letters, digits, _ . -)"
    return None


def _project(value: str) -> str | None:
    return None if value == PROJECT_NAME else f"this tool fails over {PROJECT_NAME}"


def _https_url(value: str) -> str | None:
    return aws_names.url(value, https_only=True)


def _webhook_url(value: str) -> str | None:
    # Retired (nothing reads it); still checked so an older document with it parses safely.
    return aws_names.url(value, https_only=True, loopback_http=True)


_RETENTION = _in_range(*RDS_RETENTION_RANGE, "RDS keeps automated backups for 1 to 35 days "
                       "(0 turns them off, which the promoted writer must not have)")
_MINUTES = _in_range(1, 24 * 60, "as the rtoMinutes/rpoMinutes settings")
_GENERATION = _in_range(1, 10_000, "database generations count from 1")


def _site(value: str) -> str | None:
    return None if value in ("primary", "standby") else "must be primary or standby"


@dataclass(frozen=True)
class DatabaseInventory:
    identifier: str = field(metadata=rule(aws_names.rds_identifier))
    arn: str = field(metadata=rule(_printable(1011)))          # checked against the site
    security_group_id: str = field(metadata=rule(aws_names.security_group_id))
    backup_retention_days: int = field(metadata=rule(_RETENTION))
    replica_identifiers: tuple[str, ...] = field(
        metadata=rule(_distinct, each=aws_names.rds_identifier))
    endpoint_parameter: str = field(metadata=rule(aws_names.ssm_parameter_name))
    generation: int = field(default=1, metadata=rule(_GENERATION))


@dataclass(frozen=True)
class AppInventory:
    auto_scaling_group_name: str = field(metadata=rule(aws_names.auto_scaling_group_name))
    launch_template_id: str = field(metadata=rule(aws_names.launch_template_id))
    target_group_arn: str = field(metadata=rule(_printable(1011)))   # checked against the site
    load_balancer_dns: str = field(metadata=rule(aws_names.dns_name))
    capacity: Capacity = field(metadata=rule(_capacity(serving=False)))
    production_capacity: Capacity = field(metadata=rule(_capacity(serving=True)))


@dataclass(frozen=True)
class SiteInventory:
    region: str = field(metadata=rule(aws_names.region))
    database: DatabaseInventory
    app: AppInventory
    health_check_id: str = field(metadata=rule(aws_names.route53_health_check_id))

    def problems(self, path: str) -> Iterator[Problem]:
        db, app = self.database, self.app
        found = aws_names.rds_instance_arn(db.arn, in_region=self.region,
                                           identifier=db.identifier)
        if found:
            yield f"{path}.database.arn", db.arn, found
        found = aws_names.target_group_arn(app.target_group_arn, in_region=self.region)
        if found:
            yield f"{path}.app.targetGroupArn", app.target_group_arn, found
        if db.identifier in db.replica_identifiers:
            yield (f"{path}.database.replicaIdentifiers", list(db.replica_identifiers),
                   f"names the database {db.identifier} itself")


@dataclass(frozen=True)
class Objectives:
    rto_minutes: int = field(metadata=rule(_MINUTES))
    rpo_minutes: int = field(metadata=rule(_MINUTES))


@dataclass(frozen=True)
class DnsInventory:
    hosted_zone_id: str = field(metadata=rule(aws_names.route53_zone_id))
    record_name: str = field(metadata=rule(aws_names.dns_name))
    primary_set_identifier: str = field(metadata=rule(aws_names.route53_set_identifier))
    secondary_set_identifier: str = field(metadata=rule(aws_names.route53_set_identifier))
    public_health_url: str = field(metadata=rule(_https_url))


@dataclass(frozen=True)
class TrafficSwitch:
    region: str = field(metadata=rule(aws_names.region))
    bucket: str = field(metadata=rule(aws_names.s3_bucket_name))
    key: str = field(metadata=rule(aws_names.s3_key))
    health_check_id: str = field(metadata=rule(aws_names.route53_health_check_id))
    primary_health_check_id: str = field(metadata=rule(aws_names.route53_health_check_id))
    primary_value: str = field(default=PRIMARY_VALUE, metadata=rule(_switch_value))
    failover_value: str = field(default=FAILOVER_VALUE, metadata=rule(_switch_value))


@dataclass(frozen=True)
class Inventory:
    version: int = field(metadata=rule(_in_range(INVENTORY_VERSION, INVENTORY_VERSION,
                                                 "the schema version this tool reads")))
    project: str = field(metadata=rule(_project))
    stack: str = field(metadata=rule(_stack_name))
    objectives: Objectives
    primary: SiteInventory
    standby: SiteInventory
    dns: DnsInventory
    traffic_switch: TrafficSwitch
    alert_topic_arn: str = field(metadata=rule(_printable(1011)))   # checked against standby
    backup_bucket: str = field(metadata=rule(aws_names.s3_bucket_name))
    lock_parameter: str = field(metadata=rule(aws_names.ssm_parameter_name))
    journal_parameter: str = field(metadata=rule(aws_names.ssm_parameter_name))
    webhook_url: str | None = field(default=None, metadata=rule(_webhook_url))
    active_site: str = field(default="primary", metadata=rule(_site))
    primary_backup_bucket: str | None = field(default=None,
                                              metadata=rule(aws_names.s3_bucket_name))

    def to_json(self) -> str:
        return json.dumps(_camelize(asdict(self)), indent=2, sort_keys=True)

    def problems(self, path: str) -> Iterator[Problem]:
        """Rules between fields (each field's own rule has passed)."""
        primary, standby, switch = self.primary, self.standby, self.traffic_switch
        yield from primary.problems("primary")
        yield from standby.problems("standby")
        if primary.region == standby.region:
            yield ("standby.region", standby.region, "must differ from primary.region: both "
                   "sites in one region do not survive a regional outage")
        if switch.region != standby.region:
            yield ("trafficSwitch.region", switch.region, f"must be the standby region "
                   f"({standby.region}): the switch is flipped while the primary is down")
        found = aws_names.sns_topic_arn(self.alert_topic_arn, in_region=standby.region)
        if found:
            yield "alertTopicArn", self.alert_topic_arn, found
        if self.dns.primary_set_identifier == self.dns.secondary_set_identifier:
            yield ("dns.secondarySetIdentifier", self.dns.secondary_set_identifier,
                   "failover records with the same name need distinct set identifiers")
        host = urlsplit(self.dns.public_health_url).hostname or ""
        if host.rstrip(".").lower() != self.dns.record_name.rstrip(".").lower():
            yield ("dns.publicHealthUrl", self.dns.public_health_url, f"must be on the failover "
                   f"record {self.dns.record_name}: verification must see what users see")
        if switch.primary_value == switch.failover_value:
            yield ("trafficSwitch.failoverValue", switch.failover_value,
                   "must differ from primaryValue")
        checks = {"primary.healthCheckId": primary.health_check_id,
                  "standby.healthCheckId": standby.health_check_id,
                  "trafficSwitch.healthCheckId": switch.health_check_id,
                  "trafficSwitch.primaryHealthCheckId": switch.primary_health_check_id}
        yield from _same_value(checks, "is the same health check as")
        parameters = {"lockParameter": self.lock_parameter,
                      "journalParameter": self.journal_parameter,
                      "primary.database.endpointParameter": primary.database.endpoint_parameter,
                      "standby.database.endpointParameter": standby.database.endpoint_parameter}
        yield from _same_value(parameters, "is the same SSM parameter as")


def _same_value(named: dict[str, str], sentence: str) -> Iterator[Problem]:
    seen: dict[str, str] = {}
    for where, value in named.items():
        if value in seen:
            yield where, value, f"{sentence} {seen[value]}"
        seen.setdefault(value, where)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _camelize(value: Any) -> Any:
    if isinstance(value, dict):
        return {_camel(k): _camelize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_camelize(v) for v in value]
    return value


def _invalid(where: str, value: object, allowed: str) -> InventoryError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return InventoryError(f"inventory field {where} = {shown} is invalid: {allowed}")


def _build(cls: type[T], data: object, path: str) -> T:
    if not isinstance(data, dict):
        raise InventoryError(f"inventory field {path or '(root)'} must be an object")
    hints = get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    known = set()
    for f in fields(cls):  # type: ignore[arg-type]
        key = _camel(f.name)
        known.add(key)
        where = f"{path}.{key}" if path else key
        if key not in data:
            if f.default is not MISSING:
                continue
            raise InventoryError(f"inventory field {where} is missing")
        value = _convert(hints[f.name], data[key], where, f.metadata.get("each"))
        check = f.metadata.get("rule")
        if check is not None and value is not None:
            problem = check(value)
            if problem:
                raise _invalid(where, data[key], problem)
        kwargs[f.name] = value
    extra = sorted(set(data) - known)
    if extra:
        where = f"{path}.{extra[0]}" if path else extra[0]
        raise InventoryError(f"inventory field {where} is not part of schema version "
                             f"{INVENTORY_VERSION}")
    return cls(**kwargs)


def _convert(hint: Any, value: object, where: str, each: Rule | None = None) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, where, each)
    if origin is tuple:
        if not isinstance(value, list):
            raise InventoryError(f"inventory field {where} must be a list")
        (item_type, _ellipsis) = typing.get_args(hint)
        items = []
        for i, item in enumerate(value):
            converted = _convert(item_type, item, f"{where}[{i}]")
            problem = each(converted) if each is not None else None
            if problem:
                raise _invalid(f"{where}[{i}]", item, problem)
            items.append(converted)
        return tuple(items)
    if is_dataclass(hint):
        return _build(hint, value, where)  # type: ignore[arg-type]
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InventoryError(f"inventory field {where} must be a whole number, got "
                                 f"{value!r}")
        return value
    if hint is str:
        if not isinstance(value, str) or not value.strip():
            raise InventoryError(f"inventory field {where} must be a non-empty string, "
                                 f"got {value!r}")
        return value
    raise InventoryError(f"inventory field {where}: unsupported type {hint!r}")  # pragma: no cover


def unruled_fields(cls: type[Any] = Inventory, path: str = "") -> list[str]:
    """Fields without a rule (a schema dataclass of this module counts as ruled through its own
    fields). Empty for a complete schema; a test keeps it so."""
    hints = get_type_hints(cls)
    missing: list[str] = []
    for f in fields(cls):
        where = f"{path}.{_camel(f.name)}" if path else _camel(f.name)
        hint = hints[f.name]
        if is_dataclass(hint) and getattr(hint, "__module__", "") == __name__:
            missing += unruled_fields(hint, where)  # type: ignore[arg-type]
        elif f.metadata.get("rule") is None:
            missing.append(where)
    return missing


def _load_json(text: str) -> object:
    """``json.loads`` that refuses what Python's json accepts but JSON does not mean: a key twice
    in one object (the last would silently win), NaN and Infinity."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, value in items:
            if key in found:
                raise InventoryError(f"inventory has the key {key!r} twice in one object: "
                                     "which one is meant cannot be told")
            found[key] = value
        return found

    def constant(name: str) -> object:
        raise InventoryError(f"inventory contains {name}, which is not a JSON number")

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise InventoryError(f"inventory is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise InventoryError("inventory is nested too deeply to be an inventory") from exc


def parse_inventory(text: str) -> Inventory:
    """Parse and validate an inventory document; every problem names the field, the value and
    what is allowed (:class:`InventoryError`)."""
    size = len(text.encode("utf-8", errors="replace"))
    if size > MAX_INVENTORY_BYTES:
        raise InventoryError(f"inventory is {size} bytes; an inventory is at most "
                             f"{MAX_INVENTORY_BYTES} (SSM holds 8 KB)")
    data = _load_json(text)
    if not isinstance(data, dict):
        raise InventoryError("inventory must be a JSON object")
    version = data.get("version")
    if type(version) is not int or version != INVENTORY_VERSION:
        raise InventoryError(f"inventory version {version!r} is not supported "
                             f"(this tool reads version {INVENTORY_VERSION})")
    inventory = _build(Inventory, data, "")
    for where, value, allowed in inventory.problems(""):
        raise _invalid(where, value, allowed)
    return inventory
