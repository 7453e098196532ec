"""Issue 10 items 1-3: a restore never swaps in an empty database, never lets a plain SQL file
act outside the scratch database, and never passes an old backup off as a new one."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from caresync_dr.commands import restore_check as restore_test_script
from caresync_dr.commands import rollback as restore_script
from caresync_dr.pg.cluster import PostgresCluster
from tests.backup.helpers import backup, state

pytestmark = pytest.mark.postgres


def leftovers(server: PostgresCluster, url: str) -> set[str]:
    live = url.rsplit("/", 1)[1]
    return set(server.psql(
        f"SELECT datname FROM pg_database WHERE datname LIKE '{live}\\_%'").split())


def rollback(path: Path, url: str, *extra: str) -> int:
    return restore_script.main([str(path), "--database-url", url, *extra])


# --- item 1: an empty result is never swapped in ------------------------------------------------

@pytest.mark.parametrize("content", [
    b"",                                      # a 0-byte file named .sql.gz
    gzip.compress(b""),                       # gzip of nothing
    gzip.compress(b"SELECT 1;\n"),            # SQL that creates nothing
    gzip.compress(b"CREATE TABLE patients (id int);\nCREATE TABLE notes (id int);\n"),
], ids=["zero-bytes", "gzip-of-nothing", "select-1", "tables-without-rows"])
def test_an_empty_plain_backup_is_never_swapped_in(
        content: bytes, pg_server: PostgresCluster, live_db: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    before = state(live_db)
    seed_file = tmp_path / "backup_20260101_000000.sql.gz"
    seed_file.write_bytes(content)

    assert rollback(seed_file, live_db) == 3

    assert "refusing to use it" in capsys.readouterr().err
    assert state(live_db) == before
    assert leftovers(pg_server, live_db) == set()


def test_an_empty_database_is_restored_only_when_asked(
        pg_server: PostgresCluster, live_db: str, tmp_path: Path) -> None:
    seed_file = tmp_path / "empty.sql.gz"
    seed_file.write_bytes(gzip.compress(b"CREATE TABLE patients (id int);\n"))
    assert rollback(seed_file, live_db, "--allow-empty") == 0
    assert pg_server.psql("SELECT count(*) FROM patients", live_db.rsplit("/", 1)[1]) == "0"


# --- item 2: plain SQL acts only inside the scratch database ----------------------------------

def seed_dump(server: PostgresCluster, url: str, path: Path, tail: str = "") -> Path:
    """The seed's `pg_dump | gzip` of the live database, with ``tail`` appended."""
    plain = subprocess.run([server.tool("pg_dump"), "-d", url], check=True,
                           capture_output=True).stdout
    path.write_bytes(gzip.compress(plain + tail.encode()))
    return path


