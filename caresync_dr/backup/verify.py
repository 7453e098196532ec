"""Row counts and content fingerprints per table, read from a database.

Two kinds, named by the manifest's ``fingerprint_method``:

- v2 (``copy-text-sha256/v2``, backups since the streaming restore): the row count and SHA-256
  of the table's COPY text as pg_dump writes it. Backup and restore compute it on the stream
  (``archive.py``); :func:`copy_fingerprints` computes the same value from a live database with
  ``COPY ... TO STDOUT`` in pg_dump's column list and output settings, which is how the tests
  check the stream's figures independently (and how a restored copy can be re-read).
- v1 (``server-md5-sum/v1``, older backups, still restored and verified this way): two 64-bit
  sums of the md5 of every row's text form, computed by the server with fixed output settings
  (UTC, ISO dates) so the same data gives the same value on any server. Sums are order
  independent (no sort, no giant string), so memory stays flat; 128 bits make an accidental
  match of different content negligible. Verifying them reads every restored table again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
from psycopg import sql

from caresync_dr.backup.tools import text

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
    tables = [(text(s), text(t)) for s, t in conn.execute(_TABLES).fetchall()]
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


# The output settings pg_dump uses for COPY (pg_dump.c setup_connection), so COPY TO STDOUT
# here gives pg_dump's bytes.
PG_DUMP_OUTPUT = {"DateStyle": "ISO", "IntervalStyle": "postgres", "extra_float_digits": "3",
                  "synchronize_seqscans": "off"}

_COLUMNS = """
SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
  FROM pg_attribute a
 WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
   AND a.attgenerated = ''
"""


def copy_fingerprints(conninfo: str) -> dict[str, TableFingerprint]:
    """v2 fingerprints of every user table, in one REPEATABLE READ snapshot."""
    import hashlib

    result: dict[str, TableFingerprint] = {}
    with psycopg.connect(conninfo, autocommit=False) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        for name, value in PG_DUMP_OUTPUT.items():
            conn.execute("SELECT set_config(%s, %s, true)", (name, value))
        encoding = conn.execute("SELECT pg_encoding_to_char(encoding) FROM pg_database "
                                "WHERE datname = current_database()").fetchone()
        assert encoding is not None
        conn.execute("SELECT set_config('client_encoding', %s, true)", (text(encoding[0]),))
        for schema, table in [(text(s), text(t)) for s, t in conn.execute(_TABLES).fetchall()]:
            relation = sql.Identifier(schema, table)
            columns = conn.execute(_COLUMNS, (relation.as_string(conn),)).fetchone()
            query = sql.SQL("COPY {} ({}) TO STDOUT").format(
                relation, sql.SQL(text(columns[0]) if columns and columns[0] else ""))
            digest, rows = hashlib.sha256(), 0
            with conn.cursor().copy(query) as copy:
                for block in copy:
                    digest.update(block)
                    rows += bytes(block).count(b"\n")
            result[f"{schema}.{table}"] = TableFingerprint(rows=rows,
                                                           fingerprint=digest.hexdigest())
    return result
