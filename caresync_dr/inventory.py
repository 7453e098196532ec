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
      "webhookUrl": null | "https://...",
      "backupBucket": "<standby backup bucket, for incident timelines>",
      "lockParameter": "/caresync-dr/failover/lock",       # SSM, standby region
      "journalParameter": "/caresync-dr/failover/journal", # SSM, standby region
      "activeSite": "primary"              # which site's database writes (the stacks'
                                           # activeSite); "standby" once a failover is reconciled
    }

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

``activeSite`` and ``database.generation`` were added to version 1 with defaults (``"primary"``,
``1``): documents written before them still parse.

The traffic switch is an object in a standby-region S3 bucket. Route 53 probes it with an
inverted string-match health check, so writing ``failoverValue`` into it (an S3 data-plane call
in the standby region) marks the PRIMARY record unhealthy without any Route 53 API call; see
README.md, "Why the traffic switch is an S3 object".
"""

from __future__ import annotations

import json
import re
import types
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from typing import Any, TypeVar, get_type_hints

# One capacity type for settings and inventory: the inventory records what the settings said.
from caresync_dr.settings import Capacity

INVENTORY_VERSION = 1
PRIMARY_VALUE = "PRIMARY"
FAILOVER_VALUE = "FAILOVER"

T = TypeVar("T")


class InventoryError(ValueError):
    """The inventory document is missing, malformed or of an unsupported version."""


@dataclass(frozen=True)
class DatabaseInventory:
    identifier: str
    arn: str
    security_group_id: str
    backup_retention_days: int
    replica_identifiers: tuple[str, ...]
    endpoint_parameter: str
    generation: int = 1


@dataclass(frozen=True)
class AppInventory:
    auto_scaling_group_name: str
    launch_template_id: str
    target_group_arn: str
    load_balancer_dns: str
    capacity: Capacity
    production_capacity: Capacity


@dataclass(frozen=True)
class SiteInventory:
    region: str
    database: DatabaseInventory
    app: AppInventory
    health_check_id: str


@dataclass(frozen=True)
class Objectives:
    rto_minutes: int
    rpo_minutes: int


@dataclass(frozen=True)
class DnsInventory:
    hosted_zone_id: str
    record_name: str
    primary_set_identifier: str
    secondary_set_identifier: str
    public_health_url: str


@dataclass(frozen=True)
class TrafficSwitch:
    region: str
    bucket: str
    key: str
    health_check_id: str
    primary_health_check_id: str
    primary_value: str = PRIMARY_VALUE
    failover_value: str = FAILOVER_VALUE


@dataclass(frozen=True)
class Inventory:
    version: int
    project: str
    stack: str
    objectives: Objectives
    primary: SiteInventory
    standby: SiteInventory
    dns: DnsInventory
    traffic_switch: TrafficSwitch
    alert_topic_arn: str
    backup_bucket: str
    lock_parameter: str
    journal_parameter: str
    webhook_url: str | None = field(default=None)
    active_site: str = "primary"

    def to_json(self) -> str:
        return json.dumps(_camelize(asdict(self)), indent=2, sort_keys=True)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _camelize(value: Any) -> Any:
    if isinstance(value, dict):
        return {_camel(k): _camelize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_camelize(v) for v in value]
    return value


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
        kwargs[f.name] = _convert(hints[f.name], data[key], where)
    extra = sorted(set(data) - known)
    if extra:
        raise InventoryError(f"inventory field {path}.{extra[0]} is not part of schema "
                             f"version {INVENTORY_VERSION}".replace(" .", " "))
    return cls(**kwargs)


def _convert(hint: Any, value: object, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _convert(args[0], value, where)
    if origin is tuple:
        if not isinstance(value, list):
            raise InventoryError(f"inventory field {where} must be a list")
        (item_type, _ellipsis) = typing.get_args(hint)
        return tuple(_convert(item_type, v, f"{where}[{i}]") for i, v in enumerate(value))
    if is_dataclass(hint):
        return _build(hint, value, where)  # type: ignore[arg-type]
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InventoryError(f"inventory field {where} must be a non-negative integer, "
                                 f"got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str) or not value.strip():
            raise InventoryError(f"inventory field {where} must be a non-empty string, "
                                 f"got {value!r}")
        return value
    raise InventoryError(f"inventory field {where}: unsupported type {hint!r}")  # pragma: no cover


_REGION_RE = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")


def parse_inventory(text: str) -> Inventory:
    """Parse and validate an inventory document; every problem names the field."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InventoryError(f"inventory is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InventoryError("inventory must be a JSON object")
    version = data.get("version")
    if version != INVENTORY_VERSION:
        raise InventoryError(f"inventory version {version!r} is not supported "
                             f"(this tool reads version {INVENTORY_VERSION})")
    inventory = _build(Inventory, data, "")
    for where, region in (("primary.region", inventory.primary.region),
                          ("standby.region", inventory.standby.region),
                          ("trafficSwitch.region", inventory.traffic_switch.region)):
        if not _REGION_RE.match(region):
            raise InventoryError(f"inventory field {where} is not an AWS region: {region!r}")
    if inventory.active_site not in ("primary", "standby"):
        raise InventoryError("inventory field activeSite must be primary or standby, got "
                             f"{inventory.active_site!r}")
    for name, site in (("primary", inventory.primary), ("standby", inventory.standby)):
        if site.database.generation < 1:
            raise InventoryError(f"inventory field {name}.database.generation must be at "
                                 f"least 1, got {site.database.generation}")
    if inventory.primary.region == inventory.standby.region:
        raise InventoryError("inventory primary.region and standby.region are the same "
                             f"({inventory.primary.region})")
    if inventory.traffic_switch.region != inventory.standby.region:
        raise InventoryError("inventory trafficSwitch.region must be the standby region "
                             f"({inventory.standby.region}), got "
                             f"{inventory.traffic_switch.region}")
    checked = (("primary.app.productionCapacity", inventory.primary.app.production_capacity),
               ("standby.app.productionCapacity", inventory.standby.app.production_capacity),
               ("standby.app.capacity", inventory.standby.app.capacity))
    for where, cap in checked:
        if not cap.min <= cap.desired <= cap.max:
            raise InventoryError(f"inventory field {where} must satisfy min <= desired <= max")
    return inventory
