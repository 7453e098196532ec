"""The database's login roles as data, and the idempotent SQL that makes them so (decision D1).

An operator command runs :func:`ensure_roles` as the RDS master user (``caresync/db/master``)
against the writer; replicas and promoted standbys inherit the roles through replication. Each
role is a :class:`LoginRole`: its attributes, the secret that holds its password, and what it
may do in the application database. :data:`ROLES` lists them; add a role by adding a
``LoginRole`` (the backup and restore-test roles of issue 11 go here).

Running it again changes nothing but the password (``ALTER ROLE ... PASSWORD``, which is how a
rotation lands too).

**Alternating users** (the app's role; Secrets Manager user guide, "Lambda function rotation
strategies", "Rotation strategy: alternating users"): the app logs in as one of two login roles,
``caresync_app`` or its clone ``caresync_app_clone``, whichever the secret's ``AWSCURRENT``
version names. Both are members of one NOLOGIN role, ``caresync_app_group``, which holds every
privilege (CONNECT, USAGE, the table and sequence grants, the default privileges), so the two
logins can never differ in what they may do. Neither login owns anything or may create anything
(no CREATE on any schema): an object one of them created would be out of the other's reach.
A scheduled rotation sets a new password on the login *not* in the secret and points the secret
at it; the other login's password stays valid until the next rotation, so instances that booted
with it keep opening connections until the instance refresh replaces them
(:mod:`caresync_dr.db.rotation`).

The password reaches the server only as a SCRAM-SHA-256 verifier computed
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
    alternate: str | None = None  # the clone login of the alternating-users rotation
    group: str | None = None      # the NOLOGIN role holding the privileges of both logins

    @property
    def logins(self) -> tuple[str, ...]:
        """Every login of this role: the role itself, then its clone (alternating users)."""
        return (self.name, self.alternate) if self.alternate else (self.name,)

    @property
    def holder(self) -> str:
        """The role the privileges are granted to: the group when there is one."""
        return self.group or self.name

    def other_login(self, login: str) -> str:
        """The login a rotation sets next when ``login`` is in the secret now. Raises
        ``ValueError`` for a role without a clone or a login that is not one of this role's."""
        if self.alternate is None or login not in self.logins:
            raise ValueError(f"{login} is not one of the alternating logins "
                             f"{', '.join(self.logins)}")
        return self.alternate if login == self.name else self.name


APP_ROLE = LoginRole(
    name="caresync_app", secret_name=APP_SECRET_NAME,
    schemas=(SchemaPrivileges(tables=DML, sequences=("USAGE", "SELECT")),),
    description="the CareSync app: reads and writes rows; owns nothing, creates nothing",
    # AWS's convention names the clone <user>_clone (the RDS multi-user rotation template).
    alternate="caresync_app_clone", group="caresync_app_group")

ROLES: tuple[LoginRole, ...] = (APP_ROLE,)


@dataclass(frozen=True)
class RoleChange:
    """One statement of :func:`role_statements`, with what it does in words (for reports)."""

    what: str
    statement: sql.Composable = field(repr=False)


def _create_if_missing(name: str, *, login: bool) -> sql.Composed:
    return sql.SQL(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = {}) "
        "THEN CREATE ROLE {}" + ("" if login else " NOLOGIN") + "; END IF; END $$").format(
        sql.Literal(name), sql.Identifier(name))


