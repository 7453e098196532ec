"""What a killed drill leaves (its PostgreSQL servers and temp dirs) is swept; a live drill's is
never touched, nor one whose recorded PID now belongs to another process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from caresync_dr.pg.cluster import PostgresNotFoundError, find_pg_bin
from caresync_dr.pg.orphans import (
    DRILL_PREFIX,
    OWNER_FILE,
    Owner,
    keep_owned,
    owned_temp_dir,
    read_owner,
    start_ticks,
    sweep,
)
from tests.pg_servers import _unavailable

OWNER_SCRIPT = """
import sys, time
from caresync_dr.pg.cluster import temp_cluster
cluster = temp_cluster(prefix=sys.argv[1])
cluster.start()
print(cluster.data_dir, flush=True)
time.sleep(600)
"""


@pytest.fixture
def base() -> Iterator[Path]:
    """A temp dir of this test's own (the server user must reach it): the sweep never looks
    at the shared /tmp, where other worktrees' drills run."""
    directory = Path(tempfile.mkdtemp(prefix="caresync-orphans-test-"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def _owner_with_cluster(base: Path) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen([sys.executable, "-c", OWNER_SCRIPT, f"{DRILL_PREFIX}primary-"],
                            env={**os.environ, "TMPDIR": str(base)}, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    return proc, Path(proc.stdout.readline().strip())


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().splitlines()[0])


def test_a_killed_drills_cluster_is_stopped_and_removed_a_live_ones_is_not(base: Path) -> None:
    try:
        find_pg_bin()
    except PostgresNotFoundError as exc:
        _unavailable(f"no PostgreSQL server: {exc}")
    killed, killed_data = _owner_with_cluster(base)
    live, live_data = _owner_with_cluster(base)
    try:
        killed_postmaster, live_postmaster = map(_postmaster_pid, (killed_data, live_data))
        killed.send_signal(signal.SIGKILL)   # no cleanup runs: the server and dir stay
        killed.wait(10)
        assert start_ticks(killed_postmaster) is not None

        swept = sweep(base)

        assert swept == [f"removed {killed_data.parent} of killed process {killed.pid} "
                         f"(stopped postmaster {killed_postmaster})"]
        assert not killed_data.parent.exists()
        assert start_ticks(killed_postmaster) is None
        assert live_data.is_dir() and start_ticks(live_postmaster) is not None
    finally:
        live.kill()
        live.wait(10)
    assert sweep(base) == [f"removed {live_data.parent} of killed process {live.pid} "
                           f"(stopped postmaster {live_postmaster})"]
    assert start_ticks(live_postmaster) is None


def test_a_recycled_pid_is_not_the_owner(base: Path) -> None:
    """The recorded PID runs, but it started at another time: it is another process."""
    directory = Path(tempfile.mkdtemp(prefix=DRILL_PREFIX, dir=base))
    me = Owner.current()
    (directory / OWNER_FILE).write_text(json.dumps(
        {"pid": me.pid, "start_ticks": me.start_ticks - 1, "boot_id": me.boot_id}))
    assert sweep(base) == [f"removed {directory} of killed process {me.pid}"]
    assert not directory.exists()


def test_kept_and_unrecorded_dirs_are_left_another_boots_are_not(base: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(base))
    monkeypatch.setattr(tempfile, "tempdir", None)
    live = owned_temp_dir(DRILL_PREFIX)
    assert read_owner(live) == Owner.current()
    unrecorded = Path(tempfile.mkdtemp(prefix=DRILL_PREFIX, dir=base))
    other_boot = Path(tempfile.mkdtemp(prefix=DRILL_PREFIX, dir=base))
    me = Owner.current()
    (other_boot / OWNER_FILE).write_text(json.dumps(
        {"pid": me.pid, "start_ticks": me.start_ticks, "boot_id": "another boot"}))
    keep_owned()   # --keep: this process's dirs stay after it ends
    kept = read_owner(live)
    assert kept is not None and kept.kept
    (live / OWNER_FILE).write_text(json.dumps(   # as if this process had ended
        {"pid": me.pid, "start_ticks": me.start_ticks - 1, "boot_id": me.boot_id,
         "kept": True}))

    swept = sweep(base)

    assert sorted(swept) == sorted([
        f"left {unrecorded}: it records no owner (being created, or made by an older "
        "version); remove it by hand once no drill uses it",
        f"left {live}: kept for inspection (--keep) by process {me.pid}",
        f"removed {other_boot} of killed process {me.pid}"])
    assert live.is_dir() and unrecorded.is_dir() and not other_boot.exists()
