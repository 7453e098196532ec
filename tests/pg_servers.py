"""Throwaway PostgreSQL servers for the database tests: logins by password like RDS, and, on
request, configured like the stack's parameter group with pgAudit loaded.

The audit settings are the parameter group's own
(:func:`caresync_dr.db.pgaudit.parameter_group_settings`) written into postgresql.conf, so what
the tests see the audit log do is what RDS would do with that group. Needs the pgAudit
extension for the server's version (Debian: ``apt-get install postgresql-15-pgaudit``); without
it the tests skip, except under ``CI=true`` (``.ci/run`` installs it), where its absence is a
failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pytest

from caresync_dr.db.pgaudit import parameter_group_settings
from caresync_dr.pg.cluster import PostgresCluster, PostgresNotFoundError, find_pg_bin, temp_cluster

HOW_TO_GET_PGAUDIT = ("install pgAudit for the server "
                      "(Debian: apt-get install postgresql-15-pgaudit)")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def audit_conf() -> dict[str, str]:
    return {p.name: f"'{p.value}'" for p in parameter_group_settings()}


@contextmanager
def postgres_server(prefix: str, password_roles: Sequence[str] = (), *,
                    pgaudit: bool = False) -> Iterator[PostgresCluster]:
    """A started server with its log collected in ``<data>/log/postgresql.log`` (RDS's line
    prefix); ``password_roles`` authenticate with SCRAM over TCP, like RDS, everyone else with
    the test's trust; ``pgaudit`` adds the parameter group's pgAudit settings."""
    try:
        bin_dir = find_pg_bin()
    except PostgresNotFoundError as exc:
        _unavailable(f"no PostgreSQL server: {exc}")
        raise
    if pgaudit and not (bin_dir.parent / "lib" / "pgaudit.so").exists():
        _unavailable(f"pgAudit is not installed next to {bin_dir}: {HOW_TO_GET_PGAUDIT}")
    cluster = temp_cluster(prefix=prefix)
    cluster.append_conf({**(audit_conf() if pgaudit else {}), "logging_collector": "on",
                         "log_directory": "'log'", "log_filename": "'postgresql.log'",
                         "log_line_prefix": "'%m:%r:%u@%d:[%p]:'"})
    if password_roles:
        hba = cluster.data_dir / "pg_hba.conf"
        rules = hba.read_text()
        with hba.open("w") as out:  # rewriting in place keeps the server user's ownership
            out.writelines(f"host all {role} 127.0.0.1/32 scram-sha-256\n"
                           for role in password_roles)
            out.write(rules)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(cluster.data_dir.parent, ignore_errors=True)


def server_log(cluster: PostgresCluster) -> str:
    path = cluster.data_dir / "log" / "postgresql.log"
    return path.read_text(errors="replace") if path.exists() else ""


def pgaudit_server(prefix: str, password_roles: Sequence[str] = ()
                   ) -> contextlib.AbstractContextManager[PostgresCluster]:
    return postgres_server(prefix, password_roles, pgaudit=True)
