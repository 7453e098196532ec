"""The drill's contract: ``python scripts/failover.py --yes`` as a subprocess, against a moto
server reached through AWS_ENDPOINT_URL, with the timing and health-URL knobs from the
environment. Promotion takes a second here, as an emulated promotion would; the run must
notice it within a couple of poll intervals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.rds.models import RDSBackend, rds_backends
from moto.server import ThreadedMotoServer

from caresync_dr.pg.cluster import free_port
from tests.failover import world as w
from tests.failover.conftest import ROOT

PROMOTE_SECONDS = 1.0


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    try:
        yield url
    finally:
        server.stop()
        for backend in rds_backends[DEFAULT_ACCOUNT_ID].values():
            backend.reset()


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
        health.shutdown()
        health.server_close()
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