@pytest.mark.parametrize(("tail", "refusal"), [
    ("\\connect {live}\nDELETE FROM clinical_notes;\n", "psql meta-command \\connect"),
    ("\\! touch {marker}\n", "psql meta-command \\!"),
    ("SELECT 1 \\! touch {marker}\n;\n", "psql meta-command \\!"),
    ("SELECT 1; \\o {marker}\n", "psql meta-command \\o"),
    ("COMMIT;\nALTER DATABASE {live} RENAME TO stolen;\n", "transaction control"),
    ("ALTER DATABASE {live} SET search_path = nowhere;\n", "a change outside this database"),
    ("ALTER ROLE postgres PASSWORD 'x';\n", "a change outside this database"),
    ("COPY patients TO PROGRAM 'touch {marker}';\n", "server-side files or programs"),
    ("DO $$ BEGIN PERFORM 1; END $$;\n", "code or server actions"),
])
def test_plain_sql_cannot_act_outside_the_scratch_database(  # noqa: PLR0917
        tail: str, refusal: str, pg_server: PostgresCluster, live_db: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    live = live_db.rsplit("/", 1)[1]
    marker = tmp_path / "pwned"
    seed_file = seed_dump(pg_server, live_db, tmp_path / "latest.sql.gz",
                          tail.format(live=live, marker=marker))
    pg_server.psql("DELETE FROM billing.\"Invoices\" WHERE id > 40", live)
    before = state(live_db)
    settings = pg_server.psql("SELECT count(*) FROM pg_db_role_setting")

    assert rollback(seed_file, live_db) == 3

    assert refusal in capsys.readouterr().err
    assert state(live_db) == before  # not a row changed, nothing swapped in
    assert not marker.exists()
    assert pg_server.psql("SELECT count(*) FROM pg_db_role_setting") == settings
    assert leftovers(pg_server, live_db) == set()


def test_sql_that_reaches_outside_through_a_function_is_rolled_back(
        pg_server: PostgresCluster, live_db: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Statements the scanner cannot judge (a function's body) meet the in-transaction guard."""
    live = live_db.rsplit("/", 1)[1]
    seed_file = seed_dump(pg_server, live_db, tmp_path / "latest.sql.gz", (
        "CREATE FUNCTION public.sneak() RETURNS void LANGUAGE plpgsql AS $f$ BEGIN "
        f"EXECUTE 'ALTER DATABASE {live} SET statement_timeout = 1'; END $f$;\n"
        "SELECT public.sneak();\n"))

    assert rollback(seed_file, live_db) == 3

    assert "changed the cluster outside its own database" in capsys.readouterr().err
    assert pg_server.psql(f"SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d "
                          f"ON d.oid = s.setdatabase WHERE d.datname = '{live}'") == "0"
    assert leftovers(pg_server, live_db) == set()


def test_a_plain_dump_with_tricky_but_harmless_sql_still_restores(
        pg_server: PostgresCluster, live_db: str, tmp_path: Path) -> None:
    """Backslashes in strings, comments, dollar quotes and COPY data; a SQL-standard function
    body (BEGIN ATOMIC ... END); a rule with two statements in parentheses."""
    live = live_db.rsplit("/", 1)[1]
    pg_server.psql(r"""
        CREATE TABLE paths (id int PRIMARY KEY, p text);
        INSERT INTO paths VALUES (1, 'C:\temp\new'), (2, E'tab\there'), (3, '\.');
        COMMENT ON TABLE paths IS 'backslash \ in a comment; and a ; too';
        CREATE FUNCTION f_dollar() RETURNS text LANGUAGE sql AS $x$ SELECT '\! not psql' $x$;
        CREATE FUNCTION f_atomic(a int) RETURNS int LANGUAGE sql
            BEGIN ATOMIC SELECT a + 1; END;
        CREATE TABLE audit (id int);
        CREATE RULE r AS ON INSERT TO paths DO ALSO (INSERT INTO audit VALUES (1);
                                                    INSERT INTO audit VALUES (2));
        """, live)
    before = state(live_db)
    seed_file = seed_dump(pg_server, live_db, tmp_path / "latest.sql.gz")
    pg_server.psql("DELETE FROM paths", live)

    assert rollback(seed_file, live_db) == 0

    assert state(live_db) == before
    assert pg_server.psql("SELECT f_atomic(1) || f_dollar()", live) == "2\\! not psql"


# --- item 3: the manifest's name and start time decide a backup's age -------------------------

def copy_as(old: Path, new_name: str, edit_manifest: bool = False) -> Path:
    """Copy a backup under another name, optionally editing its manifest to match."""
    directory = old.parent
    old_name = old.name.removesuffix(".dump.enc")
    shutil.copy(old, directory / f"{new_name}.dump.enc")
    manifest = json.loads((directory / f"{old_name}.manifest.json").read_text())
    if edit_manifest:
        taken = datetime.strptime(new_name, "backup_%Y%m%d_%H%M%S").replace(tzinfo=UTC)
        manifest.update(name=new_name, data_file=f"{new_name}.dump.enc",
                        started_at=taken.isoformat())
    (directory / f"{new_name}.manifest.json").write_text(json.dumps(manifest))
    return directory / f"{new_name}.dump.enc"


@pytest.mark.parametrize("edit_manifest", [False, True],
                         ids=["manifest-copied", "manifest-edited-to-match"])
def test_an_old_backup_under_a_newer_name_is_refused(  # noqa: PLR0917
        edit_manifest: bool, pg_server: PostgresCluster, live_db: str, key_file: Path,
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    _, data = backup(live_db, tmp_path / "b", key_file, now=now - timedelta(hours=48))
    copy_as(data, f"{now:backup_%Y%m%d_%H%M%S}", edit_manifest)
    pg_server.psql("DELETE FROM clinical_notes", live_db.rsplit("/", 1)[1])
    before = state(live_db)

    code = rollback(tmp_path / "b", live_db, "--key-file", str(key_file))

    assert code == 3
    assert ("a copy under another name" in capsys.readouterr().err if not edit_manifest
            else "refusing a renamed or edited manifest" in capsys.readouterr().err)
    assert state(live_db) == before
    assert leftovers(pg_server, live_db) == set()

    report = tmp_path / "rt.json"
    assert restore_test_script.main(["--local-dir", str(tmp_path / "b"), "--target-url",
                                     live_db, "--key-file", str(key_file),
                                     "--report", str(report)]) == 1
    local = json.loads(report.read_text())["local"]
    assert local["passed"] is False and 47.9 < local["backup_age_hours"] < 48.1


def test_the_restore_test_reports_a_backups_age_from_its_manifest(
        pg_server: PostgresCluster, live_db: str, key_file: Path, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    backup(live_db, tmp_path / "b", key_file, now=now - timedelta(hours=48))
    report = tmp_path / "rt.json"
    assert restore_test_script.main(["--local-dir", str(tmp_path / "b"), "--target-url",
                                     live_db, "--key-file", str(key_file),
                                     "--report", str(report)]) == 1
    local = json.loads(report.read_text())["local"]
    assert 47.9 < local["backup_age_hours"] < 48.1
    assert "backups have stopped" in local["problems"][0]
