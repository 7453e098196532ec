"""What belongs to the database itself rather than to its objects, carried by every backup.

``pg_dump`` without ``--create`` carries nothing about the database: the first restores created
the scratch database with the cluster's defaults, so a LATIN1 database came back as UTF8 (its
fingerprints then differed and every restore failed), and owner, settings, ACL and comment were
lost while verification said "fingerprints match" (issue 11). So the backup records the
database's state in the dump's own snapshot (:func:`capture`), the manifest carries it, the
restore creates the scratch database to match and applies the rest after the load
(:func:`create_statement`, :func:`apply_statements`), and verification compares every field of
the restored database with the record (:func:`differences`), so a restore that changes any of
it fails loudly.

Fields: encoding, LC_COLLATE, LC_CTYPE, locale provider (libc/ICU) and ICU locale, owner,
default tablespace, connection limit, ACL, per-database settings, per-role-in-database
settings, comment, and installed extensions with their versions.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from caresync_dr.backup.tools import text

PROVIDERS = {"c": "libc", "i": "icu", "d": "default"}
# Settings whose value is a list of names, quoted element by element (PostgreSQL's
# GUC_LIST_QUOTE flag; pg_dump's variable_is_guc_list_quote()).
LIST_SETTINGS = frozenset({"local_preload_libraries", "search_path", "session_preload_libraries",
                           "shared_preload_libraries", "temp_tablespaces",
                           "unix_socket_directories"})
_PRIVILEGES = {"C": "CREATE", "c": "CONNECT", "T": "TEMPORARY"}


@dataclass(frozen=True)
class DatabaseState:
    encoding: str
    collate: str
    ctype: str
    locale_provider: str
    icu_locale: str | None
    owner: str
    tablespace: str
    connection_limit: int
    acl: tuple[str, ...] | None          # aclitem texts, None = the default privileges
    settings: tuple[str, ...]            # "name=value", ALTER DATABASE ... SET
    role_settings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    comment: str | None = None
    extensions: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DatabaseState:
        return cls(
            encoding=str(data["encoding"]), collate=str(data["collate"]),
            ctype=str(data["ctype"]), locale_provider=str(data["locale_provider"]),
            icu_locale=None if data.get("icu_locale") is None else str(data["icu_locale"]),
            owner=str(data["owner"]), tablespace=str(data.get("tablespace", "pg_default")),
            connection_limit=int(data.get("connection_limit", -1)),
            acl=None if data.get("acl") is None else tuple(str(a) for a in data["acl"]),
            settings=tuple(str(s) for s in data.get("settings", ())),
            role_settings={str(r): tuple(str(s) for s in v)
                           for r, v in dict(data.get("role_settings", {})).items()},
            comment=None if data.get("comment") is None else str(data["comment"]),
            extensions={str(k): str(v) for k, v in dict(data.get("extensions", {})).items()})

    @property
    def roles(self) -> set[str]:
        """Every role the state names: owner, ACL grantees and grantors, role settings."""
        named = {self.owner, *self.role_settings}
        for item in self.acl or ():
            grantee, _, rest = item.partition("=")
            grantor = rest.partition("/")[2]
            named.update(r for r in (_unquote(grantee), _unquote(grantor)) if r)
        return named


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') and name.endswith('"') else name


def capture(conn: psycopg.Connection[Any], database: str | None = None) -> DatabaseState:
    """The state of ``database`` (default: ``conn``'s own), in ``conn``'s current transaction.
    Extensions are per database: they are read only when ``database`` is ``conn``'s own."""
    version = int(text(conn.execute("SHOW server_version_num").fetchone()[0]))  # type: ignore[index]
    provider, icu = ("d.datlocprovider", "d.daticulocale") if version >= 150000 else \
        ("'c'::\"char\"", "NULL::text")
    if version >= 170000:
        icu = "d.datlocale"
    where = sql.SQL("d.datname = current_database()") if database is None else \
        sql.SQL("d.datname = {}").format(sql.Literal(database))
    row = conn.execute(sql.SQL(
        "SELECT pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, {}, {}, "
        "pg_get_userbyid(d.datdba), t.spcname, d.datconnlimit, d.datacl::text[], "
        "shobj_description(d.oid, 'pg_database') "
        "FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace "
        "WHERE {}").format(sql.SQL(provider), sql.SQL(icu), where)).fetchone()
    if row is None:
        raise psycopg.errors.InvalidCatalogName(f"database {database} does not exist")
    settings: tuple[str, ...] = ()
    role_settings: dict[str, tuple[str, ...]] = {}
    for role, config in conn.execute(sql.SQL(
            "SELECT CASE WHEN s.setrole = 0 THEN '' ELSE pg_get_userbyid(s.setrole) END, "
            "s.setconfig FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase "
            "WHERE {}").format(where)).fetchall():
        values = tuple(sorted(text(c) for c in (config or ())))
        if role_name := text(role):
            role_settings[role_name] = values
        else:
            settings = values
    extensions = {} if database is not None else {text(n): text(v) for n, v in conn.execute(
        "SELECT extname, extversion FROM pg_extension").fetchall()}
    return DatabaseState(
        encoding=text(row[0]), collate=text(row[1]), ctype=text(row[2]),
        locale_provider=PROVIDERS.get(text(row[3]), text(row[3])),
        icu_locale=None if row[4] is None else text(row[4]), owner=text(row[5]),
        tablespace=text(row[6]), connection_limit=int(row[7]),
        acl=None if row[8] is None else tuple(sorted(text(a) for a in row[8])),
        settings=settings, role_settings=role_settings,
        comment=None if row[9] is None else text(row[9]), extensions=extensions)


def extensions_of(conninfo: str) -> dict[str, str]:
    with psycopg.connect(conninfo) as conn:
        return {text(n): text(v) for n, v in conn.execute(
            "SELECT extname, extversion FROM pg_extension").fetchall()}


def restored_state(maintenance_url: str, name: str,
                   extensions: dict[str, str]) -> DatabaseState:
    """The scratch database's state, read from the maintenance database (the restored ACL may
    not let this role connect to it); its extensions as read before the ACL was applied."""
    with psycopg.connect(maintenance_url) as conn:
        state = capture(conn, name)
    return dataclasses.replace(state, extensions=extensions)


def state_of(conninfo: str) -> DatabaseState:
    with psycopg.connect(conninfo) as conn:
        return capture(conn)


def create_statement(name: str, state: DatabaseState) -> sql.Composed:
    """``CREATE DATABASE`` of the scratch copy with what cannot change later: encoding, locale,
    provider, owner, tablespace (template0: the only template that allows them all)."""
    parts = [sql.SQL("CREATE DATABASE {} WITH TEMPLATE template0 ENCODING {} LC_COLLATE {} "
                     "LC_CTYPE {}").format(sql.Identifier(name), sql.Literal(state.encoding),
                                           sql.Literal(state.collate), sql.Literal(state.ctype))]
    if state.locale_provider == "icu":
        parts.append(sql.SQL("LOCALE_PROVIDER icu ICU_LOCALE {}").format(
            sql.Literal(state.icu_locale or "")))
    parts.append(sql.SQL("OWNER {}").format(sql.Identifier(state.owner)))
    if state.tablespace != "pg_default":  # naming it needs CREATE on it, even pg_default
        parts.append(sql.SQL("TABLESPACE {}").format(sql.Identifier(state.tablespace)))
    return sql.SQL(" ").join(parts)


def split_list_setting(value: str) -> list[str]:
    """A list setting's stored value as its elements (PostgreSQL's SplitGUCList: commas,
    whitespace, double-quoted elements with "" for a quote)."""
    elements, pos = [], 0
    while pos < len(value):
        while pos < len(value) and value[pos] in " \t\n,":
            pos += 1
        if pos >= len(value):
            break
        if value[pos] == '"':
            match = re.match(r'"((?:[^"]|"")*)"', value[pos:])
            if not match:
                elements.append(value[pos + 1:])
                break
            elements.append(match.group(1).replace('""', '"'))
            pos += match.end()
        else:
            end = pos
            while end < len(value) and value[end] not in " \t\n,":
                end += 1
            elements.append(value[pos:end])
            pos = end
    return elements


def _set(setting: str) -> sql.Composed:
    """``name TO value`` for ``ALTER ... SET`` from a stored ``name=value`` (as pg_dump does)."""
    name, _, value = setting.partition("=")
    if name.lower() in LIST_SETTINGS:
        values = sql.SQL(", ").join(sql.Literal(v) for v in split_list_setting(value)) \
            if value.strip() else sql.Literal("")
    else:
        values = sql.Literal(value)
    return sql.SQL("{} TO {}").format(sql.Identifier(name), values)


def _acl_statements(name: str, state: DatabaseState) -> list[sql.Composed]:
    if state.acl is None:
        return []
    db = sql.Identifier(name)
    statements: list[sql.Composed] = [
        sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(db),
        sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(db, sql.Identifier(state.owner))]
    for item in state.acl:
        grantee, _, rest = item.partition("=")
        privileges = rest.partition("/")[0]
        who = sql.SQL("PUBLIC") if not grantee else sql.Identifier(_unquote(grantee))
        plain = [p for i, p in enumerate(privileges)
                 if p in _PRIVILEGES and privileges[i + 1:i + 2] != "*"]
        granted = [p for i, p in enumerate(privileges)
                   if p in _PRIVILEGES and privileges[i + 1:i + 2] == "*"]
        for letters, option in ((plain, sql.SQL("")), (granted, sql.SQL(" WITH GRANT OPTION"))):
            if letters:
                statements.append(sql.SQL("GRANT {} ON DATABASE {} TO {}{}").format(
                    sql.SQL(", ").join(sql.SQL(_PRIVILEGES[p]) for p in letters), db, who,
                    option))
    return statements


def apply_statements(name: str, state: DatabaseState) -> list[sql.Composed]:
    """What makes database ``name`` match ``state`` after the load: settings, role settings,
    comment, connection limit, ACL. Applied last, so none of them (a read-only default, a
    statement timeout, a revoked CONNECT) gets in the load's way."""
    db = sql.Identifier(name)
    statements: list[sql.Composed] = [
        sql.SQL("ALTER DATABASE {} SET {}").format(db, _set(s)) for s in state.settings]
    for role, settings in sorted(state.role_settings.items()):
        statements += [sql.SQL("ALTER ROLE {} IN DATABASE {} SET {}").format(
            sql.Identifier(role), db, _set(s)) for s in settings]
    if state.comment is not None:
        statements.append(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            db, sql.Literal(state.comment)))
    if state.connection_limit != -1:
        statements.append(sql.SQL("ALTER DATABASE {} CONNECTION LIMIT {}").format(
            db, sql.Literal(state.connection_limit)))
    return statements + _acl_statements(name, state)


def differences(expected: DatabaseState, actual: DatabaseState) -> list[str]:
    """Every field of the database that differs, one sentence each; empty means the same."""
    problems = []
    want, got = expected.to_json(), actual.to_json()
    for key in want:
        if key == "extensions":
            continue
        if want[key] != got[key]:
            problems.append(f"database {key.replace('_', ' ')}: restored {got[key]!r}, the "
                            f"backup recorded {want[key]!r}")
    for name in sorted(set(expected.extensions) | set(actual.extensions)):
        have, need = actual.extensions.get(name), expected.extensions.get(name)
        if have != need:
            problems.append(f"extension {name}: restored {have or 'not installed'}, the backup "
                            f"recorded {need or 'not installed'}")
    return problems
