"""The local copy of a run's journal is written as reports are (found by hostile6): mode 0600
(it names hosts and ARNs) whatever the umask, and no temporary file is left when the write
fails (a full disk). Before, it was 0644 and a failed replace left `<name>.tmp` behind."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from caresync_dr.operations.journal import Journal


def _journal(path: Path) -> Journal:
    journal = Journal(None, "/caresync-dr/test/journal", path)  # type: ignore[arg-type]
    journal.data = {"runId": "r1", "status": "running", "steps": [], "facts": {}}
    return journal


def test_the_local_journal_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "failover-journal.json"
    old = os.umask(0o022)
    try:
        _journal(path)._save_local()
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert '"runId": "r1"' in path.read_text()


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "failover-journal.json"

    def full(*_: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    _journal(path)._save_local()          # a convenience copy: a warning, not a failure
    assert list(tmp_path.iterdir()) == []
