"""The seed's ``./scripts/health-check.sh``: is the app healthy and is the database usable?

Each check returns one sentence; the command fails if any check fails, naming which.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
import requests

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_app(base_url: str, timeout: float = 5.0) -> Check:
    url = base_url.rstrip("/") + "/api/health"
    try:
        response = requests.get(url, timeout=timeout)
    except requests.RequestException as exc:
        return Check("app", False, f"{url} unreachable: {type(exc).__name__}")
    if response.status_code != 200:
        return Check("app", False, f"{url} answered HTTP {response.status_code}")
    return Check("app", True, f"{url} answered HTTP 200")


def check_database(database_url: str, timeout: int = 5) -> list[Check]:
    try:
        with psycopg.connect(database_url, connect_timeout=timeout) as conn:
            conn.execute("SELECT 1")
            checks = [Check("database", True, "SELECT 1 succeeded")]
            try:
                row = conn.execute("SELECT count(*) FROM patients").fetchone()
            except psycopg.errors.UndefinedTable:
                return [*checks, Check("patients", False, "table patients does not exist")]
            count = int(row[0]) if row else 0
            return [*checks, Check("patients", True, f"patients has {count} rows")]
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [Check("database", False, f"cannot connect: {first}")]
