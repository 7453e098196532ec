"""Keep autovacuum off the largest tables of a scratch database while the restore fills them.

A table that has just been loaded is what autovacuum looks for (PostgreSQL 13+ vacuums after
inserts, and analyzes after changes), and its worker takes a SHARE UPDATE EXCLUSIVE lock that
``CREATE INDEX`` and ``ALTER TABLE ... ADD CONSTRAINT`` (on the table, or on the table a foreign
key references) must wait for. The server cancels the worker only after ``deadlock_timeout``
(1 s by default, settable by superusers only): measured on a 1 GB restore, a whole second with
both cores idle, whenever a worker happened to reach the table first. The restore's work on the
scratch database must not wait for a vacuum of rows nobody can see yet.

So the restore sets ``autovacuum_enabled = false`` (and the same for the TOAST table) on its
largest tables before their data, and resets both once the schema after the data is in place,
before verification: the restored tables' ``reloptions`` are then exactly what pg_dump's
``CREATE TABLE`` made (a reset option leaves no trace; tables whose definition sets either
option themselves are left alone). The table's owner may change its storage parameters, as on
RDS (https://www.postgresql.org/docs/15/sql-altertable.html, "SET ( storage_parameter ... )").
Anti-wraparound vacuums ignore the setting, as they should.
"""

from __future__ import annotations

import logging

import psycopg
from psycopg import sql

from caresync_dr.backup.errors import BackupError
from caresync_dr.backup.tools import text

log = logging.getLogger(__name__)

# A table with less data than this is vacuumed in a moment; at most this many tables are
# paused (two ALTER TABLEs each), whatever the number of tables in the backup.
PAUSE_MIN_BYTES = 8 << 20
PAUSE_MAX_TABLES = 100
_OPTIONS = ("autovacuum_enabled", "toast.autovacuum_enabled")

Table = tuple[str, str]  # (schema, name)


def largest(sizes: dict[Table, int]) -> list[Table]:
    """The tables worth pausing: at least :data:`PAUSE_MIN_BYTES`, largest first."""
    big = sorted((t for t, size in sizes.items() if size >= PAUSE_MIN_BYTES),
                 key=lambda t: -sizes[t])
    return big[:PAUSE_MAX_TABLES]


def pause(target_url: str, tables: list[Table]) -> list[Table]:
    """Switch autovacuum off on those of ``tables`` that are plain tables whose definition
    does not set it; returns the tables paused. Best effort: a table that cannot be altered
    is only logged (the restore is then merely slower)."""
    if not tables:
        return []
    paused: list[Table] = []
    with psycopg.connect(target_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT n.nspname, c.relname, coalesce(c.reloptions, '{}') || "
            "coalesce(t.reloptions, '{}') FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid "
            "WHERE c.relkind = 'r' AND (n.nspname, c.relname) IN "
            "(SELECT * FROM unnest(%s::text[], %s::text[]))",
            ([s for s, _ in tables], [n for _, n in tables])).fetchall()
        own = {(text(s), text(n)) for s, n, options in rows
               if not any(str(o).startswith("autovacuum_enabled=") for o in options)}
        for table in (t for t in tables if t in own):
            try:
                conn.execute(sql.SQL("ALTER TABLE ONLY {} SET ({} = false, {} = false)").format(
                    sql.Identifier(*table), *map(sql.SQL, _OPTIONS)))
            except psycopg.Error as exc:
                log.warning("autovacuum left on for %s.%s during the restore: %s", *table,
                            str(exc).strip())
                continue
            paused.append(table)
    return paused


def resume(target_url: str, paused: list[Table]) -> None:
    """Reset what :func:`pause` set; :class:`BackupError` if a table keeps it (the copy would
    differ from the backup, so it must not be used)."""
    if not paused:
        return
    with psycopg.connect(target_url, autocommit=True) as conn:
        for table in paused:
            try:
                conn.execute(sql.SQL("ALTER TABLE ONLY {} RESET ({}, {})").format(
                    sql.Identifier(*table), *map(sql.SQL, _OPTIONS)))
            except psycopg.Error as exc:
                raise BackupError(f"could not reset autovacuum_enabled on {table[0]}."
                                  f"{table[1]} after the restore: {str(exc).strip()}") from exc
