"""A tampered or damaged manifest is a corrupt backup (exit 3, one line), never a crash.

The manifest beside an encrypted backup is not authenticated (only the name and start time are,
by the encrypted header): every field the restore reads may be of any JSON type, or the file may
not be JSON text at all. Found by a hostile tester: a start time without a zone, ``tables`` as a
list, a JSON array, deeply nested JSON and non-UTF-8 bytes each crashed ``rollback.sh`` with
"unexpected error ... (a bug)", exit 1; a ``segments`` list of garbage, ``key: null`` and an
empty ``database_state`` were accepted (the last silently skipping the database-state check).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from caresync_dr.commands import restore_check as restore_test_script
from caresync_dr.commands import rollback as restore_script
from caresync_dr.pg.cluster import PostgresCluster
from tests.backup.helpers import backup, state

pytestmark = pytest.mark.postgres


def _set(field: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    def edit(manifest: dict[str, Any]) -> Any:
        manifest[field] = value
        return manifest
    return edit


def _table_rows(manifest: dict[str, Any]) -> Any:
    for entry in manifest["tables"].values():
        entry["rows"] = True
    return manifest


TAMPERS: dict[str, Callable[[dict[str, Any]], Any] | bytes] = {
    "started-at-without-zone": lambda m: {**m, "started_at": m["started_at"][:19]},
    "started-at-a-number": _set("started_at", 5),
    "size-as-text": lambda m: {**m, "size_bytes": str(m["size_bytes"])},
    "tables-a-list": _set("tables", []),
    "rows-a-boolean": _table_rows,
    "segments-garbage": _set("segments", [{"chunk": "a"}]),
    "key-null": _set("key", None),
    "database-state-empty": _set("database_state", {}),
    "sha256-not-hex": _set("sha256", "z" * 64),
    "a-json-array": lambda m: [m],
    "deeply-nested": b"[" * 100_000 + b"]" * 100_000,
    "not-utf-8": b"\xff\xfe{}",
}


@pytest.mark.parametrize("tamper", list(TAMPERS), ids=list(TAMPERS))
def test_a_tampered_manifest_is_refused_as_corrupt(  # noqa: PLR0917
        tamper: str, pg_server: PostgresCluster, live_db: str, key_file: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    manifest, data = backup(live_db, tmp_path / "b", key_file)
    manifest_path = data.with_name(f"{manifest.name}.manifest.json")
    edit = TAMPERS[tamper]
    if isinstance(edit, bytes):
        manifest_path.write_bytes(edit)
    else:
        manifest_path.write_text(json.dumps(edit(json.loads(manifest_path.read_text()))))
    pg_server.psql("DELETE FROM clinical_notes", live_db.rsplit("/", 1)[1])
    before = state(live_db)

    code = restore_script.main([str(data), "--database-url", live_db,
                                "--key-file", str(key_file)])

    err = capsys.readouterr().err
    assert code == 3, err
    assert "unexpected error" not in err     # the CLI's words for a crash (a bug)
    assert "not a valid backup manifest" in err
    assert state(live_db) == before

    report = tmp_path / "rt.json"
    assert restore_test_script.main(["--local-dir", str(tmp_path / "b"), "--target-url",
                                     live_db, "--key-file", str(key_file),
                                     "--report", str(report)]) == 1
    err = capsys.readouterr().err
    assert "unexpected error" not in err     # the CLI's words for a crash (a bug)
    assert json.loads(report.read_text())["local"]["passed"] is False


@pytest.mark.parametrize("kind", ["fifo", "device", "dangling-link"])
def test_a_backup_path_that_is_not_a_file_is_named_for_what_it_is(
        kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A FIFO, /dev/zero behind a link, or a dangling link was reported as "does not exist"."""
    path = tmp_path / "backup_20260101_000000.sql.gz"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero" if kind == "device" else tmp_path / "gone")
    assert restore_script.main([str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" not in err
    assert ("symbolic link to nothing" if kind == "dangling-link" else "not a regular file") in err
