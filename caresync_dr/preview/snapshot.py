"""A deterministic, reviewable description of a program run, and the difference between two.

Resources are keyed ``<type>::<name>`` and sorted; properties are the inputs as the engine
receives them (camelCase), secrets shown as ``[secret]`` as ``pulumi preview`` shows them.
Nothing random enters: the mocks derive ids from names.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

SNAPSHOT_VERSION = 1
SECRET = "[secret]"
SSM_PARAMETER = "aws:ssm/parameter:Parameter"


class ResourceLike(Protocol):
    """A registered resource (``caresync_dr.offline.runtime.RegisteredResource``) or alike."""

    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def custom(self) -> bool: ...
    @property
    def inputs(self) -> Mapping[str, Any]: ...


def _normalise(value: Any) -> Any:
    """JSON-stable values: sorted keys; whole floats as ints (the mocks send numbers as floats)."""
    if isinstance(value, Mapping):
        return {str(k): _normalise(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [_normalise(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def build(stack: str, resources: Iterable[ResourceLike]) -> dict[str, Any]:
    entries: dict[str, Any] = {}
    for resource in resources:
        key = f"{resource.type}::{resource.name}"
        if key in entries:
            raise ValueError(f"two resources share type and name: {key}")
        secret = set(getattr(resource, "secret_inputs", ()))
        if resource.type == SSM_PARAMETER and resource.inputs.get("type") == "String":
            # pulumi-aws marks every parameter value secret; a String parameter holds none
            # (the endpoints, the inventory) and is exactly what a reviewer must see.
            secret.discard("value")
        shown = {k: SECRET if k in secret else v for k, v in dict(resource.inputs).items()}
        entries[key] = {"custom": resource.custom,
                        "properties": _normalise(shown) if resource.custom else {}}
    return {"version": SNAPSHOT_VERSION, "stack": stack,
            "resources": {key: entries[key] for key in sorted(entries)}}


def dumps(snapshot: Mapping[str, Any]) -> str:
    return json.dumps(snapshot, indent=2, sort_keys=True) + "\n"


def path_for(stack: str, directory: Path) -> Path:
    return directory / f"preview-{stack}.json"


def load(path: Path) -> dict[str, Any]:
    document = json.loads(path.read_text())
    if not isinstance(document, dict) or document.get("version") != SNAPSHOT_VERSION:
        raise ValueError(f"{path} is not a version-{SNAPSHOT_VERSION} preview snapshot")
    return document


def _changes(path: str, old: Any, new: Any) -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        lines: list[str] = []
        for key in sorted(set(old) | set(new)):
            sub = f"{path}.{key}" if path else key
            if key not in old:
                lines.append(f"{sub}: (unset) -> {json.dumps(new[key])}")
            elif key not in new:
                lines.append(f"{sub}: {json.dumps(old[key])} -> (unset)")
            else:
                lines += _changes(sub, old[key], new[key])
        return lines
    if old != new:
        return [f"{path}: {json.dumps(old)} -> {json.dumps(new)}"]
    return []


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Human lines: ``+`` created, ``-`` deleted, ``~`` changed (one line per property)."""
    before, after = old.get("resources", {}), new.get("resources", {})
    lines: list[str] = []
    for key in sorted(set(before) | set(after)):
        if key not in before:
            lines.append(f"+ {key}")
        elif key not in after:
            lines.append(f"- {key}")
        else:
            lines += [f"~ {key}: {change}" for change in _changes(
                "", before[key].get("properties", {}), after[key].get("properties", {}))]
    return lines
