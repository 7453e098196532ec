"""Assertion helpers in the style of pulumi's testing-unit-py: failures name the resource."""

from __future__ import annotations

import json
from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

from caresync_dr.offline.runtime import ProgramRun, RegisteredResource, of_type


def where(resource: RegisteredResource) -> str:
    return resource.urn or f"{resource.type}::{resource.name}"


def check(resource: RegisteredResource, condition: bool, problem: str) -> None:
    assert condition, f"{where(resource)}: {problem}"


def one(run: ProgramRun, type_: str, name: str) -> RegisteredResource:
    found = [r for r in run.resources if r.type == type_ and r.name == name]
    assert len(found) == 1, (f"stack {run.stack}: expected one {type_} named {name!r}, found "
                             f"{sorted(r.name for r in of_type(run.resources, type_))}")
    return found[0]


def attached(run: ProgramRun, type_: str, bucket_id: str) -> list[RegisteredResource]:
    """Bucket sub-resources (versioning, SSE, ...) pointing at one bucket."""
    return [r for r in of_type(run.resources, type_) if r.inputs.get("bucket") == bucket_id]


def policy(resource: RegisteredResource, key: str = "policy") -> dict[str, Any]:
    raw = resource.inputs[key]
    document: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else raw
    return document


def listify(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def ids(resources: Iterable[RegisteredResource]) -> set[str]:
    return {r.resource_id for r in resources}


def allows(statements: Iterable[dict[str, object]], action: str, arn: str) -> bool:
    """Whether IAM would allow ``action`` on ``arn`` by these statements: an Allow whose Action
    and Resource patterns (``*``, ``?``) match and no matching Deny. Conditions are not
    evaluated (an Allow with one counts as allowing)."""
    def matches(statement: dict[str, object]) -> bool:
        return (any(fnmatchcase(action, a) for a in listify(statement["Action"]))
                and any(fnmatchcase(arn, r) for r in listify(statement["Resource"])))
    statements = list(statements)
    return (any(s["Effect"] == "Allow" and matches(s) for s in statements)
            and not any(s["Effect"] == "Deny" and matches(s) for s in statements))
