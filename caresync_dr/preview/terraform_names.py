"""Pulumi names to Terraform names, for exporting a program run as a Terraform plan.

pulumi-aws is bridged from the Terraform AWS provider, so every resource and property has a
Terraform name; the mapping is the provider's, not ours:

* **Resource types** (``aws:rds/instance:Instance`` -> ``aws_db_instance``): the bridge's own
  table (``renames.resources`` of pulumi-aws's ``bridge-metadata.json``), of which
  ``terraform_types.json`` holds the types this program uses, with its source. The provider
  binary that embeds the full table is not installed here (no Pulumi plugins offline).
* **Properties**: the installed ``pulumi_aws`` SDK, generated from the bridged schema. Each
  input class names its properties (``@pulumi.getter(name="allocatedStorage")`` on Python's
  ``allocated_storage``, the Terraform name) and types them: a ``...Args`` class is a Terraform
  block (a one-element list in a plan when the provider flattened it, ``MaxItems: 1``), a
  sequence of them a repeated block, whose Terraform name is the singular the bridge built the
  type's name from (``ListenerDefaultActionArgs`` -> ``default_action``, while the property is
  the pluralised ``defaultActions``); a mapping is a map (``tags``).

What the SDK cannot tell is reported, never guessed silently: a type missing from
``terraform_types.json`` is an :class:`UnmappedType`; a property the SDK does not declare, or a
repeated block whose type name does not start with its owner's, keeps the snake_case of its
Pulumi name and is listed in :attr:`FieldMap.unmapped` (the exporter reports every one). A
plural list of plain values whose Terraform name is singular (``vpc_zone_identifier`` of an
Auto Scaling group, exported as ``vpc_zone_identifiers``) cannot be told apart from an
already-plural name (``security_groups``) without the full bridge metadata; no check this
project's scan relies on reads such an attribute (docs/checkov.md).
"""

from __future__ import annotations

import collections.abc
import functools
import importlib
import json
import re
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pulumi import _types

TYPES_FILE = Path(__file__).with_name("terraform_types.json")
# Pulumi package -> its Python SDK (the first part of a type token).
SDK_PACKAGES = {"aws": "pulumi_aws", "random": "pulumi_random"}

Kind = Literal["scalar", "list", "map", "block", "blocks"]


class UnmappedTypeError(LookupError):
    """A resource type whose Terraform name is not known; the message names it."""


@functools.cache
def terraform_types() -> dict[str, str]:
    """Pulumi type token -> Terraform resource type (``terraform_types.json``)."""
    document = json.loads(TYPES_FILE.read_text())
    resources: dict[str, str] = document["resources"]
    return resources


def terraform_type(token: str) -> str:
    """``aws:rds/instance:Instance`` -> ``aws_db_instance``; raises :class:`UnmappedTypeError`."""
    try:
        return terraform_types()[token]
    except KeyError:
        raise UnmappedTypeError(
            f"no Terraform type is known for {token}: add it to {TYPES_FILE.name} from "
            "pulumi-aws's bridge-metadata.json (renames.resources)") from None


def snake(name: str) -> str:
    """camelCase -> snake_case (``ipv6CidrBlocks`` -> ``ipv6_cidr_blocks``)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


@dataclass(frozen=True)
class Field:
    """One property: its Terraform name, its shape, and for blocks the SDK class of the block."""

    terraform_name: str
    kind: Kind
    block: type | None = None


@dataclass(frozen=True)
class FieldMap:
    """The properties of a resource or block, by Pulumi name."""

    owner: str  # the type name nested block types are prefixed with (``LaunchTemplate``)
    fields: dict[str, Field]
    unmapped: tuple[str, ...] = ()  # properties the SDK could not map (their Terraform names)


def _package(token: str) -> types.ModuleType:
    package, module_path, _ = token.split(":", 2)
    sdk = SDK_PACKAGES.get(package)
    if sdk is None:
        raise UnmappedTypeError(f"{token}: no Python SDK is known for package {package!r}")
    module = module_path.split("/", 1)[0]
    try:
        return importlib.import_module(sdk if module == "index" else f"{sdk}.{module}")
    except ImportError as exc:
        raise UnmappedTypeError(f"{token}: its SDK module cannot be imported ({exc})") from exc


def _is_output_ref(arg: Any) -> bool:
    return isinstance(arg, typing.ForwardRef) and arg.__forward_arg__.startswith("Output")


def _core(annotation: Any) -> Any:
    """The value type of an SDK annotation: ``Input[T]`` / ``Optional[...]`` unwrapped."""
    while typing.get_origin(annotation) is typing.Union:
        candidates = [a for a in typing.get_args(annotation)
                      if a is not type(None) and not _is_output_ref(a)
                      and typing.get_origin(a) is not collections.abc.Awaitable]
        if not candidates:
            return None
        annotation = candidates[0]
    return annotation


def _shape(annotation: Any) -> tuple[Kind, str | None]:
    core = _core(annotation)
    origin = typing.get_origin(core)
    if origin in (collections.abc.Sequence, list):
        element = _core(typing.get_args(core)[0])
        if isinstance(element, typing.ForwardRef):
            return "blocks", element.__forward_arg__
        return "list", None
    if origin in (collections.abc.Mapping, dict):
        return "map", None
    if isinstance(core, typing.ForwardRef):
        return "block", core.__forward_arg__
    return "scalar", None


def _args_fields(cls: type, owner: str) -> FieldMap:
    # Block types are resolved where the annotation's forward reference is: the class's own
    # module (names differ by module: s3's _inputs also has a BucketServerSideEncryption...
    # ConfigurationArgs, the legacy inline block, not the resource's arguments).
    namespace = vars(sys.modules[cls.__module__])
    fields: dict[str, Field] = {}
    unmapped: list[str] = []
    for python_name, member in vars(cls).items():
        getter = getattr(member, "fget", None)
        pulumi_name = getattr(getter, "_pulumi_name", None)
        if pulumi_name is None:
            continue
        kind, block_name = _shape(getter.__annotations__.get("return"))
        terraform = python_name.rstrip("_")
        block: type | None = None
        if block_name is not None:
            found = namespace.get(block_name)
            block = found if isinstance(found, type) and _types.is_input_type(found) else None
            if block is None:  # an enum or an unknown name: plain values
                kind, block_name = ("list" if kind == "blocks" else "scalar"), None
        if kind == "blocks" and block_name is not None:
            # The bridge names a block's type after the Terraform block: <Owner><Block>Args.
            bare = block_name.removesuffix("Args")
            if bare.startswith(owner) and len(bare) > len(owner):
                terraform = snake(bare[len(owner):])
            else:
                unmapped.append(terraform)
        fields[pulumi_name] = Field(terraform, kind, block)
    return FieldMap(owner=owner, fields=fields, unmapped=tuple(unmapped))


@functools.cache
def resource_fields(token: str) -> FieldMap:
    """The input properties of a resource type (``aws:lb/listener:Listener``)."""
    name = token.rsplit(":", 1)[1]
    resource = getattr(_package(token), name, None)
    # The private state class: every property, and a name no other module shadows (some
    # resource modules' ``<Name>Args`` is overwritten by a same-named block type of _inputs).
    state = (vars(sys.modules[resource.__module__]).get(f"_{name}State")
             if isinstance(resource, type) else None)
    if not isinstance(state, type):
        raise UnmappedTypeError(f"{token}: the SDK has no _{name}State class")
    return _args_fields(state, name)


@functools.cache
def block_fields(block: type) -> FieldMap:
    """The properties of a nested block's ``...Args`` class."""
    return _args_fields(block, block.__name__.removesuffix("Args"))
