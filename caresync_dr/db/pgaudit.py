"""Database audit with pgAudit (issue 13): the parameter group's settings and the SQL beside them.

Two kinds of audit line land in the PostgreSQL log (exported to CloudWatch Logs under the site
key, components/database.py), each ``AUDIT: SESSION,...`` or ``AUDIT: OBJECT,...``:

* **session** audit for every role, classes ``ddl`` and ``role`` (``pgaudit.log``): schema
  changes and every GRANT, REVOKE, CREATE/ALTER/DROP ROLE -- how an attacker widens access;
* **object** audit of the PHI tables: pgAudit logs each statement that reads or writes a
  relation on which the audit role holds the matching privilege (``pgaudit.role``; on RDS the
  role must be ``rds_pgaudit``, "the only allowable value"). :func:`audit_statements` grants it
  SELECT, INSERT, UPDATE, DELETE on the PHI tables (``phiTables``), so every access to them is
  logged with the role that made it and nothing else is.

During a breach ``breach.py`` raises one role's session audit to ``all``
(:func:`role_audit_statement`, ``ALTER ROLE ... SET pgaudit.log``; it applies to that role's
*new* sessions, which is why the breach terminates the old ones). Parameter values are never
logged (``pgaudit.log_parameter`` off): they may hold PHI.

Sources: RDS user guide, "Using pgAudit to log database activity" (setting up the extension,
``shared_preload_libraries``, reboot, ``CREATE EXTENSION pgaudit``; "Auditing database objects":
``rds_pgaudit``); pgAudit README (``pgaudit.log`` classes, ``pgaudit.role``,
``pgaudit.log_relation``, ``pgaudit.log_parameter``, ``pgaudit.log_catalog``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

AUDIT_ROLE = "rds_pgaudit"  # RDS: the only value pgaudit.role accepts
SESSION_CLASSES = "ddl,role"
# Everything pgAudit can log, for a compromised role during a breach.
BREACH_CLASSES = "all"
PHI_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
# Libraries RDS preloads by default for PostgreSQL (pg_stat_statements) plus pgAudit: the
# parameter replaces the default list, so the default must be named again.
PRELOAD_LIBRARIES = "pg_stat_statements,pgaudit"


@dataclass(frozen=True)
class ParameterSetting:
    """One parameter group entry. ``pending-reboot`` for static parameters: RDS refuses
    ``immediate`` for them (ModifyDBParameterGroup, InvalidParameterCombination)."""

    name: str
    value: str
    apply_method: str = "immediate"


def parameter_group_settings() -> list[ParameterSetting]:
    """The parameter group entries that turn pgAudit on as described above."""
    return [
        ParameterSetting("shared_preload_libraries", PRELOAD_LIBRARIES, "pending-reboot"),
        ParameterSetting("pgaudit.role", AUDIT_ROLE),
        ParameterSetting("pgaudit.log", SESSION_CLASSES),
        ParameterSetting("pgaudit.log_parameter", "0"),
        ParameterSetting("pgaudit.log_catalog", "0"),
        # Session lines name each relation a statement touched (the breach's 'all' audit
        # then says which PHI tables a role read, one line per table).
        ParameterSetting("pgaudit.log_relation", "1"),
    ]


@dataclass(frozen=True)
class AuditChange:
    """One statement of :func:`audit_statements`, with what it does in words."""

    what: str
    statement: sql.Composed | sql.SQL = field(repr=False)


def _qualified(table: str) -> sql.Composable:
    schema, _, name = table.partition(".")
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def audit_statements(phi_tables: Sequence[str]) -> list[AuditChange]:
    """The idempotent statements that make object audit cover ``phi_tables`` (``schema.table``).

    Run as the RDS master user (``rds_superuser``) after the parameter group's
    ``shared_preload_libraries`` took effect (a reboot); ``CREATE EXTENSION`` fails before.
    """
    role = sql.Identifier(AUDIT_ROLE)
    changes = [
        AuditChange("create the pgaudit extension if it does not exist",
                    sql.SQL("CREATE EXTENSION IF NOT EXISTS pgaudit")),
        AuditChange(f"create the audit role {AUDIT_ROLE} (NOLOGIN) if it does not exist", sql.SQL(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {}) "
            "THEN CREATE ROLE {} NOLOGIN; END IF; END $$").format(sql.Literal(AUDIT_ROLE), role)),
    ]
    listed = sql.SQL(", ").join(sql.SQL(p) for p in PHI_PRIVILEGES)
    for table in phi_tables:
        changes.append(AuditChange(
            f"audit every {', '.join(PHI_PRIVILEGES)} on {table}",
            sql.SQL("GRANT {} ON TABLE {} TO {}").format(listed, _qualified(table), role)))
    return changes


def missing_tables(connection: Any, phi_tables: Sequence[str]) -> list[str]:
    """The PHI tables that do not exist (yet) in the connected database."""
    missing = []
    for table in phi_tables:
        row = connection.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        if row is None or row[0] is None:
            missing.append(table)
    return missing


def ensure_audit(connection: Any, phi_tables: Sequence[str]) -> list[str]:
    """Apply :func:`audit_statements` in one transaction; returns what was done.

    Raises ``LookupError`` naming PHI tables that do not exist before changing anything (a
    misspelt ``phiTables`` entry would otherwise leave a table silently unaudited).
    """
    missing = missing_tables(connection, phi_tables)
    if missing:
        raise LookupError(f"PHI table(s) {', '.join(missing)} do not exist in this database: "
                          "fix phiTables or run the migration first")
    done = []
    with connection.transaction():
        for change in audit_statements(phi_tables):
            connection.execute(change.statement)
            done.append(change.what)
    return done


def role_audit_statement(role: str, classes: str | None) -> sql.Composed:
    """``ALTER ROLE <role> SET pgaudit.log = <classes>`` (``None`` resets to the default)."""
    if classes is None:
        return sql.SQL("ALTER ROLE {} RESET pgaudit.log").format(sql.Identifier(role))
    return sql.SQL("ALTER ROLE {} SET pgaudit.log = {}").format(sql.Identifier(role),
                                                                sql.Literal(classes))


def role_audit_classes(connection: Any, role: str) -> str | None:
    """The role's own ``pgaudit.log`` (``ALTER ROLE ... SET``, any database), or None."""
    row = connection.execute(
        "SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s "
        "JOIN pg_catalog.pg_roles r ON r.oid = s.setrole "
        "WHERE r.rolname = %s AND s.setdatabase = 0", (role,)).fetchone()
    for entry in (row[0] if row and row[0] else []):
        key, _, value = str(entry).partition("=")
        if key == "pgaudit.log":
            return value
    return None


