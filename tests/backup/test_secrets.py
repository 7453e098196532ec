"""Issue 10 items 5-7: no secret or patient data where another local user can read it."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from caresync_dr.pg.cluster import PostgresCluster
from scripts import backup as backup_script
from scripts import restore as restore_script
from scripts import restore_test as restore_test_script

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
    (reports / "rollback.json").write_text("stale, world-readable\n")
    assert restore_script.main([str(backups), "--database-url", live_db, "--key-file",
                                str(key_file), "--dry-run",
                                "--report", str(reports / "rollback.json")]) == 0

    written = sorted([*backups.iterdir(), *reports.iterdir()])
    assert [p.name for p in written if p.name.endswith(".json")] == [
        next(p.name for p in written if p.name.endswith(".manifest.json")),
        "backup.json", "restore-test.json", "rollback.json"]
    assert {p.name: mode(p) for p in written} == {p.name: "0o600" for p in written}
