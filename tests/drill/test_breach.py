"""The breach drill end to end (issue 13 item 3): the real program in the emulator, real
PostgreSQL, the real ``scripts/breach.py`` as a subprocess against an attacker who is inside."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.drill.test_scenarios import _require_postgres

pytestmark = [pytest.mark.drill, pytest.mark.postgres]


def test_a_breach_is_contained_while_the_app_serves_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Through the script's front door (``drill.py --scenario breach``): exit code, JSON
    report in the drill's common result shape."""
    _require_postgres()
    from caresync_dr.commands.drill import main

    report_path = tmp_path / "drill.json"
    code = main(["--scenario", "breach", "--promote-seconds", "1", "--scale-seconds", "1",
                 "--report", str(report_path), "--report-dir", str(tmp_path / "reports")])
    report = json.loads(report_path.read_text())
    failed = [v for v in report["verifications"] if not v["ok"]]
    assert code == 0 and report["ok"], failed
    verdicts = {v["name"] for v in report["verifications"]}
    assert verdicts >= {
        "the attacker's database session is gone",
        "the leaked app password is refused by the server",
        "the old master password is refused by the server",
        "the leaked access key is inactive",
        "the instance is isolated with its evidence",
        "the app serves with the rotated credentials",
        "the scope names what the key read",
        "no acknowledged write lost"}
    # The common result shape the drill's summary and HTML report read.
    assert {"scenario", "ok", "rto_seconds", "rpo_seconds", "rpo_transactions", "writes",
            "verifications", "steps", "timeline"} <= set(report)
    assert report["scenario"] == "breach" and report["rpo_transactions"] == 0
    assert report["seed_requires"].startswith("data breach: immediately isolate")
    assert report["rto_meaning"].startswith("breach discovered")
    labels = {m["label"] for m in report["markers"]}
    assert {"outage", "breach.py launched", "contained (last revocation verified)",
            "writable service (RTO)"} <= labels
    assert "<svg" in (tmp_path / "reports" / "breach.html").read_text()
    assert "containment" in capsys.readouterr().out
    section = report["in_region"]
    response = section["report"]
    assert response["outcome"] == "completed"
    # Containment is verified inside the command's run: after its launch, before its exit.
    assert 0 < section["time_to_containment_seconds"] < section["command_seconds"]
    assert response["timeToContainmentSeconds"] <= section["time_to_containment_seconds"]
    # The app's writes went on through the response, on the rotated password afterwards.
    assert section["writes_during_response"] > 0
    assert report["writes"]["acknowledged"] > section["writes_during_response"]
    steps = {s["name"]: s["outcome"] for s in response["steps"]}
    assert steps["terminate-sessions"] == "done" and steps["verify-containment"] == "done"
