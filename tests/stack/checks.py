"""Assertion helpers in the style of pulumi's testing-unit-py: failures name the resource."""

from __future__ import annotations

import json
from collections.abc import Iterable
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
