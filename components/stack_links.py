"""Reading the other stack's outputs (StackReference) without making bootstrap order fatal.

Whether prod wires replication and backup copies to the standby depends on whether the dr
stack has published its outputs yet, and resources cannot be declared inside an ``apply``. So
the outputs are awaited up front (``get_output_details``: a missing output is simply absent,
the ``get_output`` semantics, never ``require_output``'s failure) and the components receive
plain values.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pulumi


class StackLinkError(RuntimeError):
    """A stack that must exist first has not published the outputs this stack needs."""


async def read_outputs(reference: pulumi.StackReference, names: Sequence[str]) -> dict[str, Any]:
    """The named outputs that exist (secret or not); missing ones are left out."""
    found: dict[str, Any] = {}
    for name in names:
        details = await reference.get_output_details(name)
        value = details.value if details.value is not None else details.secret_value
        if value is not None:
            found[name] = value
    return found


def require(outputs: dict[str, Any], names: Sequence[str], stack: str, hint: str) -> None:
    missing = [n for n in names if n not in outputs]
    if missing:
        raise StackLinkError(f"stack {stack} has not published {', '.join(missing)}: {hint}")
