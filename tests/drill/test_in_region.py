"""The in-region drills end to end (issue 14): the real program in the emulator, real
PostgreSQL, the real ``scripts/app.py`` and ``scripts/pitr.py`` as subprocesses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from caresync_dr.drill.runner import DrillOptions, run_drill
from caresync_dr.drill.scenarios import SCENARIOS
from tests.drill.test_scenarios import _require_postgres

pytestmark = [pytest.mark.drill, pytest.mark.postgres]


def _drill(scenario: str) -> dict[str, Any]:
    _require_postgres()
    options = DrillOptions(scenario=SCENARIOS[scenario], promote_seconds=1.0,
                           scale_seconds=1.0, steady_seconds=0.5)
    return run_drill(options)


def _verdicts(report: dict[str, Any]) -> dict[str, bool]:
    return {v["name"]: v["ok"] for v in report["verifications"]}


def test_app_crash_is_recovered_in_the_primary_region(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Through the script's front door: exit code, printed summary and the JSON report."""
    _require_postgres()
    from caresync_dr.commands.drill import main

    report_path = tmp_path / "drill.json"
    code = main(["--scenario", "app-crash", "--promote-seconds", "1", "--scale-seconds", "1",
                 "--report", str(report_path), "--report-dir", str(tmp_path / "reports")])
    report = json.loads(report_path.read_text())
    assert code == 0, [v for v in report["verifications"] if not v["ok"]]
    verdicts = _verdicts(report)
    assert verdicts["app.py restart succeeded"]
    assert verdicts["writable service back in the primary region"]
    assert report["rpo_transactions"] == 0
    section = report["in_region"]
    # The refresh takes --scale-seconds: service cannot have come back sooner.
    assert report["rto_seconds"] >= 1.0
    assert section["report"]["outcome"] == "completed"
    assert section["degraded_read_only_seconds"] >= 0
    # The common result shape (issue 12): the read-only standby is degraded service with its
    # own time, never the RTO; the chart's series and markers; the reports at their fixed
    # paths, printed on the one screen.
    assert report["degraded_seconds"] == section["degraded_read_only_seconds"]
    assert report["seed_requires"].startswith("application crash: restart the application")
    labels = {m["label"] for m in report["markers"]}
    assert {"outage", "writable service (RTO)", "first good write"} <= labels
    assert report["series"]["t"]
    assert json.loads((tmp_path / "reports" / "app-crash.json").read_text())["ok"]
    assert "<svg" in (tmp_path / "reports" / "app-crash.html").read_text()
    out = capsys.readouterr().out
    assert str(tmp_path / "reports" / "app-crash.html") in out
    assert "verdict       PASS" in out and "degraded" in out


def test_a_bad_release_is_rolled_back_by_auto_scaling() -> None:
    report = _drill("bad-release")
    assert report["ok"], [v for v in report["verifications"] if not v["ok"]]
    section = report["in_region"]
    assert section["exit_code"] == 1, "app.py deploy reports the rollback as a failed deploy"
    assert section["rolled_back"]["status"] == "RollbackSuccessful"
    assert "alarm" in section["rolled_back"]["reason"]
    assert section["broken_serving_seconds"] > 0
    assert report["rto_seconds"] is not None


def test_corruption_is_undone_by_a_point_in_time_restore() -> None:
    report = _drill("corruption")
    assert report["ok"], [v for v in report["verifications"] if not v["ok"]]
    section = report["in_region"]
    assert section["rows_destroyed"] > 0
    lost = section["lost_between_t_and_damage"]
    assert lost["seconds"] > 0 and report["rpo_seconds"] == lost["seconds"]
    pitr = section["report"]
    assert pitr["outcome"] == "completed" and pitr["fenced"] is True
    assert pitr["restored"].endswith("-db-g2")
    assert {c["name"] for c in pitr["checksRestored"]} >= {"writable", "rows in patients"}
    assert any("pulumi import" in step for step in pitr["reconcile"])
