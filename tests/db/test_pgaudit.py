"""pgAudit as the parameter group configures it, on a real PostgreSQL 15: role changes and every
access to the PHI tables are logged with the role that made them; parameter values never are."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from caresync_dr.db.pgaudit import (
    AUDIT_ROLE,
    audit_status,
    ensure_audit,
    role_audit_classes,
    role_audit_statement,
)
from caresync_dr.pg.cluster import PostgresCluster
from tests.pg_servers import pgaudit_server, server_log

pytestmark = pytest.mark.postgres
DATABASE = "caresync"
PHI = ("public.patients",)


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresCluster]:
    with pgaudit_server("caresync-pgaudit-test-", password_roles=("clinician",)) as cluster:
        cluster.psql(f"CREATE DATABASE {DATABASE}")
        cluster.psql("CREATE TABLE patients (id int PRIMARY KEY, name text); "
                     "CREATE TABLE app_settings (k text PRIMARY KEY, v text); "
                     "CREATE ROLE clinician LOGIN PASSWORD 'Clinician-Pass-1'; "
                     "GRANT SELECT, INSERT ON patients, app_settings TO clinician", DATABASE)
        yield cluster


def _master(server: PostgresCluster) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(server.dsn(DATABASE), autocommit=True)


def _clinician(server: PostgresCluster) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(host="127.0.0.1", port=server.port, dbname=DATABASE,
                           user="clinician", password="Clinician-Pass-1", autocommit=True)


def _logged(server: PostgresCluster, fragment: str, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = [line for line in server_log(server).splitlines() if fragment in line]
        if lines:
            return lines[-1]
        time.sleep(0.05)
    raise AssertionError(f"no log line containing {fragment!r}")


def test_a_missing_phi_table_is_refused_before_anything_changes(server: PostgresCluster) -> None:
    with _master(server) as conn:
        with pytest.raises(LookupError, match=r"public\.records do not exist"):
            ensure_audit(conn, ("public.patients", "public.records"))
        status = audit_status(conn, PHI)
    assert status.preloaded and not status.extension
    assert "the pgaudit extension is not created in this database" in status.problems(PHI)


def test_object_audit_logs_phi_access_with_the_role_and_without_values(
        server: PostgresCluster) -> None:
    with _master(server) as conn:
        first = ensure_audit(conn, PHI)
        again = ensure_audit(conn, PHI)   # idempotent
        status = audit_status(conn, PHI)
    assert first == again and len(first) == 3
    assert status.problems(PHI) == [] and status.audit_role == AUDIT_ROLE
    assert status.session_classes == "ddl,role"
    with _clinician(server) as app:
        app.execute("SELECT name FROM patients WHERE id = %s", (424242,)).fetchall()
        app.execute("INSERT INTO patients VALUES (%s, %s)", (7, "Jane Secretname"))
        app.execute("SELECT v FROM app_settings").fetchall()
    read = _logged(server, "AUDIT: OBJECT,")
    assert "clinician@caresync" in read
    insert = _logged(server, "WRITE,INSERT,TABLE,public.patients")
    assert "AUDIT: OBJECT" in insert
    assert "Jane Secretname" not in server_log(server), "a parameter value reached the log"
    assert "424242" not in server_log(server)
    # Not a PHI table, not a session class: nothing audited.
    assert "public.app_settings" not in server_log(server)


def test_role_changes_are_session_audited(server: PostgresCluster) -> None:
    with _master(server) as conn:
        conn.execute("GRANT SELECT ON app_settings TO clinician")
    assert "postgres@caresync" in _logged(server, "ROLE,GRANT,")


def test_a_compromised_roles_audit_goes_to_all_for_its_new_sessions(
        server: PostgresCluster) -> None:
    with _master(server) as conn:
        conn.execute(role_audit_statement("clinician", "all"))
        assert role_audit_classes(conn, "clinician") == "all"
    with _clinician(server) as app:
        app.execute("SELECT k FROM app_settings").fetchall()
    line = _logged(server, "READ,SELECT,TABLE,public.app_settings")
    assert "AUDIT: SESSION" in line and "clinician@caresync" in line
    with _master(server) as conn:
        conn.execute(role_audit_statement("clinician", None))
        assert role_audit_classes(conn, "clinician") is None
