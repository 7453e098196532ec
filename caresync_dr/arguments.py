"""Argument types every operator command shares: numbers, URLs and database URLs checked where
they are parsed, so bad input is one line naming the option (exit 2) before any work.

Each is an ``argparse`` ``type=``: it returns the converted value or raises
``argparse.ArgumentTypeError`` with what is allowed, which the base parser
(:mod:`caresync_dr.cli`) turns into a usage error naming the option. argparse also converts
string defaults through ``type=``, so a default read from the environment (``DATABASE_URL``,
``APP_URL``) is checked the same way. Messages never repeat a database URL: it may hold a
password.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from caresync_dr import aws_names

Convert = Callable[[str], float]


def number(*, minimum: float | None = None, maximum: float | None = None,
           above: float | None = None, unit: str = "") -> Convert:
    """A finite number within bounds (``above``: strictly greater). NaN and infinities are
    refused: a timeout of ``inf`` waits forever, ``nan`` compares false with everything."""
    suffix = f" {unit}" if unit else ""

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        if above is not None and value <= above:
            raise argparse.ArgumentTypeError(f"{text} must be more than {above:g}{suffix}")
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"{text} must be at least {minimum:g}{suffix}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{text} must be at most {maximum:g}{suffix}")
        return value

    return convert


def integer(*, minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    """A whole number within bounds."""

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"{text} must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{text} must be at most {maximum}")
        return value

    return convert


def seconds(*, maximum: float = 24 * 3600) -> Convert:
    """A positive, finite duration in seconds (at most a day unless ``maximum`` says)."""
    return number(above=0, maximum=maximum, unit="seconds")


def http_url(text: str) -> str:
    """An absolute http(s) URL with a host (:func:`caresync_dr.aws_names.url`)."""
    problem = aws_names.url(text, https_only=False)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{text!r}: {problem}")
    return text


def database_url(text: str) -> str:
    """A PostgreSQL connection string libpq can parse: a ``postgresql://`` URL or
    ``key=value`` pairs (PostgreSQL docs, "Connection Strings"), with a port in 1-65535."""
    allowed = ("expected a PostgreSQL database URL such as "
               "postgresql://user@host:5432/dbname (from --database-url or DATABASE_URL)")
    if not text.strip():
        raise argparse.ArgumentTypeError(f"empty database URL: {allowed}")
    # Imported here: psycopg (with asyncio) costs ~50 ms of CPU, and every operator command
    # imports this module through the engine, also those (failover.py) that never take a URL.
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(text)
    except Exception:   # psycopg.ProgrammingError; its text repeats the URL (a password)
        raise argparse.ArgumentTypeError(f"not a database URL: {allowed}") from None
    if not any(parts.get(key) for key in ("host", "hostaddr", "dbname", "service")):
        raise argparse.ArgumentTypeError(f"no host or database in the database URL: {allowed}")
    for port in str(parts.get("port") or "5432").split(","):
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise argparse.ArgumentTypeError(
                f"the database URL's port is not a number in 1-65535: {allowed}")
    return text
