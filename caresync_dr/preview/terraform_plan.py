"""A program run exported as a Terraform plan (``terraform show -json`` of a plan that creates
every resource), so scanners written for Terraform plans (Checkov) judge the Pulumi program.

The plan is built from the same offline run as the preview (:mod:`caresync_dr.offline.runtime`):

* ``planned_values`` and ``resource_changes``: one managed resource per custom resource, named
  by its Pulumi logical name (``aws_db_instance.primary-database-instance``), its values the
  inputs the program gave, in Terraform's names and shapes (:mod:`terraform_names`); every
  change is a ``create``, as for a stack deployed for the first time.
* ``configuration``: the expressions, with ``references`` where a value came from another
  resource. The engine records, per input property, the resources its value was computed from
  (``propertyDependencies``); the reference is placed on the leaf whose value is the other
  resource's id, ARN or name (``bucket`` of a versioning resource -> ``aws_s3_bucket.x.id``),
  or on the property itself when the value was derived (a policy document). That is what graph
  checks follow to see which bucket a versioning, encryption or policy resource belongs to.

Provider defaults are not filled in: a property the program leaves unset is absent, as in the
HCL Checkov was written for. Component resources, providers and stack references are not
Terraform resources and are left out; a custom resource type without a Terraform name is
reported in :attr:`PlanExport.unmapped_types`, never dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pulumi.output

from caresync_dr.preview.terraform_names import (
    FieldMap,
    UnmappedTypeError,
    block_fields,
    resource_fields,
    snake,
    terraform_type,
)

FORMAT_VERSION = "1.2"
TERRAFORM_VERSION = "1.9.8"  # the plan format this export follows (terraform show -json)
PROVIDER_SOURCES = {"aws": "registry.terraform.io/hashicorp/aws",
                    "random": "registry.terraform.io/hashicorp/random"}
# Shorter identities (a port, "true") would match unrelated values.
MIN_IDENTITY_LENGTH = 8


class ResourceLike(Protocol):
    """What ``caresync_dr.offline.runtime.RegisteredResource`` provides."""

    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def custom(self) -> bool: ...
    @property
    def urn(self) -> str: ...
    @property
    def inputs(self) -> Mapping[str, Any]: ...
    @property
    def outputs(self) -> Mapping[str, Any]: ...
    @property
    def resource_id(self) -> str: ...
    @property
    def property_dependencies(self) -> Mapping[str, Sequence[str]]: ...
    @property
    def dependencies(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class PlanExport:
    plan: dict[str, Any]
    addresses: dict[str, str]  # Pulumi URN -> Terraform address, for every exported resource
    unmapped_types: tuple[str, ...]  # custom resource types left out (no Terraform name)
    unmapped_properties: tuple[str, ...]  # "address: property" kept under a guessed name


def plain(value: Any) -> Any:
    """JSON values as Terraform writes them: whole numbers as ints (the mocks send floats)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items() if not is_unknown(v)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value if not is_unknown(v)]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def terraform_name(logical: str) -> str:
    """A Pulumi logical name as a Terraform resource name (letters, digits, ``_``, ``-``)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", logical)
    return name if re.match(r"[A-Za-z_]", name) else f"r_{name}"


def is_unknown(value: Any) -> bool:
    """A value ``pulumi preview`` does not know yet (a new resource's ARN)."""
    return isinstance(value, pulumi.output.Unknown)


def convert(fields: FieldMap, props: Mapping[str, Any], where: str,
            unmapped: list[str], unknown: set[str] | None = None) -> dict[str, Any]:
    """Pulumi inputs (camelCase) -> Terraform values (snake_case, blocks as lists).

    A value not known yet is left out, as Terraform leaves it out of a plan's values; its
    top-level Terraform name is added to ``unknown`` (the plan's ``after_unknown``).
    """
    out: dict[str, Any] = {}
    for key, value in props.items():
        field = fields.fields.get(key)
        if is_unknown(value):
            if unknown is not None:
                unknown.add(field.terraform_name if field is not None else snake(key))
            continue
        if field is None:
            name = snake(key)
            unmapped.append(f"{where}{name}")
            out[name] = plain(value)
            continue
        if field.terraform_name in fields.unmapped:
            unmapped.append(f"{where}{field.terraform_name}")
        inner = f"{where}{field.terraform_name}."
        if field.kind == "block" and field.block is not None and isinstance(value, Mapping):
            out[field.terraform_name] = [convert(block_fields(field.block), value, inner,
                                                 unmapped)]
        elif field.kind == "blocks" and field.block is not None and isinstance(value, list):
            out[field.terraform_name] = [
                convert(block_fields(field.block), item, inner, unmapped)
                if isinstance(item, Mapping) else plain(item) for item in value]
        else:
            out[field.terraform_name] = plain(value)
    return out


@dataclass(frozen=True)
class _Target:
    address: str
    identities: dict[str, str]  # value (id, ARN, name) -> the attribute that holds it


def _identities(resource: ResourceLike) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in resource.outputs.items():
        if isinstance(value, str) and len(value) >= MIN_IDENTITY_LENGTH and key in (
                "arn", "name", "bucket", "keyId", "identifier", "address", "endpoint",
                "dnsName", "arnSuffix"):
            found.setdefault(value, snake(key))
    if len(resource.resource_id) >= MIN_IDENTITY_LENGTH:
        found[resource.resource_id] = "id"
    return found


def _leaf_expression(value: Any, targets: Sequence[_Target], used: set[str]) -> dict[str, Any]:
    texts = ([value] if isinstance(value, str) else
             [v for v in value if isinstance(v, str)] if isinstance(value, list) else
             [v for v in value.values() if isinstance(v, str)] if isinstance(value, Mapping)
             else [])
    references: list[str] = []
    for target in targets:
        for identity, attribute in target.identities.items():
            if any(text == identity or identity in text for text in texts):
                references += [f"{target.address}.{attribute}", target.address]
                used.add(target.address)
                break
    if references:
        return {"references": references}
    return {"constant_value": value}


def _expressions(values: Mapping[str, Any], blocks: set[str], targets: Sequence[_Target],
                 used: set[str]) -> dict[str, Any]:
    expressions: dict[str, Any] = {}
    for key, value in values.items():
        if key in blocks and isinstance(value, list) and all(
                isinstance(v, Mapping) for v in value):
            nested = {k for v in value for k, inner in v.items()
                      if isinstance(inner, list) and inner and all(
                          isinstance(i, Mapping) for i in inner)}
            expressions[key] = [_expressions(v, nested, targets, used) for v in value]
        else:
            expressions[key] = _leaf_expression(value, targets, used)
    return expressions


def _configuration(resource: ResourceLike, address: str, values: dict[str, Any], *,
                   fields: FieldMap, addresses: Mapping[str, str],
                   by_urn: Mapping[str, ResourceLike], unknown: set[str]) -> dict[str, Any]:
    blocks = {f.terraform_name for f in fields.fields.values() if f.kind in ("block", "blocks")}
    expressions: dict[str, Any] = {}
    for pulumi_key, field in fields.fields.items():
        key = field.terraform_name
        urns = resource.property_dependencies.get(pulumi_key, ())
        targets = [_Target(addresses[u], _identities(by_urn[u])) for u in urns if u in addresses]
        if key in unknown and targets:  # known after apply: the reference is all there is
            expressions[key] = {"references": [
                ref for t in targets for ref in (f"{t.address}.id", t.address)]}
            continue
        if key not in values:
            continue
        used: set[str] = set()
        expressions.update(_expressions({key: values[key]}, blocks, targets, used))
        missed = [t.address for t in targets if t.address not in used]
        entry = expressions[key]
        if missed and isinstance(entry, dict):
            # A value derived from the other resource (e.g. a JSON document built from its
            # ARN): the property as a whole refers to it. Blocks keep it in depends_on.
            entry.pop("constant_value", None)
            entry["references"] = [*entry.get("references", []), *missed]
    for key, value in values.items():
        expressions.setdefault(key, {"constant_value": value})
    config: dict[str, Any] = {
        "address": address, "mode": "managed", "type": address.split(".", 1)[0],
        "name": address.split(".", 1)[1], "provider_config_key": resource.type.split(":")[0],
        "expressions": expressions, "schema_version": 0}
    depends_on = sorted({addresses[u] for u in resource.dependencies
                         if u in addresses and addresses[u] != address})
    if depends_on:
        config["depends_on"] = depends_on
    return config


def export(resources: Iterable[ResourceLike], region: str) -> PlanExport:
    """The plan of a stack whose resources are ``resources`` (one program run)."""
    exported: list[tuple[ResourceLike, str, FieldMap]] = []
    unmapped_types: set[str] = set()
    addresses: dict[str, str] = {}
    for resource in resources:
        if not resource.custom or resource.type.startswith("pulumi:"):
            continue
        try:
            kind = terraform_type(resource.type)
            fields = resource_fields(resource.type)
        except UnmappedTypeError:
            unmapped_types.add(resource.type)
            continue
        address = f"{kind}.{terraform_name(resource.name)}"
        if address in addresses.values():
            raise ValueError(f"two resources export as {address}")
        addresses[resource.urn] = address
        exported.append((resource, address, fields))

    by_urn = {r.urn: r for r, _, _ in exported}
    planned: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    configuration: list[dict[str, Any]] = []
    unmapped: list[str] = []
    providers: set[str] = set()
    for resource, address, fields in sorted(exported, key=lambda e: e[1]):
        kind, name = address.split(".", 1)
        provider = resource.type.split(":")[0]
        providers.add(provider)
        unknown: set[str] = set()
        values = convert(fields, resource.inputs, f"{address}: ", unmapped, unknown)
        common = {"address": address, "mode": "managed", "type": kind, "name": name,
                  "provider_name": PROVIDER_SOURCES.get(provider, provider)}
        planned.append({**common, "schema_version": 0, "values": values,
                        "sensitive_values": {}})
        changes.append({**common, "change": {
            "actions": ["create"], "before": None, "after": values,
            "after_unknown": dict.fromkeys(sorted(unknown), True),
            "before_sensitive": False, "after_sensitive": {}}})
        configuration.append(_configuration(resource, address, values, fields=fields,
                                            addresses=addresses, by_urn=by_urn,
                                            unknown=unknown))
    provider_config = {
        p: {"name": p, "full_name": PROVIDER_SOURCES.get(p, p),
            **({"expressions": {"region": {"constant_value": region}}} if p == "aws" else {})}
        for p in sorted(providers)}
    plan = {
        "format_version": FORMAT_VERSION, "terraform_version": TERRAFORM_VERSION,
        "planned_values": {"root_module": {"resources": planned}},
        "resource_changes": changes,
        "configuration": {"provider_config": provider_config,
                          "root_module": {"resources": configuration}},
    }
    return PlanExport(plan=plan, addresses=addresses,
                      unmapped_types=tuple(sorted(unmapped_types)),
                      unmapped_properties=tuple(unmapped))
