"""Two backups started in the same second (a timer and an operator) share a name: exactly one
may write it, and what it wrote must be intact.

Found by a hostile tester: three ``backup.py`` runs at once; one exited 0 and its backup failed
its checksum (another run's failure handler deleted the shared ``.partial`` file while it was
being written, a third wrote a new one, and the rename published a mix).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from caresync_dr.backup.errors import BackupError
from caresync_dr.commands import rollback as restore_script
from tests.backup.helpers import backup

pytestmark = pytest.mark.postgres


def test_backups_of_the_same_second_never_publish_a_corrupt_file(
        live_db: str, key_file: Path, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    directory = tmp_path / "b"
    outcomes: list[str] = []
    start = threading.Barrier(4)

    def one() -> None:
        start.wait()
        try:
            backup(live_db, directory, key_file, now=now)
            outcomes.append("written")
        except BackupError as exc:
            outcomes.append(f"refused: {exc}")

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.count("written") == 1, outcomes
    assert all("another backup" in o or "already exists" in o
               for o in outcomes if o != "written"), outcomes
    (data,) = directory.glob("*.dump.enc")
    assert not list(directory.glob("*.partial"))
    assert restore_script.main([str(data), "--key-file", str(key_file), "--dry-run"]) == 0
