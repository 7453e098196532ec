"""Issue 11 items 3 and 4: restores on RDS's terms (no superuser), one failing object does not
stop the rest, and rollback.sh's operator traps."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import psycopg
import pytest

from caresync_dr.backup.dbstate import differences, state_of
from caresync_dr.commands import backup as backup_script
from caresync_dr.commands import restore_check as restore_test_script
from caresync_dr.commands import rollback as restore_script
from caresync_dr.db import roles
from tests.backup.conftest import Site
from tests.backup.helpers import state

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


def clinic(site: Site) -> str:
    """A database owned by a NOLOGIN owner role, as roles.py requires; returns the owner."""
    owner, app = site.role("owner"), site.role("app")
    site.server.psql(f"CREATE ROLE {owner} NOLOGIN; CREATE ROLE {app} LOGIN")
    site.server.psql(f"CREATE DATABASE {site.name} OWNER {owner}")
    site.sql(f"""
        REVOKE CREATE ON SCHEMA public FROM PUBLIC;
        GRANT CREATE ON SCHEMA public TO {owner};
        SET ROLE {owner};
        CREATE TABLE patients (id int PRIMARY KEY, name text NOT NULL);
        CREATE TABLE visits (id int PRIMARY KEY, patient_id int REFERENCES patients(id));
        INSERT INTO patients SELECT g, 'patient ' || g FROM generate_series(1, 50) g;
        INSERT INTO visits SELECT g, 1 + g % 50 FROM generate_series(1, 100) g;
        GRANT SELECT, INSERT ON patients, visits TO {app};
        RESET ROLE;
        GRANT CONNECT ON DATABASE {site.name} TO {app};
        COMMENT ON DATABASE {site.name} IS 'clinic';
        """)
    return owner


def take(site: Site, key_file: Path, tmp_path: Path, user: str = "postgres") -> Path:
    assert backup_script.main(["--database-url", site.url(user), "--local-dir",
                               str(tmp_path / "b"), "--key-file", str(key_file)]) == 0
    return tmp_path / "b"


def rollback(backups: Path, url: str, key_file: Path, report: Path, *extra: str) -> int:
    return restore_script.main([str(backups), "--database-url", url, "--key-file", str(key_file),
                                "--report", str(report), *extra])


def test_the_preflight_names_what_a_non_superuser_cannot_recreate_and_the_fix(
        site: Site, key_file: Path, tmp_path: Path) -> None:
    owner = clinic(site)
    restorer = site.role("restorer")
    site.server.psql(f"CREATE ROLE {restorer} LOGIN CREATEDB")
    backups = take(site, key_file, tmp_path)
    before, before_state = state(site.url()), state_of(site.url())
    report = tmp_path / "dry.json"

    assert rollback(backups, site.url(restorer), key_file, report, "--dry-run") == 3

    findings = json.loads(report.read_text())["preflight"]
    assert any(f"{restorer} is not a member of {owner}" in f and
               f'fix: GRANT "{owner}" TO "{restorer}";' in f for f in findings), findings
    assert any(f'GRANT pg_signal_backend TO "{restorer}";' in f for f in findings), findings
    # A real restore refuses before creating anything, with the same list.
    assert rollback(backups, site.url(restorer), key_file, tmp_path / "r.json") == 3
    assert site.server.psql(f"SELECT count(*) FROM pg_database WHERE datname LIKE "
                            f"'{site.name}\\_%'") == "0"

    for finding in findings:  # the fixes, run as the master user would
        site.server.psql(finding.split("fix: ", 1)[1])
    site.sql("DELETE FROM visits")
    assert rollback(backups, site.url(restorer), key_file, report, "--dry-run") == 0
    assert rollback(backups, site.url(restorer), key_file, tmp_path / "r.json") == 0
    assert state(site.url()) == before
    assert differences(before_state, state_of(site.url())) == []


def test_the_documented_roles_are_enough_for_backup_restore_and_restore_test(
        site: Site, key_file: Path, tmp_path: Path) -> None:
    """roles.py's SQL, run as the master user (here a superuser stands in for it), gives
    exactly what the three commands need, and the backup role cannot write."""
    owner = clinic(site)
    renamed = tuple(dataclasses.replace(r, name=site.role(r.name.removeprefix("caresync_")))
                    for r in roles.OPERATOR_ROLES)
    site.sql(roles.operator_roles_sql(site.name, owner, renamed))
    backup_role, restore_role, test_role = (r.name for r in renamed)
    before = state(site.url())

    backups = take(site, key_file, tmp_path, user=backup_role)
    with psycopg.connect(site.url(backup_role)) as conn, \
            pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("DELETE FROM visits")
    report = tmp_path / "rt.json"
    assert restore_test_script.main(["--local-dir", str(backups), "--target-url",
                                     site.url(test_role), "--key-file", str(key_file),
                                     "--report", str(report)]) == 0, report.read_text()
    site.sql("DELETE FROM visits")
    assert rollback(backups, site.url(restore_role), key_file, tmp_path / "r.json") == 0
    assert state(site.url()) == before


def test_continue_on_error_restores_the_rest_and_lists_every_failure(
        site: Site, key_file: Path, tmp_path: Path) -> None:
    """A materialized view over a function with unqualified names: pg_restore's search_path is
    empty, so REFRESH fails. With --exit-on-error nothing was restored."""
    clinic(site)
    site.sql("""
        CREATE FUNCTION visit_count() RETURNS bigint LANGUAGE sql
            AS 'SELECT count(*) FROM visits';
        CREATE MATERIALIZED VIEW visit_stats AS SELECT visit_count() AS n;
        """)
    backups = take(site, key_file, tmp_path)
    before = state(site.url())
    site.sql("DELETE FROM visits")
    damaged = state(site.url())

    assert rollback(backups, site.url(), key_file, tmp_path / "strict.json") == 1
    assert state(site.url()) == damaged  # refused as a whole: the live database untouched

    report = tmp_path / "r.json"
    assert rollback(backups, site.url(), key_file, report, "--continue-on-error") == 1

    result = json.loads(report.read_text())
    failed = result["result"]["failed_objects"]
    assert len(failed) == 1 and "MATERIALIZED VIEW DATA public visit_stats" in failed[0], failed
    assert result["result"]["swapped"] is True  # all the data verified
    assert {k: v for k, v in state(site.url()).items()} == before
    assert "1 object(s) did not restore" in result["error"]


def test_per_role_settings_need_createrole_and_the_preflight_says_so(
        site: Site, key_file: Path, tmp_path: Path) -> None:
    owner = clinic(site)
    site.sql(f"ALTER ROLE {site.role('app')} IN DATABASE {site.name} SET work_mem = '8MB'")
    restorer = site.role("restorer")
    site.server.psql(f"CREATE ROLE {restorer} LOGIN CREATEDB; GRANT {owner} TO {restorer}; "
                     f"GRANT pg_signal_backend TO {restorer}")
    backups = take(site, key_file, tmp_path)
    report = tmp_path / "dry.json"
    assert rollback(backups, site.url(restorer), key_file, report, "--dry-run") == 3
    assert json.loads(report.read_text())["preflight"] == [
        f"{restorer} cannot set per-role settings in the database ({site.role('app')}); "
        f'fix: ALTER ROLE "{restorer}" CREATEROLE;']


# --- item 4: rollback.sh's operator traps ------------------------------------------------------

def test_a_misspelled_database_is_not_created_without_create(
        site: Site, key_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clinic(site)
    backups = take(site, key_file, tmp_path)
    typo = site.url(db=site.name + "x")

    assert rollback(backups, typo, key_file, tmp_path / "r.json") == 2

    assert "does not exist on this server; check the name" in capsys.readouterr().err
    assert site.server.psql(f"SELECT count(*) FROM pg_database WHERE datname LIKE "
                            f"'{site.name}x%'") == "0"
    assert rollback(backups, typo, key_file, tmp_path / "r.json", "--create") == 0
    assert site.server.psql("SELECT count(*) FROM visits", site.name + "x") == "100"


def test_checking_a_backup_needs_no_database(site: Site, key_file: Path,
                                            tmp_path: Path) -> None:
    clinic(site)
    backups = take(site, key_file, tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["CARESYNC_BACKUP_KEY_FILE"] = str(key_file)
    done = subprocess.run([str(ROOT / "scripts" / "rollback.sh"), str(backups), "--dry-run"],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "is intact, decrypts and row counts and fingerprints of 2 tables" in done.stdout


def test_a_table_split_over_two_copy_sessions_restores_as_the_documented_restore_role(
        site: Site, key_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second COPY session of a split table (``TableCopier.request_split``) needs nothing
    beyond the restore role's documented privileges: every table is split at its first row
    here, and the restore verifies."""
    from caresync_dr.backup.archive import TocEntry
    from caresync_dr.backup.copier import TableCopier
    owner = clinic(site)
    renamed = tuple(dataclasses.replace(r, name=site.role(r.name.removeprefix("caresync_")))
                    for r in roles.OPERATOR_ROLES)
    site.sql(roles.operator_roles_sql(site.name, owner, renamed))
    restore_role = renamed[1].name
    before = state(site.url())
    backups = take(site, key_file, tmp_path)
    start, copiers = TableCopier.on_table_start, []

    def split_at_once(self: TableCopier, entry: TocEntry) -> None:
        start(self, entry)
        self.request_split()
        copiers.append(self)
    monkeypatch.setattr(TableCopier, "on_table_start", split_at_once)
    site.sql("DELETE FROM visits")

    assert rollback(backups, site.url(restore_role), key_file, tmp_path / "r.json") == 0
    assert {n for c in copiers for n in c.split_rows} == {"public.patients", "public.visits"}
    assert state(site.url()) == before
