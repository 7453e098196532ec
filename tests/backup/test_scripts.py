"""Exit codes of the command-line fronts for bad input (no server needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from caresync_dr.commands import backup as backup_script
from caresync_dr.commands import rollback as restore_script
from caresync_dr.pg.cluster import free_port


def test_backup_without_a_key_is_usage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("CARESYNC_BACKUP_KEY_FILE", raising=False)
    code = backup_script.main(["--database-url", "postgresql://x@127.0.0.1/db",
                               "--local-dir", str(tmp_path)])
    assert code == 2 and "no key" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_backup_without_a_database_is_usage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            key_file: Path) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert backup_script.main(["--key-file", str(key_file), "--local-dir", str(tmp_path)]) == 2


def test_backup_of_an_unreachable_database_fails_cleanly(
        tmp_path: Path, key_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = backup_script.main(["--database-url", f"postgresql://x@127.0.0.1:{free_port()}/db",
                               "--key-file", str(key_file), "--local-dir", str(tmp_path / "b"),
                               "--report", str(tmp_path / "r.json")])
    assert code == 1 and "backup failed" in capsys.readouterr().err
    assert not list((tmp_path / "b").glob("backup_*"))  # no partial backup left behind
    assert '"result": "failed"' in (tmp_path / "r.json").read_text()


def test_rollback_of_a_missing_file_is_usage(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code = restore_script.main([str(tmp_path / "backup_20260101_000000.sql.gz"),
                                "--database-url", "postgresql://x@127.0.0.1/db"])
    assert code == 2 and "does not exist" in capsys.readouterr().err


def test_rollback_without_database_url_is_usage(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert restore_script.main([str(tmp_path / "x.sql.gz")]) == 2


def test_rollback_with_the_server_down_fails_and_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import gzip
    seed_file = tmp_path / "latest.sql.gz"
    seed_file.write_bytes(gzip.compress(b"SELECT 1;\n"))
    code = restore_script.main([str(seed_file), "--database-url",
                                f"postgresql://x@127.0.0.1:{free_port()}/db"])
    assert code == 1 and "database error" in capsys.readouterr().err
