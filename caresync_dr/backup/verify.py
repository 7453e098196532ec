"""Row counts and content fingerprints per table, computed server-side.

A fingerprint is two 64-bit sums of the md5 of every row's text form, with fixed output
settings (UTC, ISO dates) so the same data gives the same value on any server. Sums are order
independent (no sort, no giant string), so memory stays flat; 128 bits make an accidental match
of different content negligible. The backup computes them inside the dump's own snapshot, so they
describe exactly what the dump contains, even under concurrent writes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

# Output settings that make a row's text form independent of the session and the server.
STABLE_OUTPUT = {
    "TimeZone": "UTC", "DateStyle": "ISO, YMD", "IntervalStyle": "postgres",
    "extra_float_digits": "1", "bytea_output": "hex",
}
_MOD = 1 << 64

_TABLES = """
SELECT n.nspname, c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
 ORDER BY 1, 2
"""


@dataclass(frozen=True)
class TableFingerprint:
    rows: int
    fingerprint: str


def apply_stable_output(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    for name, value in STABLE_OUTPUT.items():
        conn.execute("SELECT set_config(%s, %s, false)", (name, value))


def table_fingerprints(
        conn: psycopg.Connection[tuple[object, ...]]) -> dict[str, TableFingerprint]:
    """Fingerprints of every user table, in the connection's current transaction/snapshot."""
    apply_stable_output(conn)
    result: dict[str, TableFingerprint] = {}
    tables = [(str(s), str(t)) for s, t in conn.execute(_TABLES).fetchall()]
    for schema, table in tables:
        query = sql.SQL(
            "SELECT count(*), "
            "coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0)::text, "
            "coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)::text "
            "FROM (SELECT md5(t::text) AS h FROM {} AS t) AS s"
        ).format(sql.Identifier(schema, table))
        row = conn.execute(query).fetchone()
        assert row is not None
        rows, high, low = int(str(row[0])), int(str(row[1])) % _MOD, int(str(row[2])) % _MOD
        result[f"{schema}.{table}"] = TableFingerprint(rows=rows,
                                                       fingerprint=f"{high:016x}{low:016x}")
    return result


def fingerprints_of(conninfo: str) -> dict[str, TableFingerprint]:
    with psycopg.connect(conninfo, autocommit=False) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        return table_fingerprints(conn)


def compare(expected: dict[str, TableFingerprint],
            actual: dict[str, TableFingerprint]) -> list[str]:
    """Every difference, one sentence each; empty means the content is identical."""
    problems = [f"table {name} is missing from the restored database"
                for name in sorted(set(expected) - set(actual))]
    problems += [f"table {name} is in the restored database but not in the backup"
                 for name in sorted(set(actual) - set(expected))]
    for name in sorted(set(expected) & set(actual)):
        want, got = expected[name], actual[name]
        if want.rows != got.rows:
            problems.append(f"table {name}: {got.rows} rows restored, backup recorded {want.rows}")
        elif want.fingerprint != got.fingerprint:
            problems.append(f"table {name}: content fingerprint {got.fingerprint} differs from "
                            f"the backup's {want.fingerprint} (same row count)")
    return problems
