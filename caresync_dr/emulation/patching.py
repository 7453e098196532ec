"""Reversible patches of moto's classes, shared by the shims that change moto's behaviour.

moto's backends and response classes are process-global, and moto serves the same classes to
``mock_aws`` (in-process) and to a ``ThreadedMotoServer``: a shim that patches them works for
the failover tests and for the drill alike. Every patch here is undone by :meth:`restore`, so a
shim is active only between its ``arm()`` and ``disarm()`` (or inside its ``with`` block).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_ABSENT = object()


@dataclass
class ClassPatches:
    """Attributes set on classes, with what was there before (an own attribute or nothing)."""

    _saved: list[tuple[type, str, Any, Any]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self._saved)

    def set(self, cls: type, name: str, value: Any) -> None:
        self._saved.append((cls, name, cls.__dict__.get(name, _ABSENT), value))
        setattr(cls, name, value)

    def restore(self) -> None:
        """Undo every patch, newest first; a second call does nothing. An attribute someone
        else has replaced since is theirs now and is left alone."""
        while self._saved:
            cls, name, original, ours = self._saved.pop()
            if cls.__dict__.get(name, _ABSENT) is not ours:
                continue
            if original is _ABSENT:
                delattr(cls, name)
            else:
                setattr(cls, name, original)
