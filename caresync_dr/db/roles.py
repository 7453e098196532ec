"""The database's login roles as data, and the idempotent SQL that makes them so (decision D1).

An operator command runs :func:`ensure_roles` as the RDS master user (``caresync/db/master``)
against the writer; replicas and promoted standbys inherit the roles through replication. Each
role is a :class:`LoginRole`: its attributes, the secret that holds its password, and what it
may do in the application database. :data:`ROLES` lists them; add a role by adding a
``LoginRole`` (the backup and restore-test roles of issue 11 go here).

Running it again changes nothing but the password (``ALTER ROLE ... PASSWORD``, which is how a
rotation lands too). The password reaches the server only as a SCRAM-SHA-256 verifier computed
by libpq on the client (``PQencryptPasswordConn``), so neither ``log_statement`` nor a slow-query
log line can contain it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from caresync_dr.db.secrets import APP_SECRET_NAME

# A new role is NOSUPERUSER NOREPLICATION NOBYPASSRLS by default, and only a superuser may even
# name those attributes; the RDS master user is not one (it has CREATEROLE and rds_superuser),
# so only what it may set is spelled out.
LOGIN_ATTRIBUTES = ("LOGIN", "NOCREATEDB", "NOCREATEROLE")
DML = ("SELECT", "INSERT", "UPDATE", "DELETE")


@dataclass(frozen=True)
class SchemaPrivileges:
    """What a role may do in one schema: on existing objects, and by default on objects the
    schema's owner creates later (``ALTER DEFAULT PRIVILEGES FOR ROLE <owner>``)."""

    schema: str = "public"
    tables: tuple[str, ...] = ()
    sequences: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()  # e.g. ("EXECUTE",)


@dataclass(frozen=True)
class LoginRole:
    """One login role of the application database."""

    name: str
    secret_name: str  # the Secrets Manager secret holding its password
    schemas: tuple[SchemaPrivileges, ...]
    member_of: tuple[str, ...] = ()  # predefined roles, e.g. ("pg_read_all_data",)
    attributes: tuple[str, ...] = LOGIN_ATTRIBUTES
    connection_limit: int = -1  # -1: no limit
    description: str = ""


APP_ROLE = LoginRole(
    name="caresync_app", secret_name=APP_SECRET_NAME,
    schemas=(SchemaPrivileges(tables=DML, sequences=("USAGE", "SELECT")),),
    description="the CareSync app: reads and writes rows; owns nothing, creates nothing")

ROLES: tuple[LoginRole, ...] = (APP_ROLE,)


@dataclass(frozen=True)
class RoleChange:
    """One statement of :func:`role_statements`, with what it does in words (for reports)."""

    what: str
    statement: sql.Composable = field(repr=False)


def role_statements(role: LoginRole, *, database: str, owner: str,
                    password_verifier: str | None) -> list[RoleChange]:
    """The idempotent statements that make ``role`` exist exactly as specified.

    ``owner`` is the role that owns the schemas and creates the tables (the master user runs
    the migrations), so default privileges are granted for objects it creates later.
    ``password_verifier`` is a ``SCRAM-SHA-256$...`` verifier, never the plain password; None
    leaves the password alone (the SQL shown in the docs).
    """
    if password_verifier is not None and not password_verifier.startswith("SCRAM-SHA-256$"):
        raise ValueError("role_statements takes a SCRAM-SHA-256 verifier, not a password")
    name = sql.Identifier(role.name)
    password = (sql.SQL(" PASSWORD {}").format(sql.Literal(password_verifier))
                if password_verifier is not None else sql.SQL(""))
    changes = [
        RoleChange(f"create role {role.name} if it does not exist", sql.SQL(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {}) "
            "THEN CREATE ROLE {}; END IF; END $$").format(sql.Literal(role.name), name)),
        RoleChange(f"set {role.name}'s attributes" +
                   (" and password" if password_verifier is not None else ""), sql.SQL(
            "ALTER ROLE {} WITH {} CONNECTION LIMIT {}{}").format(
            name, sql.SQL(" ").join(sql.SQL(a) for a in role.attributes),
            sql.Literal(role.connection_limit), password)),
        RoleChange(f"let {role.name} connect to {database}", sql.SQL(
            "GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), name)),
    ]
    for member_of in role.member_of:
        changes.append(RoleChange(f"make {role.name} a member of {member_of}", sql.SQL(
            "GRANT {} TO {}").format(sql.Identifier(member_of), name)))
    for grant in role.schemas:
        schema = sql.Identifier(grant.schema)
        changes.append(RoleChange(f"let {role.name} use schema {grant.schema}", sql.SQL(
            "GRANT USAGE ON SCHEMA {} TO {}").format(schema, name)))
        for kind, privileges in (("TABLES", grant.tables), ("SEQUENCES", grant.sequences),
                                 ("FUNCTIONS", grant.functions)):
            if not privileges:
                continue
            listed = sql.SQL(", ").join(sql.SQL(p) for p in privileges)
            changes.append(RoleChange(
                f"grant {', '.join(privileges)} on all {kind.lower()} in {grant.schema}",
                sql.SQL("GRANT {} ON ALL {} IN SCHEMA {} TO {}").format(
                    listed, sql.SQL(kind), schema, name)))
            changes.append(RoleChange(
                f"grant the same on {kind.lower()} {owner} creates later in {grant.schema}",
                sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON {} "
                        "TO {}").format(sql.Identifier(owner), schema, listed, sql.SQL(kind),
                                        name)))
    return changes


def scram_verifier(connection: Any, role: str, password: str) -> str:
    """A SCRAM-SHA-256 verifier for ``password``, computed by libpq on this side."""
    verifier: bytes = connection.pgconn.encrypt_password(
        password.encode(), role.encode(), b"scram-sha-256")
    return verifier.decode()


