"""The rules oracle's vocabulary: a rule, a violation, and a read-only view of one program run.

Pulumi's mocks accept any argument, so an offline run cannot see that AWS would refuse it. A
:class:`Rule` encodes one documented AWS (or provider) constraint: the resource types it
applies to, a check returning the problems it finds (plain sentences), and its source (the
documentation page, API error, provider docstring or issue the rule comes from).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class ResourceLike(Protocol):
    """What ``caresync_dr.offline.runtime.RegisteredResource`` provides."""

    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def custom(self) -> bool: ...
    @property
    def inputs(self) -> Mapping[str, Any]: ...
    @property
    def outputs(self) -> Mapping[str, Any]: ...
    @property
    def resource_id(self) -> str: ...
    @property
    def urn(self) -> str: ...
    @property
    def dependencies(self) -> tuple[str, ...]: ...
    @property
    def delete_before_replace(self) -> bool: ...


@dataclass(frozen=True)
class RunView:
    """One program run as the rules see it: its resources, config and outputs."""

    stack: str
    region: str  # the stack's aws:region (a resource's ``region`` input overrides it)
    resources: Sequence[ResourceLike]
    config: Mapping[str, str] = field(default_factory=dict)  # without the project prefix
    outputs: Mapping[str, Any] = field(default_factory=dict)

    def of_type(self, *types: str) -> list[ResourceLike]:
        return [r for r in self.resources if r.type in types]

    def region_of(self, resource: ResourceLike) -> str:
        return str(resource.inputs.get("region") or resource.outputs.get("region")
                   or self.region)

    def with_output(self, type_: str, key: str, value: Any) -> ResourceLike | None:
        """The resource of ``type_`` whose output ``key`` equals ``value`` (ids, ARNs...)."""
        for resource in self.of_type(type_):
            if value is not None and (resource.outputs.get(key) == value
                                      or (key == "id" and resource.resource_id == value)):
                return resource
        return None

    def depends_on(self, resource: ResourceLike, other: ResourceLike) -> bool:
        return other.urn in resource.dependencies


Check = Callable[[ResourceLike, RunView], list[str]]


@dataclass(frozen=True)
class Rule:
    """One AWS constraint: ``check`` returns the problems of one resource (empty: none)."""

    name: str
    summary: str
    source: str
    types: tuple[str, ...]
    check: Check = field(repr=False, compare=False)


@dataclass(frozen=True)
class Violation:
    rule: Rule
    urn: str
    problem: str

    def __str__(self) -> str:
        return f"{self.rule.name}: {self.urn}: {self.problem} (source: {self.rule.source})"


class AwsRulesError(Exception):
    """The program registers resources AWS would refuse; the message lists every violation."""

    def __init__(self, stack: str, violations: Sequence[Violation]) -> None:
        self.stack = stack
        self.violations = list(violations)
        lines = "\n".join(f"  {v}" for v in violations)
        super().__init__(f"stack {stack}: {len(violations)} AWS rule violation(s):\n{lines}")


def check_resources(view: RunView, rules: Iterable[Rule]) -> list[Violation]:
    """Every violation of ``rules`` in the run, in registration order."""
    found: list[Violation] = []
    for rule in rules:
        for resource in view.of_type(*rule.types):
            for problem in rule.check(resource, view):
                found.append(Violation(rule, resource.urn or f"{resource.type}::{resource.name}",
                                       problem))
    return found


# --- helpers the rule modules share -----------------------------------------------------------

def arn_region(value: Any) -> str | None:
    parts = str(value or "").split(":")
    return parts[3] if len(parts) > 5 and parts[0] == "arn" and parts[3] else None


def arn_resource_name(value: Any) -> str:
    """The last ``:``-separated part: an RDS ARN's identifier, or the value itself."""
    return str(value or "").rsplit(":", 1)[-1]


def first(value: Any) -> Mapping[str, Any]:
    """A nested block the mocks give as a one-element list or as an object."""
    if isinstance(value, list):
        return value[0] if value and isinstance(value[0], Mapping) else {}
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def policy_statements(document: Any) -> list[Mapping[str, Any]]:
    """The statements of an IAM/KMS/S3 policy given as JSON text or as an object."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            return []
    if not isinstance(document, Mapping):
        return []
    return [s for s in as_list(document.get("Statement")) if isinstance(s, Mapping)]


def principals(statement: Mapping[str, Any], kind: str) -> list[str]:
    raw = statement.get("Principal")
    if raw == "*":
        return ["*"]
    if isinstance(raw, Mapping):
        return [str(p) for p in as_list(raw.get(kind))]
    return []


def actions(statement: Mapping[str, Any]) -> list[str]:
    return [str(a) for a in as_list(statement.get("Action"))]


def allows(statement: Mapping[str, Any], action: str) -> bool:
    """Whether an Allow statement grants ``action`` (IAM wildcards ``*`` and ``prefix*``)."""
    if statement.get("Effect") != "Allow":
        return False
    for granted in actions(statement):
        if granted in ("*", action) or (granted.endswith("*")
                                         and action.startswith(granted[:-1])):
            return True
    return False


def number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None
