"""Issue 10 items 4 and 5: a restore SIGKILLed at any point leaves no plaintext on disk, no
orphaned loader, the live database as it was (or completely swapped) and accepting connections;
the next run clears what is left, says so, and succeeds."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from caresync_dr.commands import restore_check as restore_test_script
from caresync_dr.commands import rollback as restore_script
from caresync_dr.pg.cluster import PostgresCluster
from tests.backup.helpers import backup, state
from tests.child_output import drain

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]
PATIENT = "Patient 17 Ünïcødé".encode()  # a row of the test database


def kill_at(point: str, command: str, args: list[str],
            tmp: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TMPDIR=str(tmp))
    return subprocess.run([sys.executable, "-m", "tests.backup.killer", point, command, *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def orphans(marker: str) -> list[str]:
    """Live processes whose command line names ``marker`` (the scratch database)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and ("pg_restore" in cmdline or "psql" in cmdline):
            found.append(cmdline)
    return found


def plaintext_files(*directories: Path) -> list[Path]:
    return [p for d in directories for p in d.rglob("*")
            if p.is_file() and PATIENT in p.read_bytes()]


def accepts_connections(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


def scratch_of(server: PostgresCluster, url: str) -> set[str]:
    live = url.rsplit("/", 1)[1]
    return set(server.psql(f"SELECT datname FROM pg_database WHERE datname LIKE "
                           f"'{live}\\_restore%'").split())


# The named cases of issue 10 (a kill before the swap leaving plaintext and scratch databases, a
# kill during the swap) run by default; the rest of the walk with `make faults`.
NAMED = ["stream", "swap-rename", "after-swap"]
POINTS = [pytest.param(p, marks=[] if p in NAMED else [pytest.mark.faults]) for p in
          ["decrypt", "pre-data", "stream", "post-data", "verify", "swap-terminate",
           "swap-rename", "after-swap"]]


@pytest.mark.parametrize("point", POINTS)
def test_a_restore_killed_at_any_point_is_recovered(
        point: str, pg_server: PostgresCluster, live_db: str, key_file: Path,
        tmp_path: Path) -> None:
    _, data = backup(live_db, tmp_path / "b", key_file)
    restored_state = state(live_db)
    live = live_db.rsplit("/", 1)[1]
    pg_server.psql("DELETE FROM clinical_notes WHERE id > 100", live)  # the damage to undo
    damaged_state = state(live_db)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    args = [str(data), "--database-url", live_db, "--key-file", str(key_file),
            "--work-dir", str(tmp)]

    killed = kill_at(point, "restore", args, tmp)

    assert killed.returncode == -9, killed.stderr[-2000:]
    swapped = point == "after-swap"
    assert accepts_connections(live_db)
    assert state(live_db) == (restored_state if swapped else damaged_state)
    deadline = time.monotonic() + 5
    while orphans(live + "_restore_") and time.monotonic() < deadline:
        time.sleep(0.1)  # the kernel delivers the parent-death signal at once; exit takes a moment
    assert orphans(live + "_restore_") == []
    assert plaintext_files(tmp_path / "tmp", tmp_path / "b") == []
    left = scratch_of(pg_server, live_db)

    # The next run clears what is left, says so, and restores.
    report = tmp_path / "report.json"
    assert restore_script.main([*args, "--report", str(report)]) == 0
    cleaned = json.loads(report.read_text())["result"]["leftovers_cleaned"]
    assert sorted(cleaned) == sorted(f"dropped the scratch database {name} of an interrupted "
                                     "restore" for name in left)
    assert state(live_db) == restored_state
    assert scratch_of(pg_server, live_db) == set()


def test_a_plain_sql_restore_killed_mid_load_commits_nothing(
        pg_server: PostgresCluster, live_db: str, tmp_path: Path) -> None:
    live = live_db.rsplit("/", 1)[1]
    plain = subprocess.run([pg_server.tool("pg_dump"), "-d", live_db], check=True,
                           capture_output=True).stdout
    seed_file = tmp_path / "latest.sql.gz"
    seed_file.write_bytes(gzip.compress(plain))
    pg_server.psql("DELETE FROM clinical_notes", live)
    before = state(live_db)
    tmp = tmp_path / "tmp"
    tmp.mkdir()

    killed = kill_at("plain-sql", "restore", [str(seed_file), "--database-url", live_db], tmp)

    assert killed.returncode == -9
    assert state(live_db) == before and accepts_connections(live_db)
    deadline = time.monotonic() + 5
    while orphans(live + "_restore_") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert orphans(live + "_restore_") == []
    assert plaintext_files(tmp) == []
    assert restore_script.main([str(seed_file), "--database-url", live_db]) == 0
    assert scratch_of(pg_server, live_db) == set()


def test_a_restore_test_killed_mid_load_is_cleaned_by_the_next_one(
        pg_server: PostgresCluster, live_db: str, key_file: Path, tmp_path: Path) -> None:
    backup(live_db, tmp_path / "b", key_file)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    args = ["--local-dir", str(tmp_path / "b"), "--target-url", live_db,
            "--key-file", str(key_file)]
    killed = kill_at("stream", "restore_check", args, tmp)
    assert killed.returncode == -9
    live = live_db.rsplit("/", 1)[1]
    left = set(pg_server.psql(f"SELECT datname FROM pg_database WHERE datname LIKE "
                              f"'{live}\\_restoretest%'").split())
    assert len(left) == 1 and plaintext_files(tmp) == []

    report = tmp_path / "rt.json"
    assert restore_test_script.main([*args, "--report", str(report)]) == 0
    assert pg_server.psql(f"SELECT count(*) FROM pg_database WHERE datname LIKE "
                          f"'{live}\\_%'") == "0"
    assert json.loads(report.read_text())["result"] == "passed"


def test_a_second_restore_of_the_same_database_waits_its_turn(
        pg_server: PostgresCluster, live_db: str, key_file: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The lock a killed run held goes with its session; a running one refuses others (4)."""
    from caresync_dr.backup.leftovers import restore_lock
    _, data = backup(live_db, tmp_path / "b", key_file)
    live = live_db.rsplit("/", 1)[1]
    with restore_lock(live_db.rsplit("/", 1)[0] + "/postgres", live):
        code = restore_script.main([str(data), "--database-url", live_db, "--key-file",
                                    str(key_file)])
    assert code == 4
    assert "another restore or restore test of" in capsys.readouterr().err
    assert scratch_of(pg_server, live_db) == set()
    assert restore_script.main([str(data), "--database-url", live_db, "--key-file",
                                str(key_file)]) == 0


def test_the_restore_lock_is_released_when_the_run_ends_not_when_its_session_exits(
        live_db: str) -> None:
    """Found under load: a restore run right after another one exited 4 ("a session that
    just ended"): closing the connection released the lock only once the server's backend had
    exited. The lock is now released before the connection closes, and a holder that is no
    longer a session is waited for briefly."""
    from caresync_dr.backup.leftovers import LOCK_CLASS, restore_lock
    live = live_db.rsplit("/", 1)[1]
    maintenance = live_db.rsplit("/", 1)[0] + "/postgres"
    held = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = "
            "%s::bigint::oid AND objid = (hashtext(%s)::bigint & 4294967295)::oid")
    with psycopg.connect(maintenance, autocommit=True) as probe:
        for _ in range(20):
            with restore_lock(maintenance, live):
                assert probe.execute(held, (LOCK_CLASS, live)).fetchone() == (1,)
            assert probe.execute(held, (LOCK_CLASS, live)).fetchone() == (0,)


def test_a_restore_test_meeting_a_running_restore_is_locked_not_failed(
        pg_server: PostgresCluster, live_db: str, key_file: Path, tmp_path: Path) -> None:
    """Found by a hostile tester: the daily restore test started while an operator's
    rollback.sh ran exited 1, "failed: a backup did not restore or verify", a false alarm
    that the backups are broken. Like rollback.sh it is locked out (4): nothing tested."""
    from caresync_dr.backup.leftovers import restore_lock
    backup(live_db, tmp_path / "b", key_file)
    live = live_db.rsplit("/", 1)[1]
    report = tmp_path / "rt.json"
    args = ["--local-dir", str(tmp_path / "b"), "--target-url", live_db,
            "--key-file", str(key_file), "--report", str(report)]
    with restore_lock(live_db.rsplit("/", 1)[0] + "/postgres", live):
        code = restore_test_script.main(args)
    assert code == 4
    assert json.loads(report.read_text())["outcome"] == "locked"
    assert scratch_of(pg_server, live_db) == set()
    assert restore_test_script.main(args) == 0


@pytest.mark.parametrize("signame", ["SIGTERM", pytest.param("SIGHUP",
                                                              marks=pytest.mark.faults)])
def test_a_restore_stopped_by_a_signal_cleans_up_and_reports(
        signame: str, pg_server: PostgresCluster, live_db: str, key_file: Path,
        tmp_path: Path) -> None:
    """systemd stopping the unit (SIGTERM) or a closed terminal (SIGHUP) mid-restore (here while
    pg_restore builds indexes): the run ends pg_restore, drops its scratch database itself and
    writes its report (exit 1)."""
    import signal
    _, data = backup(live_db, tmp_path / "b", key_file)
    before = state(live_db)
    report = tmp_path / "r.json"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.backup.killer", "--pause", "post-data", "restore", str(data),
         "--database-url", live_db, "--key-file", str(key_file), "--report", str(report)],
        cwd=ROOT, env=dict(os.environ, TMPDIR=str(tmp)), stderr=subprocess.PIPE, text=True)
    assert child.stderr is not None
    said = drain(child.stderr)
    try:
        assert said.wait_for("PAUSED", timeout=120), f"the restore never paused: {said.text()}"
        child.send_signal(getattr(signal, signame))
        assert child.wait(timeout=60) == 1, said.text()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
    result = json.loads(report.read_text())
    assert result["error"].startswith(f"stopped by {signame}")
    assert scratch_of(pg_server, live_db) == set()
    assert state(live_db) == before and plaintext_files(tmp) == []