def role_statements(role: LoginRole, *, database: str, owner: str,
                    password_verifier: str | None = None,
                    password_verifiers: Mapping[str, str] | None = None) -> list[RoleChange]:
    """The idempotent statements that make ``role`` exist exactly as specified.

    ``owner`` is the role that owns the schemas and creates the tables (the master user runs
    the migrations), so default privileges are granted for objects it creates later.
    ``password_verifiers`` maps a login of the role (:attr:`LoginRole.logins`) to a
    ``SCRAM-SHA-256$...`` verifier, never the plain password; ``password_verifier`` is the
    same for ``role.name``. A login without one keeps its password (a new one is created
    without any, so it cannot log in by password until a rotation sets it): for an
    alternating role, the login the secret does not name keeps the password instances booted
    earlier still use. None at all: the SQL shown in the docs.

    With a ``group`` (alternating users), privileges go to the group and each login is made a
    member; privileges an older version granted to the login itself are revoked in the same
    transaction, so what a login may do comes from the group alone (the migration of a
    database that had only ``caresync_app``).
    """
    verifiers = dict(password_verifiers or {})
    if password_verifier is not None:
        verifiers[role.name] = password_verifier
    for login, verifier in verifiers.items():
        if login not in role.logins:
            raise ValueError(f"{login} is not a login of {role.name}")
        if not verifier.startswith("SCRAM-SHA-256$"):
            raise ValueError("role_statements takes a SCRAM-SHA-256 verifier, not a password")
    holder = sql.Identifier(role.holder)
    changes = []
    if role.group is not None:
        changes.append(RoleChange(f"create the NOLOGIN group {role.group} (it holds "
                                  f"{', '.join(role.logins)}'s privileges) if it does not "
                                  "exist", _create_if_missing(role.group, login=False)))
    for login in role.logins:
        name = sql.Identifier(login)
        password = (sql.SQL(" PASSWORD {}").format(sql.Literal(verifiers[login]))
                    if login in verifiers else sql.SQL(""))
        changes += [
            RoleChange(f"create role {login} if it does not exist",
                       _create_if_missing(login, login=True)),
            RoleChange(f"set {login}'s attributes" +
                       (" and password" if login in verifiers else ""), sql.SQL(
                "ALTER ROLE {} WITH {} CONNECTION LIMIT {}{}").format(
                name, sql.SQL(" ").join(sql.SQL(a) for a in role.attributes),
                sql.Literal(role.connection_limit), password)),
        ]
        if role.group is not None:
            changes.append(RoleChange(f"make {login} a member of {role.group}", sql.SQL(
                "GRANT {} TO {}").format(holder, name)))
    changes.append(RoleChange(f"let {role.holder} connect to {database}", sql.SQL(
        "GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database), holder)))
    for member_of in role.member_of:
        changes.append(RoleChange(f"make {role.holder} a member of {member_of}", sql.SQL(
            "GRANT {} TO {}").format(sql.Identifier(member_of), holder)))
    for grant in role.schemas:
        schema = sql.Identifier(grant.schema)
        changes.append(RoleChange(f"let {role.holder} use schema {grant.schema}", sql.SQL(
            "GRANT USAGE ON SCHEMA {} TO {}").format(schema, holder)))
        for kind, privileges in (("TABLES", grant.tables), ("SEQUENCES", grant.sequences),
                                 ("FUNCTIONS", grant.functions)):
            if not privileges:
                continue
            listed = sql.SQL(", ").join(sql.SQL(p) for p in privileges)
            changes.append(RoleChange(
                f"grant {', '.join(privileges)} on all {kind.lower()} in {grant.schema}",
                sql.SQL("GRANT {} ON ALL {} IN SCHEMA {} TO {}").format(
                    listed, sql.SQL(kind), schema, holder)))
            changes.append(RoleChange(
                f"grant the same on {kind.lower()} {owner} creates later in {grant.schema}",
                sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON {} "
                        "TO {}").format(sql.Identifier(owner), schema, listed, sql.SQL(kind),
                                        holder)))
            if role.group is None:
                continue
            for login in role.logins:      # the migration: the group holds them now
                name = sql.Identifier(login)
                changes.append(RoleChange(
                    f"revoke {kind.lower()} privileges {login} held itself in {grant.schema}",
                    sql.SQL("REVOKE {} ON ALL {} IN SCHEMA {} FROM {}").format(
                        listed, sql.SQL(kind), schema, name)))
                changes.append(RoleChange(
                    f"and the default privileges {login} held itself in {grant.schema}",
                    sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} REVOKE {} ON {} "
                            "FROM {}").format(sql.Identifier(owner), schema, listed,
                                              sql.SQL(kind), name)))
    if role.group is not None:
        for login in role.logins:
            name = sql.Identifier(login)
            changes.append(RoleChange(f"{login} connects through {role.group} only", sql.SQL(
                "REVOKE CONNECT ON DATABASE {} FROM {}").format(sql.Identifier(database),
                                                                 name)))
            for grant in role.schemas:
                changes.append(RoleChange(
                    f"{login} uses schema {grant.schema} through {role.group} only", sql.SQL(
                        "REVOKE USAGE ON SCHEMA {} FROM {}").format(
                        sql.Identifier(grant.schema), name)))
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
    ``passwords`` maps a login name to its password (from its secret: for an alternating role,
    the login its ``AWSCURRENT`` version names; the other login keeps its password). Returns
    what was done, one line per statement. Raises ``KeyError`` naming a role none of whose
    logins has a password, before changing anything.
    """
    missing = [role.name for role in roles if not set(role.logins) & set(passwords)]
    if missing:
        raise KeyError(f"no password for role(s) {', '.join(missing)}: read them from their "
                       "secrets first")
    done: list[str] = []
    with connection.transaction():
        for role in roles:
            verifiers = {login: scram_verifier(connection, login, passwords[login])
                         for login in role.logins if login in passwords}
            for change in role_statements(role, database=database, owner=owner,
                                          password_verifiers=verifiers):
                connection.execute(change.statement)
                done.append(change.what)
    return done


def app_roles_sql(database: str, owner: str, role: LoginRole = APP_ROLE) -> str:
    """The app's roles (group and both logins) without passwords, as docs/database-roles.md
    shows them."""
    return "\n".join(f"-- {c.what}\n{c.statement.as_string(None)};"
                     for c in role_statements(role, database=database, owner=owner))


# --- what the alternating rotation checks before it points the app at the other login -------

_PRIVILEGES_OF = """
    select c.oid::regclass::text, p.privilege
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES',
                            'TRIGGER']) as p(privilege)
    where c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
      and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
      and (c.relkind <> 'S' or p.privilege in ('SELECT', 'UPDATE'))
      and has_table_privilege(%s, c.oid, p.privilege)
      and not has_table_privilege(%s, c.oid, p.privilege)
    order by 1, 2"""
_COLUMN_PRIVILEGES_OF = """
    select c.oid::regclass::text || '.' || quote_ident(a.attname), p.privilege
    from pg_catalog.pg_class c
    join pg_catalog.pg_namespace n on n.oid = c.relnamespace
    join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0
                                   and not a.attisdropped
    cross join unnest(array['SELECT', 'INSERT', 'UPDATE', 'REFERENCES']) as p(privilege)
    where c.relkind in ('r', 'p', 'v', 'm', 'f')
      and n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
      and has_column_privilege(%s, c.oid, a.attnum, p.privilege)
      and not has_table_privilege(%s, c.oid, p.privilege)
      and not has_column_privilege(%s, c.oid, a.attnum, p.privilege)
    order by 1, 2"""
_OTHER_PRIVILEGES_OF = """
    select p.privilege || ' on schema ' || quote_ident(n.nspname)
      from pg_catalog.pg_namespace n
     cross join unnest(array['USAGE', 'CREATE']) as p(privilege)
     where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
       and has_schema_privilege(%s, n.oid, p.privilege)
       and not has_schema_privilege(%s, n.oid, p.privilege)
    union all
    select 'EXECUTE on function ' || f.oid::regprocedure::text
      from pg_catalog.pg_proc f join pg_catalog.pg_namespace n on n.oid = f.pronamespace
     where n.nspname <> 'information_schema' and n.nspname !~ '^pg_'
       and has_function_privilege(%s, f.oid, 'EXECUTE')
       and not has_function_privilege(%s, f.oid, 'EXECUTE')
    union all
    select p.privilege || ' on database ' || quote_ident(d.datname)
      from pg_catalog.pg_database d
     cross join unnest(array['CONNECT', 'CREATE', 'TEMPORARY']) as p(privilege)
     where d.datname = current_database()
       and has_database_privilege(%s, d.oid, p.privilege)
       and not has_database_privilege(%s, d.oid, p.privilege)
    order by 1"""
# The roles the first login is a member of (directly) that the second is not, through the
# group or itself: privileges are checked above, this catches roles such as pg_signal_backend.
_MEMBERSHIPS_OF = """
    select g.rolname from pg_catalog.pg_auth_members m
      join pg_catalog.pg_roles g on g.oid = m.roleid
      join pg_catalog.pg_roles u on u.oid = m.member
     where u.rolname = %s and g.rolname <> %s and not pg_has_role(%s, g.oid, 'MEMBER')
     order by 1"""
# ALTER DEFAULT PRIVILEGES of any role naming a login as grantee: the tables that role creates
# later would reach that login only.
_DEFAULT_ACLS_NAMING = """
    select o.rolname,
           coalesce(' in schema ' || quote_ident(n.nspname), ''),
           string_agg(distinct a.privilege_type, ', ') || ' on ' ||
             case d.defaclobjtype when 'r' then 'tables' when 'S' then 'sequences'
               when 'f' then 'functions' when 'T' then 'types' else 'schemas' end,
           g.rolname
      from pg_catalog.pg_default_acl d
      join pg_catalog.pg_roles o on o.oid = d.defaclrole
      left join pg_catalog.pg_namespace n on n.oid = d.defaclnamespace
     cross join lateral aclexplode(d.defaclacl) a
      join pg_catalog.pg_roles g on g.oid = a.grantee
     where g.rolname = any(%s)
     group by o.rolname, n.nspname, d.defaclobjtype, g.rolname
     order by 1, 2, 3, 4"""
_SETTINGS_OF = """
    select case when s.setdatabase = 0 then '' else ' in database ' || current_database() end,
           s.setconfig
      from pg_catalog.pg_db_role_setting s join pg_catalog.pg_roles r on r.oid = s.setrole
     where r.rolname = %s
       and s.setdatabase in (0, (select oid from pg_catalog.pg_database
                                 where datname = current_database()))"""
_OWNED_BY = """
    select 'table ' || c.oid::regclass::text from pg_catalog.pg_class c
      join pg_catalog.pg_roles r on r.oid = c.relowner
     where r.rolname = %s and c.relpersistence <> 't'
    union all
    select 'schema ' || n.nspname from pg_catalog.pg_namespace n
      join pg_catalog.pg_roles r on r.oid = n.nspowner where r.rolname = %s
    union all
    select 'function ' || p.oid::regprocedure::text from pg_catalog.pg_proc p
      join pg_catalog.pg_roles r on r.oid = p.proowner where r.rolname = %s
    union all
    select 'type ' || t.oid::regtype::text from pg_catalog.pg_type t
      join pg_catalog.pg_roles r on r.oid = t.typowner
     where r.rolname = %s and t.typtype in ('c', 'd', 'e', 'r', 'm')
       and (t.typrelid = 0 or (select c.relkind from pg_catalog.pg_class c
                                where c.oid = t.typrelid) = 'c')
    union all
    select 'large object ' || l.oid::text from pg_catalog.pg_largeobject_metadata l
      join pg_catalog.pg_roles r on r.oid = l.lomowner where r.rolname = %s"""


def switch_problems(connection: Any, role: LoginRole, current: str, target: str) -> list[str]:
    """Why the app must not be moved from login ``current`` to ``target`` now, one line
    each (empty: it may): a table or sequence privilege ``current`` has (its own or
    inherited) that ``target`` lacks (a grant made to one login, not to the group), or an
    object either login owns (the other could not reach it). Reads only."""
    found = [f"{target} lacks {privilege} on {table}, which {current} has: grant it to "
             f"{role.holder}, not to a login" for table, privilege in connection.execute(
                 _PRIVILEGES_OF, (current, target)).fetchall()]
    found += [f"{target} lacks {privilege} on column {column}, which {current} has: grant it "
              f"to {role.holder}, not to a login" for column, privilege in connection.execute(
                  _COLUMN_PRIVILEGES_OF, (current, current, target)).fetchall()]
    found += [f"{target} lacks {what}, which {current} has: grant it to {role.holder}, not to "
              "a login" for (what,) in connection.execute(
                  _OTHER_PRIVILEGES_OF, (current, target) * 3).fetchall()]
    found += [f"{target} is not a member of {member}, as {current} is: grant {member} to "
              f"{role.holder}, not to a login" for (member,) in connection.execute(
                  _MEMBERSHIPS_OF, (current, role.holder, target)).fetchall()]
    found += [f"the default privileges of {owner}{where} grant {kind} to {login} itself: "
              f"grant them to {role.holder} (ALTER DEFAULT PRIVILEGES FOR ROLE {owner} ... TO "
              f"{role.holder}), and revoke them from {login}"
              for owner, where, kind, login in connection.execute(
                  _DEFAULT_ACLS_NAMING, ([current, target],)).fetchall()]
    own = _settings(connection, current)
    theirs = _settings(connection, target)
    found += [f"{current} has its own setting {key} = {value!r}{where}, {target} has "
              f"{theirs.get((where, key))!r}: set it on {target} too (ALTER ROLE ... SET; a "
              "group's settings do not reach its members)"
              for (where, key), value in sorted(own.items())
              if key != "pgaudit.log" and theirs.get((where, key)) != value]
    for login in (current, target):
        found += [f"{login} owns {what}: hand it to {OWNER_ROLE} (ALTER ... OWNER TO)"
                  for (what,) in connection.execute(_OWNED_BY, (login,) * 5).fetchall()]
    return found


def _settings(connection: Any, login: str) -> dict[tuple[str, str], str]:
    """``login``'s own settings (ALTER ROLE ... [IN DATABASE this one] SET) by (where, key)."""
    found = {}
    for where, config in connection.execute(_SETTINGS_OF, (login,)).fetchall():
        for entry in config or []:
            key, _, value = str(entry).partition("=")
            found[(str(where), key)] = value
    return found


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
    description="restore_check.py: restores into a scratch database and drops it")

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
