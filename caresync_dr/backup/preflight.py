"""Before a restore: can the connecting role recreate everything in the backup? On RDS it is not
a superuser, and a restore that stops at ``ALTER TABLE ... OWNER TO`` a role it is not a member
of (``must be member of role``) restored nothing (issue 11 item 3).

:func:`preflight` reads the target server as the restoring role and returns one
:class:`Finding` per obstacle, each with the statement (run as the RDS master user) that removes
it. ``rollback.sh FILE --dry-run`` prints them; a restore refuses to start while any remains,
unless ``--continue-on-error``. The least privileges themselves are in
``caresync_dr/db/roles.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from caresync_dr.backup.archive import ArchiveHead
from caresync_dr.backup.dbstate import DatabaseState
from caresync_dr.backup.tools import text


@dataclass(frozen=True)
class Finding:
    """What the restoring role cannot do, and the statement that fixes it."""

    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.problem}; fix: {self.fix}"


def _ident(name: str) -> str:
    return sql.Identifier(name).as_string(None)


class _Server:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        row = conn.execute("SELECT current_user, rolsuper, rolcreatedb, rolcreaterole "
                           "FROM pg_roles WHERE rolname = current_user").fetchone()
        assert row is not None
        self.user, self.superuser, self.createdb, self.createrole = (
            text(row[0]), bool(row[1]), bool(row[2]), bool(row[3]))
        self.roles = {text(r): bool(s) for r, s in conn.execute(
            "SELECT rolname, rolsuper FROM pg_roles").fetchall()}

    def member_of(self, role: str) -> bool:
        if self.superuser or role == self.user:
            return True
        row = self.conn.execute("SELECT pg_has_role(current_user, %s, 'USAGE')",
                                (role,)).fetchone()
        return bool(row and row[0])


def _role_findings(server: _Server, roles: Iterable[str], why: str,
                   membership: bool = True) -> list[Finding]:
    """Roles that must exist and, with ``membership``, that the restoring role must be a
    member of (to create objects they own)."""
    findings = []
    for role in sorted(set(roles)):
        # pg_database_owner: whoever owns the database (the restore creates it as its owner)
        if not role or role in ("PUBLIC", "pg_database_owner"):
            continue
        if role not in server.roles:
            findings.append(Finding(
                f"role {role} ({why}) does not exist on this server",
                f"create it first (CREATE ROLE {_ident(role)} NOLOGIN; or the roles of "
                "caresync_dr/db/roles.py), then restore"))
        elif membership and not server.member_of(role):
            findings.append(Finding(
                f"{server.user} is not a member of {role} ({why}), so it cannot create objects "
                f"owned by {role}", f"GRANT {_ident(role)} TO {_ident(server.user)};"))
    return findings


def _extension_findings(server: _Server, head: ArchiveHead,
                        state: DatabaseState | None) -> list[Finding]:
    findings = []
    wanted = {e.tag: (state.extensions.get(e.tag) if state else None)
              for e in head.entries if e.desc == "EXTENSION"}
    for name, version in sorted(wanted.items()):
        rows = server.conn.execute(
            "SELECT version, trusted, superuser FROM pg_available_extension_versions "
            "WHERE name = %s", (name,)).fetchall()
        versions = {text(v): (bool(t), bool(s)) for v, t, s in rows}
        if not versions:
            findings.append(Finding(f"extension {name} is not available on this server",
                                    "install it on the server (on RDS: a supported "
                                    "extension; SHOW rds.extensions lists them)"))
            continue
        if version is not None and version not in versions:
            findings.append(Finding(
                f"extension {name} {version} (the backup's version) is not available here "
                f"(available: {', '.join(sorted(versions))})",
                "restore onto a server with the same extension version, or accept the "
                "difference with --continue-on-error (verification will name it)"))
        trusted, needs_superuser = versions.get(version or "", next(iter(versions.values())))
        if needs_superuser and not trusted and not server.superuser:
            findings.append(Finding(
                f"extension {name} is not trusted: only a superuser can create it",
                f"on RDS: GRANT rds_superuser TO {_ident(server.user)}; (or pre-create the "
                f"extension as the master user: CREATE EXTENSION {_ident(name)};)"))
    return findings


def preflight(target_url: str, head: ArchiveHead | None, state: DatabaseState | None,
              live: str, swapping: bool = True) -> list[Finding]:
    """Everything the role of ``target_url`` could not recreate from this backup (and, when
    ``swapping``, could not do to swap the copy in for ``live``)."""
    with psycopg.connect(target_url, autocommit=True) as conn:
        server = _Server(conn)
        findings: list[Finding] = []
        if not (server.superuser or server.createdb):
            findings.append(Finding(f"{server.user} cannot create the scratch database",
                                    f"ALTER ROLE {_ident(server.user)} CREATEDB;"))
        if state is not None:
            findings += _role_findings(server, [state.owner], "the database's owner")
            findings += _role_findings(server, state.roles - {state.owner},
                                       "named in the database's ACL or settings",
                                       membership=False)
            if state.role_settings and not (server.superuser or server.createrole):
                findings.append(Finding(
                    f"{server.user} cannot set per-role settings in the database "
                    f"({', '.join(sorted(state.role_settings))})",
                    f"ALTER ROLE {_ident(server.user)} CREATEROLE;"))
            superusers = [r for r in state.role_settings if server.roles.get(r)]
            if superusers and not server.superuser:
                findings.append(Finding(
                    f"only a superuser can set the per-database settings of superuser role(s) "
                    f"{', '.join(superusers)}", "restore as the master user, or drop those "
                    "settings from the source database"))
            if state.tablespace != "pg_default":
                row = conn.execute("SELECT has_tablespace_privilege(%s, 'CREATE')",
                                   (state.tablespace,)).fetchone() \
                    if state.tablespace in {text(t) for (t,) in conn.execute(
                        "SELECT spcname FROM pg_tablespace").fetchall()} else None
                if row is None:
                    findings.append(Finding(f"tablespace {state.tablespace} does not exist here",
                                            "create it, or restore onto a server that has it"))
                elif not row[0]:
                    findings.append(Finding(
                        f"{server.user} cannot create in tablespace {state.tablespace}",
                        f"GRANT CREATE ON TABLESPACE {_ident(state.tablespace)} TO "
                        f"{_ident(server.user)};"))
        if head is not None:
            owners = {e.owner for e in head.entries if e.owner}
            findings += _role_findings(server, owners, "owns objects in the backup")
            findings += _extension_findings(server, head, state)
        if swapping:
            findings += _swap_findings(server, live)
    return _unique(findings)


def _swap_findings(server: _Server, live: str) -> list[Finding]:
    row = server.conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database "
                              "WHERE datname = %s", (live,)).fetchone()
    if row is None:
        return []
    findings = []
    owner = text(row[0])
    if not server.member_of(owner):
        findings.append(Finding(
            f"{server.user} does not own {live} (its owner is {owner}), so it cannot rename it "
            "for the swap", f"GRANT {_ident(owner)} TO {_ident(server.user)};"))
    if not server.superuser and not server.member_of("pg_signal_backend"):
        findings.append(Finding(
            f"{server.user} cannot end other roles' sessions on {live} for the swap",
            f"GRANT pg_signal_backend TO {_ident(server.user)};"))
    return findings


def _unique(findings: list[Finding]) -> list[Finding]:
    """One finding per fix, naming every problem it fixes."""
    problems: dict[str, list[str]] = {}
    for finding in findings:
        listed = problems.setdefault(finding.fix, [])
        if finding.problem not in listed:
            listed.append(finding.problem)
    return [Finding("; and ".join(listed), fix) for fix, listed in problems.items()]
