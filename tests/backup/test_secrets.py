"""Issue 10 items 5-7: no secret or patient data where another local user can read it."""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from caresync_dr.commands import backup as backup_script
from caresync_dr.commands import restore_check as restore_test_script
from caresync_dr.commands import rollback as restore_script
from caresync_dr.pg.cluster import PostgresCluster

pytestmark = pytest.mark.postgres


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual interactive umask: files come out 0644 unless the code says otherwise."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> str:
    return oct(stat.S_IMODE(path.stat().st_mode))


def test_manifests_and_reports_are_owner_only(open_umask: None, pg_server: PostgresCluster,
                                              live_db: str, key_file: Path,
                                              tmp_path: Path) -> None:
    backups, reports = tmp_path / "b", tmp_path / "reports"
    assert backup_script.main(["--database-url", live_db, "--local-dir", str(backups),
                               "--key-file", str(key_file),
                               "--report", str(reports / "backup.json")]) == 0
    assert restore_test_script.main(["--local-dir", str(backups), "--target-url", live_db,
                                     "--key-file", str(key_file),
                                     "--report", str(reports / "restore-test.json")]) == 0
    (reports / "rollback.json").write_text('{"outcome": "stale, world-readable"}\n')
    assert restore_script.main([str(backups), "--database-url", live_db, "--key-file",
                                str(key_file), "--dry-run",
                                "--report", str(reports / "rollback.json")]) == 0

    written = sorted([*backups.iterdir(), *reports.iterdir()])
    assert [p.name for p in written if p.name.endswith(".json")] == [
        next(p.name for p in written if p.name.endswith(".manifest.json")),
        "backup.json", "restore-test.json", "rollback.json"]
    assert {p.name: mode(p) for p in written} == {p.name: "0o600" for p in written}


PASSWORD = "S3cret pw/@:%"  # URL-special characters, so it must travel percent-encoded


@pytest.fixture
def password_url(pg_server: PostgresCluster, live_db: str) -> Iterator[str]:
    """``live_db`` through a role that must authenticate with its password (SCRAM)."""
    role = "caresync_pw_" + live_db.rsplit("_", 1)[1]
    pg_server.psql(f"CREATE ROLE {role} LOGIN SUPERUSER PASSWORD '{PASSWORD}'")
    hba = pg_server.data_dir / "pg_hba.conf"
    original = hba.read_text()
    hba.write_text(f"host all {role} 127.0.0.1/32 scram-sha-256\n" + original)
    pg_server.psql("SELECT pg_reload_conf()")
    try:
        yield (f"postgresql://{role}:{urllib.parse.quote(PASSWORD, safe='')}@127.0.0.1:"
               f"{pg_server.port}/{live_db.rsplit('/', 1)[1]}")
    finally:
        hba.write_text(original)
        pg_server.psql("SELECT pg_reload_conf()")
        owned = pg_server.psql("SELECT datname FROM pg_database d JOIN pg_roles r "
                               f"ON r.oid = d.datdba WHERE r.rolname = '{role}'").split()
        for name in owned:  # the restored copy and the previous database
            pg_server.psql(f'DROP DATABASE "{name}" WITH (FORCE)')
        pg_server.psql(f"DROP ROLE {role}")


class Launches:
    """Every process started meanwhile: its argv and environment."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[tuple[list[str], dict[str, str]]] = []
        real = subprocess.Popen

        def recording(argv: Any, *args: Any, **kwargs: Any) -> Any:
            self.seen.append(([str(a) for a in argv], dict(kwargs.get("env") or os.environ)))
            return real(argv, *args, **kwargs)

        monkeypatch.setattr(subprocess, "Popen", recording)


def test_the_password_never_reaches_a_command_line(
        password_url: str, key_file: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    launches = Launches(monkeypatch)
    assert backup_script.main(["--database-url", password_url, "--local-dir",
                               str(tmp_path / "b"), "--key-file", str(key_file)]) == 0
    assert restore_script.main([str(tmp_path / "b"), "--database-url", password_url,
                                "--key-file", str(key_file), "--report",
                                str(tmp_path / "r.json")]) == 0

    tools = {Path(argv[0]).name for argv, _ in launches.seen}
    assert {"pg_dump", "pg_restore"} <= tools
    for argv, env in launches.seen:
        assert not any(PASSWORD in a or urllib.parse.quote(PASSWORD, safe="") in a
                       for a in argv), argv
        if any("dbname" in a or a.startswith("postgresql") for a in argv):
            assert env.get("PGPASSWORD") == PASSWORD, argv  # how the tools authenticate
    assert PASSWORD not in capsys.readouterr().err + (tmp_path / "r.json").read_text()


@pytest.mark.parametrize("url", [
    "caresync:S3cretPw@127.0.0.1:5432/caresync",            # the postgresql:// prefix forgotten
    "postgresql://caresync:S3cretPw@127.0.0.1:5432",        # no database named
    "host=127.0.0.1 password=S3cretPw dbname",              # a malformed keyword string
])
def test_a_malformed_database_url_is_refused_without_echoing_it(
        url: str, tmp_path: Path, key_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "seed.sql.gz").write_bytes(b"")
    runs = {
        "backup": backup_script.main(["--database-url", url, "--key-file", str(key_file),
                                      "--local-dir", str(tmp_path / "b"),
                                      "--report", str(tmp_path / "backup.json")]),
        "rollback": restore_script.main([str(tmp_path / "seed.sql.gz"), "--database-url", url,
                                         "--report", str(tmp_path / "rollback.json")]),
        "restore_check": restore_test_script.main([
            "--local-dir", str(tmp_path), "--target-url", url,
            "--report", str(tmp_path / "restore_check.json")]),
    }
    assert runs == {"backup": 2, "rollback": 2, "restore_check": 2}
    output = capsys.readouterr().err + "".join(
        (tmp_path / f"{name}.json").read_text() for name in runs)
    assert "S3cretPw" not in output
    assert "not a database URL" in output or "names no database" in output


def files_holding(directory: Path, needle: bytes) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_no_plaintext_reaches_the_disk_during_a_restore(
        live_db: str, key_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10 item 5: the decrypted dump was a file in $TMPDIR/caresync-restore-*/ for the
    whole load. Now the data streams from the decryptor into the server."""
    from caresync_dr.backup import copier
    from tests.backup.helpers import backup
    _, data = backup(live_db, tmp_path / "b", key_file)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)
    patient = "Patient 17 Ünïcødé".encode()  # a row of the live database
    seen_on_disk: list[Path] = []
    real = copier.TableCopier.on_table_data

    def look_at_the_disk(self: Any, entry: Any, payload: bytes) -> None:
        seen_on_disk.extend(files_holding(tmp_path, patient))
        real(self, entry, payload)

    monkeypatch.setattr(copier.TableCopier, "on_table_data", look_at_the_disk)
    assert restore_script.main([str(data), "--database-url", live_db, "--key-file",
                                str(key_file), "--work-dir", str(scratch), "--no-swap"]) == 0
    assert seen_on_disk == []
    assert files_holding(tmp_path, patient) == []
