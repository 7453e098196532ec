"""restore_check.py passes for a good backup and fails for the right reasons."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from caresync_dr.backup.keys import no_kms, resolver
from caresync_dr.backup.restore_testing import run_local_restore_test
from caresync_dr.backup.storage import latest_local
from caresync_dr.commands import restore_check as script
from caresync_dr.pg.cluster import PostgresCluster
from tests.backup.helpers import backup

pytestmark = pytest.mark.postgres


def run(tmp_path: Path, *args: str) -> tuple[int, dict[str, object]]:
    code = script.main([*args, "--report", str(tmp_path / "report.json")])
    return code, json.loads((tmp_path / "report.json").read_text())


def scratch_databases(server: PostgresCluster, url: str) -> str:
    live = url.rsplit("/", 1)[1]
    return server.psql(f"SELECT count(*) FROM pg_database WHERE datname LIKE '{live}_%'")


def test_latest_backup_passes_and_is_cleaned_up(pg_server: PostgresCluster, live_db: str,
                                                key_file: Path, tmp_path: Path) -> None:
    backup(live_db, tmp_path / "b", key_file)
    code, report = run(tmp_path, "--local-dir", str(tmp_path / "b"), "--target-url", live_db,
                       "--key-file", str(key_file))
    assert (code, report["result"], report["exit_code"]) == (0, "passed", 0)
    assert isinstance(report["duration_seconds"], float)
    assert scratch_databases(pg_server, live_db) == "0"


def test_the_newest_backup_is_the_one_tested(pg_server: PostgresCluster, live_db: str,
                                             key_file: Path, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    backup(live_db, tmp_path / "b", key_file, now=now - timedelta(hours=6))
    pg_server.psql("DELETE FROM clinical_notes", live_db.rsplit("/", 1)[1])
    newest, _ = backup(live_db, tmp_path / "b", key_file, now=now)
    code, report = run(tmp_path, "--local-dir", str(tmp_path / "b"), "--target-url", live_db,
                       "--key-file", str(key_file))
    assert code == 0
    assert report["local"]["backup"] == newest.name  # type: ignore[index]
    assert newest.tables["public.clinical_notes"].rows == 0


def test_corrupt_latest_backup_fails(pg_server: PostgresCluster, live_db: str, key_file: Path,
                                     tmp_path: Path) -> None:
    _, data = backup(live_db, tmp_path / "b", key_file)
    blob = bytearray(data.read_bytes())
    blob[200] ^= 1
    data.write_bytes(bytes(blob))
    code, report = run(tmp_path, "--local-dir", str(tmp_path / "b"), "--target-url", live_db,
                       "--key-file", str(key_file))
    assert (code, report["result"]) == (1, "failed")
    assert "fails its checksum" in json.dumps(report["local"])
    assert scratch_databases(pg_server, live_db) == "0"


def test_manifest_mismatch_fails_after_restoring(pg_server: PostgresCluster, live_db: str,
                                                 key_file: Path, tmp_path: Path) -> None:
    manifest, _ = backup(live_db, tmp_path / "b", key_file)
    path = tmp_path / "b" / f"{manifest.name}.manifest.json"
    fields = json.loads(path.read_text())
    fields["tables"]["public.appointments"]["rows"] = 601
    path.write_text(json.dumps(fields))
    code, report = run(tmp_path, "--local-dir", str(tmp_path / "b"), "--target-url", live_db,
                       "--key-file", str(key_file))
    assert code == 1
    assert "public.appointments: 600 rows restored, backup recorded 601" in json.dumps(report)
    assert scratch_databases(pg_server, live_db) == "0"


def test_stale_backup_fails_even_if_it_restores(pg_server: PostgresCluster, live_db: str,
                                                key_file: Path, tmp_path: Path) -> None:
    backup(live_db, tmp_path / "b", key_file)
    latest = latest_local(tmp_path / "b")
    result = run_local_restore_test(latest, live_db, resolver(key_file, no_kms),
                                    max_age=timedelta(hours=12),
                                    now=datetime.now(UTC) + timedelta(hours=13))
    assert not result.passed
    assert result.problems == [result.problems[0]] and "backups have stopped" in result.problems[0]


def test_no_backup_is_a_usage_error(live_db: str, tmp_path: Path) -> None:
    code, report = run(tmp_path, "--local-dir", str(tmp_path / "empty"), "--target-url", live_db)
    assert code == 2 and "no complete backup" in str(report["error"])


def test_missing_key_fails_clearly(pg_server: PostgresCluster, live_db: str, key_file: Path,
                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARESYNC_BACKUP_KEY_FILE", raising=False)
    backup(live_db, tmp_path / "b", key_file)
    code, report = run(tmp_path, "--local-dir", str(tmp_path / "b"), "--target-url", live_db)
    # --help says 2 for "no key"; it once exited 1, as if the backup had failed to restore.
    assert code == 2 and "pass --key-file" in json.dumps(report)