def ensure_roles(connection: Any, passwords: Mapping[str, str], *, database: str,
                 owner: str, roles: Sequence[LoginRole] = ROLES) -> list[str]:
    """Make every role in ``roles`` exist as specified, in one transaction.

    ``connection`` is a psycopg connection to ``database`` as ``owner`` (the master user);
    ``passwords`` maps each role name to its password (from its secret). Returns what was
    done, one line per statement. Raises ``KeyError`` naming a role without a password before
    changing anything.
    """
    missing = [role.name for role in roles if role.name not in passwords]
    if missing:
        raise KeyError(f"no password for role(s) {', '.join(missing)}: read them from their "
                       "secrets first")
    done: list[str] = []
    with connection.transaction():
        for role in roles:
            verifier = scram_verifier(connection, role.name, passwords[role.name])
            for change in role_statements(role, database=database, owner=owner,
                                          password_verifier=verifier):
                connection.execute(change.statement)
                done.append(change.what)
    return done


# --- the backup, restore and restore-test roles (issue 11; docs/database-roles.md) ------------
#
# Least privilege on RDS for PostgreSQL 15, granted by the master user, which is not a superuser
# but has CREATEROLE: in PostgreSQL 15 that may grant membership in any non-superuser role, the
# predefined pg_read_all_data and pg_signal_backend included (PostgreSQL 15 docs, "CREATE
# ROLE"; RDS User Guide, "Understanding the rds_superuser role").
#
# They depend on one ownership rule: the application database and its objects belong to a
# NOLOGIN owner role (OWNER_ROLE), not to the master user. A role that restores objects must be
# a member of their owner (ALTER ... OWNER TO requires it: "must be member of role"), and
# membership in the master user would hand it rds_superuser. Migrations then run as the master
# user with SET ROLE caresync_owner (and ensure_roles's ``owner`` is caresync_owner).
#
# - backup: pg_read_all_data (pg_dump reads every table, sequence and schema in one snapshot;
#   it writes nothing). NOCREATEDB.
# - restore: CREATEDB (the scratch database); member of the owner (creates the objects as their
#   owner, and renames the live database in the swap, which only its owner may);
#   pg_signal_backend (the swap ends the application's sessions on the live database).
# - restore test: CREATEDB and member of the owner, as the restore; not pg_signal_backend: it
#   never touches the live database.
# A database with per-role settings (ALTER ROLE x IN DATABASE ...) also needs CREATEROLE to
# restore them, deliberately not granted: restore such settings as the master user. The
# restore's preflight (rollback.sh FILE --dry-run) names anything missing and its GRANT.

OWNER_ROLE = "caresync_owner"

BACKUP_ROLE = LoginRole(
    name="caresync_backup", secret_name="caresync/db/backup", schemas=(),
    member_of=("pg_read_all_data",), connection_limit=3,
    description="backup.py: pg_dump reads every row in one snapshot; writes nothing")
RESTORE_ROLE = LoginRole(
    name="caresync_restore", secret_name="caresync/db/restore", schemas=(),
    member_of=(OWNER_ROLE, "pg_signal_backend"),
    attributes=("LOGIN", "CREATEDB", "NOCREATEROLE"), connection_limit=10,
    description="rollback.sh: creates the scratch copy as the owner, swaps it in")
RESTORE_TEST_ROLE = LoginRole(
    name="caresync_restore_test", secret_name="caresync/db/restore-test", schemas=(),
    member_of=(OWNER_ROLE,), attributes=("LOGIN", "CREATEDB", "NOCREATEROLE"),
    connection_limit=10,
    description="restore_test.py: restores into a scratch database and drops it")

OPERATOR_ROLES: tuple[LoginRole, ...] = (BACKUP_ROLE, RESTORE_ROLE, RESTORE_TEST_ROLE)


def owner_statements(database: str, owner: str = OWNER_ROLE) -> list[RoleChange]:
    """The NOLOGIN owner role, and the database handed to it (objects follow with the
    migrations' ``SET ROLE``, or ``REASSIGN OWNED BY <master> TO <owner>`` once, in it).

    The master user (the caller) is made a member of the owner first: PostgreSQL 15 lets a
    non-superuser change a database's owner only to a role it is a member of ("ALTER DATABASE":
    "must be a direct or indirect member of the new owning role", and have CREATEDB), and
    creating a role with CREATEROLE grants no membership in it before PostgreSQL 16. RDS's
    master user is no superuser. The same membership lets migrations ``SET ROLE`` to the
    owner; a role with CREATEROLE may grant it (PostgreSQL 15, "GRANT")."""
    name = sql.Identifier(owner)
    return [
        RoleChange(f"create the owner role {owner} if it does not exist", sql.SQL(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {}) "
            "THEN CREATE ROLE {} NOLOGIN; END IF; END $$").format(sql.Literal(owner), name)),
        RoleChange(f"make the master user (this session's) a member of {owner}", sql.SQL(
            "GRANT {} TO CURRENT_USER").format(name)),
        RoleChange(f"make {owner} the owner of {database}", sql.SQL(
            "ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(database), name)),
    ]


def operator_roles_sql(database: str, owner: str = OWNER_ROLE,
                       roles: Sequence[LoginRole] = OPERATOR_ROLES) -> str:
    """The whole script without passwords, as docs/database-roles.md shows it."""
    changes = owner_statements(database, owner)
    for role in roles:
        groups = tuple(owner if g == OWNER_ROLE else g for g in role.member_of)
        changes += role_statements(dataclasses.replace(role, member_of=groups),
                                   database=database, owner=owner, password_verifier=None)
    return "\n".join(f"-- {c.what}\n{c.statement.as_string(None)};" for c in changes)
