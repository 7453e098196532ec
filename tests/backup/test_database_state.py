"""Issue 11 item 1: what belongs to the database itself comes back with it, and verification
compares it field by field (encoding, locale and provider, owner, ACL, settings, per-role
settings, comment, extension versions)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from caresync_dr.backup.dbstate import DatabaseState, differences, state_of
from caresync_dr.commands import backup as backup_script
from caresync_dr.commands import rollback as restore_script
from tests.backup.conftest import Site
from tests.backup.helpers import state

pytestmark = pytest.mark.postgres


def take(site: Site, key_file: Path, tmp_path: Path) -> int:
    return backup_script.main(["--database-url", site.url(), "--local-dir", str(tmp_path / "b"),
                               "--key-file", str(key_file)])


def restore(site: Site, key_file: Path, tmp_path: Path) -> int:
    return restore_script.main([str(tmp_path / "b"), "--database-url", site.url(),
                                "--key-file", str(key_file)])


@pytest.mark.parametrize(("encoding", "locale", "value"), [
    ("LATIN1", "C", "José Müller, Ærø"),
    ("SQL_ASCII", "C", "ASCII only"),
])
def test_a_database_in_another_encoding_round_trips(  # noqa: PLR0917
        encoding: str, locale: str, value: str, site: Site, key_file: Path,
        tmp_path: Path) -> None:
    """LATIN1: every restore failed ("content fingerprint differs"). SQL_ASCII: the backup
    itself failed (invalid snapshot identifier "b'0000...'": psycopg returns bytes there)."""
    site.server.psql(f"CREATE DATABASE {site.name} TEMPLATE template0 ENCODING '{encoding}' "
                     f"LC_COLLATE '{locale}' LC_CTYPE '{locale}'")
    with psycopg.connect(site.url(), autocommit=True) as conn:
        conn.execute("CREATE TABLE patients (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO patients VALUES (1, %s), (2, 'x')", (value,))
    before, before_state = state(site.url()), state_of(site.url())
    assert take(site, key_file, tmp_path) == 0
    site.sql("DELETE FROM patients")

    assert restore(site, key_file, tmp_path) == 0

    assert state(site.url()) == before
    assert state_of(site.url()) == before_state
    with psycopg.connect(site.url()) as conn:
        conn.execute("SET client_encoding = 'UTF8'")
        assert conn.execute("SELECT name FROM patients WHERE id = 1").fetchone() == (value,)


def test_owner_settings_acl_comment_and_extensions_come_back(
        site: Site, key_file: Path, tmp_path: Path) -> None:
    owner, app, outsider = site.role("owner"), site.role("app"), site.role("outsider")
    site.server.psql(f"CREATE ROLE {owner} NOLOGIN; CREATE ROLE {app} LOGIN; "
                     f"CREATE ROLE {outsider} LOGIN")
    site.server.psql(f"CREATE DATABASE {site.name} OWNER {owner} TEMPLATE template0 "
                     "LOCALE_PROVIDER icu ICU_LOCALE 'de-DE' LOCALE 'C.UTF-8'")
    site.sql(f"""
        SET ROLE {owner};
        CREATE SCHEMA clinic;
        CREATE TABLE clinic.visits (id int PRIMARY KEY, reason text);
        INSERT INTO clinic.visits SELECT g, 'reason ' || g FROM generate_series(1, 20) g;
        GRANT USAGE ON SCHEMA clinic TO {app};
        GRANT SELECT ON clinic.visits TO {app};
        RESET ROLE;
        CREATE EXTENSION citext VERSION '1.4';
        ALTER DATABASE {site.name} SET search_path = clinic, public;
        ALTER DATABASE {site.name} SET statement_timeout = '30s';
        ALTER ROLE {app} IN DATABASE {site.name} SET work_mem = '8MB';
        REVOKE CONNECT ON DATABASE {site.name} FROM PUBLIC;
        GRANT CONNECT ON DATABASE {site.name} TO {app};
        COMMENT ON DATABASE {site.name} IS 'CareSync clinic, 2026';
        """)
    recorded = state_of(site.url())
    assert recorded.extensions["citext"] == "1.4" and recorded.locale_provider == "icu"
    assert take(site, key_file, tmp_path) == 0
    site.sql("DELETE FROM clinic.visits")

    assert restore(site, key_file, tmp_path) == 0

    assert differences(recorded, state_of(site.url())) == []
    # What it means for the application: its unqualified query works, outsiders stay out.
    with psycopg.connect(site.url(app)) as conn:
        assert conn.execute("SELECT count(*) FROM visits").fetchone() == (20,)
        assert conn.execute("SHOW work_mem").fetchone() == ("8MB",)
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(site.url(outsider)).close()


def test_a_restore_that_changes_the_database_fails_loudly(
        site: Site, key_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The manifest records an extension version this server cannot install (as when a
    target lacks the backup's version): exit 3, the field named, the live database
    untouched."""
    site.server.psql(f"CREATE DATABASE {site.name}")
    site.sql("CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
    backups = tmp_path / "b"
    assert backup_script.main(["--database-url", site.url(), "--local-dir", str(backups),
                               "--key-file", str(key_file)]) == 0
    manifest_path = next(backups.glob("*.manifest.json"))
    manifest = json.loads(manifest_path.read_text())
    manifest["database_state"]["extensions"]["no_such_extension"] = "9.9"
    manifest_path.write_text(json.dumps(manifest))
    before = state(site.url())

    assert restore_script.main([str(backups), "--database-url", site.url(), "--key-file",
                                str(key_file)]) == 3

    err = capsys.readouterr().err
    assert "extension no_such_extension: restored not installed, the backup recorded 9.9" in err
    assert state(site.url()) == before
    assert site.server.psql(f"SELECT count(*) FROM pg_database WHERE datname LIKE "
                            f"'{site.name}\\_%'") == "0"


def test_the_state_survives_its_json_form() -> None:
    state = DatabaseState(encoding="UTF8", collate="C", ctype="C", locale_provider="libc",
                          icu_locale=None, owner="o", tablespace="pg_default",
                          connection_limit=5, acl=("=c/o", "o=CTc/o"),
                          settings=("search_path=clinic, public",),
                          role_settings={"app": ("work_mem=8MB",)}, comment="c",
                          extensions={"plpgsql": "1.0"})
    assert DatabaseState.from_json(json.loads(json.dumps(state.to_json()))) == state
