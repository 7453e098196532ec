"""Times an operator types (``--restore-time``, ``--outage-started``), parsed one way.

Kept apart from :mod:`caresync_dr.arguments` (which imports psycopg) so that failover.py starts
without loading a database driver.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["BadTimeError", "utc_instant"]


class BadTimeError(ValueError):
    """An operator's time that is not an instant: its ``str`` says why, without the flag."""


def utc_instant(text: str) -> datetime:
    """An ISO 8601 time with a zone ("Z" or an offset), as an aware UTC datetime.

    Raises :class:`BadTimeError` when it is malformed, has no zone (a local time taken for UTC
    lands hours away at 3 a.m.), or lies outside what a UTC datetime can hold
    (``0001-01-01T00:00+14:00`` is a valid ISO time whose UTC form is in year 0)."""
    try:
        stripped = text.strip()
        when = datetime.fromisoformat(stripped[:-1] + "Z" if stripped.endswith("z") else stripped)
    except ValueError:
        raise BadTimeError("is not an ISO 8601 time such as 2026-11-30T02:11:00Z") from None
    if when.tzinfo is None:
        raise BadTimeError("has no time zone: add Z for UTC (or an offset such as +01:00)")
    try:
        return when.astimezone(UTC)
    except OverflowError:
        raise BadTimeError("is outside the years 1-9999 in UTC") from None