@dataclass(frozen=True)
class AuditStatus:
    """What the connected server audits, read from its settings and catalog."""

    preloaded: bool         # pgaudit in shared_preload_libraries (the reboot happened)
    extension: bool         # CREATE EXTENSION pgaudit ran in this database
    audit_role: str | None  # pgaudit.role
    session_classes: str | None  # pgaudit.log
    audited_tables: tuple[str, ...]  # PHI tables the audit role holds privileges on

    def problems(self, phi_tables: Sequence[str]) -> list[str]:
        found = []
        if not self.preloaded:
            found.append("pgaudit is not in shared_preload_libraries (reboot after the "
                         "parameter group change)")
        if not self.extension:
            found.append("the pgaudit extension is not created in this database")
        if self.audit_role != AUDIT_ROLE:
            found.append(f"pgaudit.role is {self.audit_role!r}, not {AUDIT_ROLE}")
        unaudited = sorted(set(phi_tables) - set(self.audited_tables))
        if unaudited:
            found.append(f"PHI table(s) without object audit: {', '.join(unaudited)}")
        return found


def _setting(connection: Any, name: str) -> str | None:
    row = connection.execute("SELECT current_setting(%s, true)", (name,)).fetchone()
    return None if row is None or row[0] in (None, "") else str(row[0])


def audit_status(connection: Any, phi_tables: Sequence[str]) -> AuditStatus:
    preload = _setting(connection, "shared_preload_libraries") or ""
    ext = connection.execute(
        "SELECT count(*) FROM pg_catalog.pg_extension WHERE extname = 'pgaudit'").fetchone()
    audited = []
    for table in phi_tables:
        row = connection.execute(
            "SELECT to_regclass(%s) IS NOT NULL AND EXISTS (SELECT FROM pg_catalog.pg_roles "
            "WHERE rolname = %s) AND has_table_privilege(%s, to_regclass(%s), 'SELECT')",
            (table, AUDIT_ROLE, AUDIT_ROLE, table)).fetchone()
        if row and row[0]:
            audited.append(table)
    return AuditStatus(
        preloaded="pgaudit" in [p.strip() for p in preload.split(",")],
        extension=bool(ext and ext[0]), audit_role=_setting(connection, "pgaudit.role"),
        session_classes=_setting(connection, "pgaudit.log"), audited_tables=tuple(audited))
