"""Does the restored database answer? Checks run as the app's own login (``caresync/db/app``):
what the app will do next is exactly what is verified.

Two kinds of check: a *condition* (SQL whose first column of the first row must be true, e.g.
``SELECT NOT pg_is_in_recovery()``) and a *count* (rows of a table, reported, and compared with
the damaged instance while it is still reachable). The seed's own verification is the default:
writable, and ``SELECT COUNT(*) FROM patients``.

TLS: ``sslmode`` is ``verify-full`` unless ``PGSSLMODE`` says otherwise; point ``PGSSLROOTCERT``
at the RDS certificate bundle (``global-bundle.pem``). libpq's other environment variables
(``PGHOSTADDR``, ``PGCONNECT_TIMEOUT``) apply as usual.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg import sql

__all__ = ["WRITABLE", "Check", "CheckResult", "conninfo", "count", "run_checks"]


@dataclass(frozen=True)
class Check:
    name: str
    kind: Literal["condition", "count"]
    query: str = ""
    table: str = ""


WRITABLE = Check("writable", "condition", "SELECT NOT pg_is_in_recovery()")


def count(table: str) -> Check:
    return Check(f"rows in {table}", "count", table=table)


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    value: Any = None
    error: str | None = None

    def sentence(self) -> str:
        if self.error:
            return f"{self.name}: failed ({self.error})"
        return f"{self.name}: {self.value}" + ("" if self.ok else " (not true)")


def conninfo(host: str, port: int, secret: dict[str, Any], timeout: int = 10) -> str:
    return psycopg.conninfo.make_conninfo(
        host=host, port=port, user=str(secret["username"]), password=str(secret["password"]),
        dbname=str(secret["dbname"]), connect_timeout=timeout,
        sslmode=os.environ.get("PGSSLMODE") or "verify-full")


def _statement(check: Check) -> sql.Composed | str:
    if check.kind == "count":
        schema, _, name = check.table.rpartition(".")
        target = (sql.Identifier(schema, name) if schema else sql.Identifier(name))
        return sql.SQL("SELECT count(*) FROM {}").format(target)
    return check.query  # the operator's own SQL, as given


def run_checks(info: str, checks: list[Check]) -> list[CheckResult]:
    """Every check in one read-only session; a connection failure fails them all."""
    try:
        conn = psycopg.connect(info, autocommit=True)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return [CheckResult(c.name, False, error=f"cannot connect: {reason}") for c in checks]
    results = []
    with conn:
        for check in checks:
            try:
                row = conn.execute(_statement(check)).fetchone()
            except psycopg.Error as exc:
                results.append(CheckResult(check.name, False,
                                           error=str(exc).strip().splitlines()[0]))
                continue
            value = None if row is None else row[0]
            ok = value is not None if check.kind == "count" else value is True
            results.append(CheckResult(check.name, ok, value))
    return results
