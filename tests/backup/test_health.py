"""health-check.sh: app endpoint and database checks, failures named."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from caresync_dr.commands import health_check
from caresync_dr.pg.cluster import PostgresCluster, free_port

HEALTHY = {"status": "ok", "region": "us-east-1",
           "database": {"writable": True, "role": "primary"}}


@pytest.fixture
def app() -> Iterator[tuple[str, dict[str, Any]]]:
    state: dict[str, Any] = {"status": 200, "body": json.dumps(HEALTHY).encode(),
                             "type": "application/json"}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = self.path == "/api/health"
            self.send_response(state["status"] if found else 404)
            self.send_header("Content-Type", state["type"])
            self.end_headers()
            if found:
                self.wfile.write(state["body"])

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    # A short poll interval: shutdown() waits for the next poll (0.5 s by default).
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", state
    server.shutdown()


@pytest.mark.postgres
def test_all_healthy(app: tuple[str, dict[str, Any]], live_db: str,
                     capsys: pytest.CaptureFixture[str]) -> None:
    assert health_check.main(["--url", app[0], "--database-url", live_db]) == 0
    assert "patients has 300 rows" in capsys.readouterr().out


@pytest.mark.postgres
def test_app_failure_is_named(app: tuple[str, dict[str, Any]], live_db: str,
                              capsys: pytest.CaptureFixture[str]) -> None:
    app[1]["status"] = 503
    assert health_check.main(["--url", app[0], "--database-url", live_db]) == 1
    assert "FAIL app: " in capsys.readouterr().out


@pytest.mark.postgres
def test_missing_patients_table_fails(pg_server: PostgresCluster, live_db: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    pg_server.psql("DROP TABLE patients CASCADE", live_db.rsplit("/", 1)[1])
    assert health_check.main(["--skip-app", "--database-url", live_db]) == 1
    assert "FAIL patients: table patients does not exist" in capsys.readouterr().out


@pytest.mark.parametrize("answer", [
    (b"<!DOCTYPE html><html>Sign in to the guest network</html>", "text/html", "not JSON"),
    (json.dumps({**HEALTHY, "status": "degraded"}).encode(), "application/json", "'degraded'"),
    (json.dumps({**HEALTHY, "database": {"writable": False, "role": "replica"}}).encode(),
     "application/json", "not writable"),
], ids=["a captive portal's page", "status degraded", "a read-only replica"])
def test_an_answer_that_breaks_the_health_contract_fails(
        app: tuple[str, dict[str, Any]], answer: tuple[bytes, str, str],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """HTTP 200 alone passed: a captive portal, or the read-only standby an app crash leaves
    answering (the app-crash runbook's detection command said 'ok')."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    body, kind, said = answer
    app[1].update(body=body, type=kind)
    assert health_check.main(["--url", app[0]]) == 1
    out = capsys.readouterr().out
    assert "FAIL app: " in out and said in out, out


def test_the_health_url_itself_is_not_doubled(app: tuple[str, dict[str, Any]],
                                              monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """`--url https://site/api/health` checked https://site/api/health/api/health."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert health_check.main(["--url", f"{app[0]}/api/health/"]) == 0
    out = capsys.readouterr().out
    assert f"ok   app: {app[0]}/api/health: status ok" in out, out


def test_unreachable_database_and_app_fail(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert health_check.main(["--url", f"http://127.0.0.1:{port}", "--timeout", "1",
                              "--database-url", f"postgresql://x@127.0.0.1:{port}/db"]) == 1
    out = capsys.readouterr().out
    assert "FAIL app: " in out and "FAIL database: cannot connect" in out


def test_nothing_to_check_is_usage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert health_check.main(["--skip-app"]) == 2


def test_a_skipped_database_is_said(app: tuple[str, dict[str, Any]], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Without DATABASE_URL the database is not checked: the output and the report say so,
    instead of a bare 'ok app' that reads like a healthy site."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    report = tmp_path / "health.json"
    assert health_check.main(["--url", app[0], "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "ok   app: " in out
    assert "skip database: not checked: DATABASE_URL is not set" in out
    assert "database" in json.loads(report.read_text())["skipped"]
