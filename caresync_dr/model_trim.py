"""A botocore service model cut down to the operations a command may call.

Building a client makes a method for every operation of its service and loads the whole model
first: EC2's is 4 MB of JSON with ~750 operations, ~20 ms of CPU for the one EC2 client
failover.py reads launch templates with before its promotion request. Its IAM role allows it
three EC2 operations (``caresync_dr.operator_permissions``): a client of the model cut to the
operations the role grants offers exactly what the command may call. One outside the role
would be AccessDenied from AWS anyway; here it is an ``AttributeError`` before any request.

The cut keeps the model's metadata and every shape the kept operations reach (their input,
output and errors, followed through members, list members and map keys and values), so the
kept operations serialise and parse exactly as with the whole model.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def trimmed_model(model: dict[str, Any], operations: Iterable[str]) -> dict[str, Any]:
    """``model`` (botocore ``service-2`` data) with only ``operations`` (API names, e.g.
    ``DescribeLaunchTemplates``, in any case, as IAM matches action names; names the model
    does not have are ignored) and the shapes they reach. Raises KeyError when the model
    refers to a shape it does not define."""
    wanted = {name.lower() for name in operations}
    kept_operations = {name: spec for name, spec in model["operations"].items()
                       if name.lower() in wanted}
    shapes: dict[str, Any] = model["shapes"]
    pending = []
    for spec in kept_operations.values():
        pending += [spec[key]["shape"] for key in ("input", "output") if key in spec]
        pending += [error["shape"] for error in spec.get("errors", ())]
    reached: set[str] = set()
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        reached.add(name)
        shape = shapes[name]
        pending += [shape[ref]["shape"] for ref in ("member", "key", "value") if ref in shape]
        pending += [member["shape"] for member in shape.get("members", {}).values()]
    return {**model, "operations": kept_operations,
            "shapes": {name: shape for name, shape in shapes.items() if name in reached}}
