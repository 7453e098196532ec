"""The database's login roles as data, and the idempotent SQL that creates them (decision D1).

This version holds the roles of issue 11: the least privileges on RDS for PostgreSQL 15 of the
backup, the restore and the restore test. (Branch ``stack`` writes the app role in the same
module; merging the two keeps one :class:`LoginRole` list.) The statements are run by an
operator as the RDS master user, which is not a superuser but has CREATEROLE and
``rds_superuser``: in PostgreSQL 15 CREATEROLE may grant membership in any non-superuser role,
the predefined ``pg_read_all_data`` and ``pg_signal_backend`` included (PostgreSQL 15 docs,
"CREATE ROLE"; RDS User Guide, "Understanding the rds_superuser role").

Ownership is the one design rule the roles depend on: the application database and every object
in it belong to a NOLOGIN owner role (:data:`OWNER_ROLE`), not to the master user. A role that
restores objects must be a member of their owner (``ALTER ... OWNER TO`` requires it: "must be
member of role"), and membership in the master user would hand it ``rds_superuser``. Migrations
run as the master user with ``SET ROLE caresync_owner``.

Why each privilege (nothing more is granted):

- backup (``caresync_backup``): ``pg_read_all_data`` (pg_dump reads every table, sequence and
  schema in one snapshot; it writes nothing). NOCREATEDB.
- restore (``caresync_restore``): CREATEDB (the scratch database); member of the owner (creates
  the objects as their owner, renames the live database, which only its owner may, in the
  swap); ``pg_signal_backend`` (the swap ends the application's sessions on the live database).
- restore test (``caresync_restore_test``): CREATEDB and member of the owner, as the restore; not
  ``pg_signal_backend``: it never touches the live database.

A database with per-role settings (``ALTER ROLE x IN DATABASE ...``) additionally needs the
restoring role to have CREATEROLE, which these roles deliberately do not: restore such settings
as the master user. ``rollback.sh FILE --dry-run`` with the restore role's ``DATABASE_URL`` lists
anything missing and the statement that grants it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from psycopg import sql

OWNER_ROLE = "caresync_owner"
LOGIN_ATTRIBUTES = ("LOGIN", "NOCREATEDB", "NOCREATEROLE")


@dataclass(frozen=True)
class LoginRole:
    """One login role of the application database."""

    name: str
    secret_name: str  # the Secrets Manager secret holding its password
    member_of: tuple[str, ...] = ()
    attributes: tuple[str, ...] = LOGIN_ATTRIBUTES
    connection_limit: int = -1  # -1: no limit
    description: str = ""


BACKUP_ROLE = LoginRole(
    name="caresync_backup", secret_name="caresync/db/backup",
    member_of=("pg_read_all_data",), connection_limit=3,
    description="backup.py: pg_dump reads every row in one snapshot; writes nothing")
RESTORE_ROLE = LoginRole(
    name="caresync_restore", secret_name="caresync/db/restore",
    member_of=(OWNER_ROLE, "pg_signal_backend"),
    attributes=("LOGIN", "CREATEDB", "NOCREATEROLE"), connection_limit=10,
    description="rollback.sh: creates the scratch copy as the owner, swaps it in")
RESTORE_TEST_ROLE = LoginRole(
    name="caresync_restore_test", secret_name="caresync/db/restore-test",
    member_of=(OWNER_ROLE,), attributes=("LOGIN", "CREATEDB", "NOCREATEROLE"),
    connection_limit=10,
    description="restore_test.py: restores into a scratch database and drops it")

ROLES: tuple[LoginRole, ...] = (BACKUP_ROLE, RESTORE_ROLE, RESTORE_TEST_ROLE)


@dataclass(frozen=True)
class RoleChange:
    """One statement, with what it does in words (for reports and the docs)."""

    what: str
    statement: sql.Composed = field(repr=False)


def owner_statements(database: str, owner: str = OWNER_ROLE) -> list[RoleChange]:
    """The NOLOGIN owner role, and the database handed to it (objects follow with the
    migrations' ``SET ROLE``, or ``REASSIGN OWNED BY <master> TO <owner>`` once, in it)."""
    name = sql.Identifier(owner)
    return [
        RoleChange(f"create the owner role {owner} if it does not exist", sql.SQL(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {}) "
            "THEN CREATE ROLE {} NOLOGIN; END IF; END $$").format(sql.Literal(owner), name)),
        RoleChange(f"make {owner} the owner of {database}", sql.SQL(
            "ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(database), name)),
    ]


def role_statements(role: LoginRole, *, database: str,
                    password_verifier: str | None = None) -> list[RoleChange]:
    """The idempotent statements that make ``role`` exist exactly as specified.

    ``password_verifier`` is a ``SCRAM-SHA-256$...`` verifier computed on the client
    (libpq's ``PQencryptPasswordConn``), never the password itself, so neither
    ``log_statement`` nor a slow-query log can show it; None leaves the password alone.
    """
    if password_verifier is not None and not password_verifier.startswith("SCRAM-SHA-256$"):
        raise ValueError("role_statements takes a SCRAM-SHA-256 verifier, not a password")
    name = sql.Identifier(role.name)
    password = (sql.SQL(" PASSWORD {}").format(sql.Literal(password_verifier))
                if password_verifier else sql.SQL(""))
    changes = [
        RoleChange(f"create role {role.name} if it does not exist", sql.SQL(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {}) "
            "THEN CREATE ROLE {}; END IF; END $$").format(sql.Literal(role.name), name)),
        RoleChange(f"set {role.name}'s attributes", sql.SQL(
            "ALTER ROLE {} WITH {} CONNECTION LIMIT {}{}").format(
            name, sql.SQL(" ").join(sql.SQL(a) for a in role.attributes),
            sql.Literal(role.connection_limit), password)),
        RoleChange(f"let {role.name} connect to {database}", sql.SQL(
            "GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), name)),
    ]
    changes += [RoleChange(f"make {role.name} a member of {group}", sql.SQL(
        "GRANT {} TO {}").format(sql.Identifier(group), name)) for group in role.member_of]
    return changes


def operator_roles_sql(database: str, owner: str = OWNER_ROLE,
                       roles: tuple[LoginRole, ...] = ROLES) -> str:
    """The whole script (without passwords), as docs/database-roles.md shows it."""
    changes = owner_statements(database, owner)
    for role in roles:
        changes += role_statements(_with_owner(role, owner), database=database)
    return "\n".join(f"-- {c.what}\n{c.statement.as_string(None)};" for c in changes)


def _with_owner(role: LoginRole, owner: str) -> LoginRole:
    if owner == OWNER_ROLE:
        return role
    return LoginRole(role.name, role.secret_name,
                     tuple(owner if g == OWNER_ROLE else g for g in role.member_of),
                     role.attributes, role.connection_limit, role.description)
