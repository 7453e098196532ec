"""The drill's contract: ``python scripts/failover.py --yes`` as a subprocess, against a moto
server reached through AWS_ENDPOINT_URL, with the timing and health-URL knobs from the
environment. Promotion takes a second here, as an emulated promotion would; the run must
notice it within a couple of poll intervals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.rds.models import RDSBackend, rds_backends
from moto.server import ThreadedMotoServer

from caresync_dr.drill import localhttp
from tests.failover import world as w
from tests.failover.conftest import ROOT

PROMOTE_SECONDS = 1.0
# The longest the fixture waits for moto's server to start or stop, in seconds: both wait
# without a limit in moto (start: for its thread to bind; stop: socketserver's shutdown, which
# polls every 0.5 s), so a dead server thread would hang the test session.
MOTO_SECONDS = 30.0


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    # Port 0: the kernel's choice, bound at once. A probed "free" port can be taken by another
    # run before moto binds it, and moto's start() then waits forever for its dead thread.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    localhttp.run_within(server.start, MOTO_SECONDS, "moto server start")
    port = server.get_host_and_port()[1]
    url = f"http://127.0.0.1:{port}"
    # Every test starts from empty backends (moto keeps them per process, across servers).
    requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    try:
        yield url
    finally:
        try:
            localhttp.run_within(server.stop, MOTO_SECONDS, "moto server stop")
        finally:
            for backend in rds_backends[DEFAULT_ACCOUNT_ID].values():
                backend.reset()


# moto's server thread dies binding (werkzeug exits with SystemExit): that is the case.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_moto_server_that_cannot_bind_fails_its_start_instead_of_hanging() -> None:
    """moto's ``start()`` waits forever for a server thread that died binding (the port
    taken): the fixture's bounded start gives up and says so."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=taken.getsockname()[1],
                                    verbose=False)
        started = time.monotonic()
        with pytest.raises(localhttp.ServerStuckError, match="moto server start"):
            localhttp.run_within(server.start, 0.5, "moto server start")
        assert time.monotonic() - started < 5
    finally:
        taken.close()


def test_failover_script_as_a_subprocess_against_a_moto_server(
        moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _, switch_bucket, _ = w.seed()
    promoted_at: list[float] = []
    monkeypatch.setattr(RDSBackend, "promote_read_replica",
                        w.slow_promotion(PROMOTE_SECONDS, promoted_at))
    health = w.start_health_server(w.standby_health)
    report_path = tmp_path / "report.json"
    try:
        done = w.run_script(ROOT, moto_server,
                            f"http://127.0.0.1:{health.server_address[1]}/api/health",
                            report_path, timeout=60)
    finally:
        localhttp.stop(health)
    assert done.returncode == 0, done.stderr
    assert "FAILOVER COMPLETE" in done.stdout
    assert " INFO    step promote-database done in " in done.stderr   # timestamped progress
    report = json.loads(report_path.read_text())
    promote = {s["name"]: s for s in report["steps"]}["promote-database"]
    assert promote["seconds"] >= PROMOTE_SECONDS
    # Noticed within a few poll intervals (0.05 s growing to 0.2 s) of the emulated promotion
    # finishing; the slack is for a loaded CI machine, the default 5 s interval would fail it.
    noticed = datetime.fromisoformat(promote["ended_at"]).timestamp() - promoted_at[0]
    assert 0 <= noticed < 1.0, noticed
    assert report["rtoSeconds"] >= PROMOTE_SECONDS
    stored = w.client("s3", w.STANDBY).get_object(Bucket=switch_bucket, Key=w.SWITCH_KEY)
    assert stored["Body"].read() == b"FAILOVER"


def _start(root: Path, endpoint: str, health_url: str, report: Path, *argv: str
           ) -> subprocess.Popen[str]:
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "CARESYNC_DR_POLL_SECONDS": "0.05",
           "CARESYNC_DR_POLL_MAX_SECONDS": "0.2", "CARESYNC_DR_WAIT_TIMEOUT_SECONDS": "60",
           "CARESYNC_DR_VERIFY_TIMEOUT_SECONDS": "60", "CARESYNC_DR_HEALTH_URL": health_url}
    return subprocess.Popen([sys.executable, "scripts/failover.py", "--report", str(report),
                             *argv], cwd=root, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _drain(stream: Any, marker: str) -> tuple[threading.Event, list[str], threading.Thread]:
    """Read ``stream`` to its end in a thread (a full pipe would block the process); the event
    is set when ``marker`` has appeared (a prompt has no newline: read characters)."""
    seen: list[str] = []
    found = threading.Event()

    def read() -> None:
        while True:
            char = stream.read(1)
            if not char:
                return
            seen.append(char)
            if not found.is_set() and "".join(seen[-len(marker):]) == marker:
                found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return found, seen, reader


@dataclass(frozen=True)
class Stop:
    sig: signal.Signals
    argv: tuple[str, ...]
    marker: str          # what the run prints just before the signal is sent
    code: int
    said: str


@pytest.mark.parametrize("stop", [
    # A closed terminal at the "type the stack name" prompt: nothing has changed yet.
    Stop(signal.SIGHUP, (), "to go on: ", 3, "stopped by SIGHUP before any change"),
    # systemd or `kill` during the verification wait: the run is resumable.
    Stop(signal.SIGTERM, ("--yes",), "step verify: ", 1, "stopped by SIGTERM"),
], ids=lambda s: s.sig.name)
def test_sighup_and_sigterm_settle_lock_journal_and_report(
        moto_server: str, tmp_path: Path, stop: Stop, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 10, item 8: SIGHUP at the prompt used to kill the process with the lock held."""
    sig, argv, marker, code, said = stop.sig, stop.argv, stop.marker, stop.code, stop.said
    monkeypatch.setattr(RDSBackend, "promote_read_replica", w.slow_promotion(0.1, []))
    inventory, _, _ = w.seed()
    health = w.start_health_server(lambda: {"status": "ok", "region": w.STANDBY,
                                            "database": {"writable": False}})
    report = tmp_path / "run.json"
    try:
        proc = _start(ROOT, moto_server, f"http://127.0.0.1:{health.server_address[1]}/h",
                      report, *argv)
        on_stdout = marker.endswith(": ") and not argv
        out_found, _, _ = _drain(proc.stdout, marker if on_stdout else "\0")
        err_found, err, err_reader = _drain(proc.stderr, "\0" if on_stdout else marker)
        assert (out_found if on_stdout else err_found).wait(30), "".join(err)[-2000:]
        proc.send_signal(sig)
        try:
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        err_reader.join(10)
        stderr = "".join(err)
    finally:
        localhttp.stop(health)
    assert proc.returncode == code, stderr
    assert said in stderr and "Traceback" not in stderr
    ssm = w.client("ssm", w.STANDBY)
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name=inventory.lock_parameter)   # released, not left to go stale
    data = json.loads(report.read_text())
    assert data["exitCode"] == code and said in data["message"]
    assert data["lock"]["released"] is True
    if code == 1:
        journal = json.loads(ssm.get_parameter(Name=inventory.journal_parameter)
                             ["Parameter"]["Value"])
        assert journal["status"] == "interrupted"
