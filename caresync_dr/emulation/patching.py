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
_ACTIVE: list[ClassPatches] = []  # patch sets with patches applied, oldest first
# What moto's classes had before any shim (or anyone else) changed them: recorded when a shim
# module is imported, which happens before any of them is armed.
_PRISTINE: dict[tuple[type, str], Any] = {}


def remember(cls: type, *names: str) -> None:
    """Record moto's own value of ``cls.<name>`` (absent included), for :func:`restore_all`."""
    for name in names:
        _PRISTINE.setdefault((cls, name), cls.__dict__.get(name, _ABSENT))


@dataclass
class ClassPatches:
    """Attributes set on classes, with what was there before (an own attribute or nothing)."""

    _saved: list[tuple[type, str, Any, Any]] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return bool(self._saved)

    def set(self, cls: type, name: str, value: Any) -> None:
        remember(cls, name)  # in case its module did not
        self._saved.append((cls, name, cls.__dict__.get(name, _ABSENT), value))
        setattr(cls, name, value)
        if not any(active is self for active in _ACTIVE):
            _ACTIVE.append(self)

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
        _ACTIVE[:] = [active for active in _ACTIVE if active is not self]


def restore_all() -> None:
    """moto as moto: undo every patch still armed, then put back moto's own value of every
    attribute a shim patches, whoever changed it since (a safety net for test fixtures: a
    shim nobody disarmed, or a monkeypatch that restored a shim, must not reach the next
    test)."""
    for patches in reversed(list(_ACTIVE)):
        patches.restore()
    for (cls, name), original in _PRISTINE.items():
        if original is _ABSENT:
            if name in cls.__dict__:
                delattr(cls, name)
        elif cls.__dict__.get(name, _ABSENT) is not original:
            setattr(cls, name, original)
