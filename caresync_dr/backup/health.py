"""The seed's ``./scripts/health-check.sh``: is the app healthy and is the database usable?

Each check returns one sentence; the command fails if any check fails, naming which.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

log = logging.getLogger(__name__)
HEALTH_PATH = "/api/health"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def health_url(site_url: str) -> str:
    """The site's ``/api/health``: ``site_url`` is the site (the seed's
    ``http://localhost:5173``), or already its health URL."""
    url = site_url.rstrip("/")
    return url if url.endswith(HEALTH_PATH) else url + HEALTH_PATH


def check_app(site_url: str, timeout: float = 5.0) -> Check:
    """The app answers the ``/api/health`` contract (docs/failover-reference.md): HTTP 200,
    JSON with ``status`` ``"ok"`` and a writable database. The same reading as failover.py's
    verification (:func:`caresync_dr.failover.probes.health_of`): a captive portal's 200 page
    is no app, and a site answering from a read-only replica is degraded service, not
    healthy."""
    from caresync_dr.failover.probes import health_of

    url = health_url(site_url)
    reading = health_of(url, None, timeout=(timeout, timeout))
    if not reading.ok:
        detail = reading.detail if reading.detail.startswith(url) else f"{url}: {reading.detail}"
        return Check("app", False, detail)
    return Check("app", True, f"{url}: {reading.detail}")


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
