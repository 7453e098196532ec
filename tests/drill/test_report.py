"""The drill's one-screen summary, its verdict and the report files: pure functions over the
common result shape (docs/drills.md), no drill run needed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from caresync_dr.drill.load import Ack, write_series
from caresync_dr.drill.report import REPORTS_ENV, report_paths, reports_dir, summary, verdict

REPORT: dict[str, Any] = {
    "scenario": "region-outage", "ok": True,
    "broken": "the primary region is gone",
    "seed_requires": "complete system failure: the DR site serves writes within the RTO",
    "rto_seconds": 9.21, "rto_meaning": "outage -> writable service", "degraded_seconds": 0.31,
    "critical_path_seconds": 8.1, "rto_to_critical_path_ratio": 1.137,
    "rpo_seconds": 0.0, "rpo_transactions": 0,
    "writes": {"acknowledged": 80, "failed": 351, "lost": 0,
               "acknowledged_by_old_primary": 60},
    "objectives": [
        {"name": "orchestration overhead (RTO / critical path)", "measured": 1.137,
         "target": "<= 1.15", "met": True, "meaning": "the tooling adds too much"},
        {"name": "drill RPO", "measured": 0.0, "target": "<= 1.0 s", "met": True,
         "meaning": "writes were lost"}],
    "verifications": [
        {"name": "failover.py succeeded", "ok": True, "detail": "exit code 0"},
        {"name": "promoted database accepts writes", "ok": True, "detail": "a test write"}],
    "timeline": [{"t": 0.0, "event": "OUTAGE"}],
}


def test_the_summary_is_one_screen_with_each_check_once() -> None:
    text = summary(REPORT, (Path("/r/region-outage.json"), Path("/r/region-outage.html")))
    lines = text.splitlines()
    assert len(lines) <= 40 and all(len(line) <= 100 for line in lines)
    for check in REPORT["verifications"]:
        assert sum(check["name"] in line for line in lines) == 1
    for label in ("broken", "RTO", "degraded", "RPO", "writes lost", "verdict", "reports"):
        assert any(line.startswith(label) for line in lines), label
    assert "/r/region-outage.html" in text
    assert "OUTAGE" not in text  # the event timeline is in the reports, not on the screen


def test_a_long_report_path_is_printed_whole_to_be_copied() -> None:
    """A path longer than the screen, or with hyphens, is on one line, never broken (seen
    under pytest-xdist's longer temp dirs: the HTML path was split across two lines)."""
    base = Path("/tmp/pytest-of-root/pytest-1271/popen-gw0/test_app_crash_is_recovered_in0"
                "/reports")
    paths = (base / "app-crash.json", base / "app-crash.html")
    lines = summary(REPORT, paths).splitlines()
    assert any(line.split()[-1] == str(paths[0]) for line in lines if line.strip())
    assert any(line.split()[-1] == str(paths[1]) for line in lines if line.strip())


def test_an_unmet_target_is_stated_beside_the_verdict_never_a_bare_pass() -> None:
    report = copy.deepcopy(REPORT)
    report["objectives"][0].update(measured=1.19, met=False)
    said = verdict(report)
    assert said.startswith("PASS: every check held, but 1 target NOT met")
    assert "1.19" in said and "the tooling adds too much" in said
    [line] = [x for x in summary(report).splitlines() if x.startswith("verdict")]
    assert "NOT met" in line
    assert verdict(REPORT) == "PASS: every check held"


def test_a_failed_check_fails_the_verdict() -> None:
    report = copy.deepcopy(REPORT)
    report["ok"] = False
    report["verifications"][1]["ok"] = False
    assert verdict(report) == "FAIL: 1 of 2 checks failed"
    assert "FAILED promoted database accepts writes" in summary(report)


def test_a_crashed_drill_summarises_its_phases_and_error() -> None:
    report = {"scenario": "app-crash", "ok": False, "error": "RuntimeError: deploy exploded",
              "verifications": [], "timeline": [],
              "steps": [{"name": "start emulated AWS", "ok": True, "detail": ""},
                        {"name": "deploy", "ok": False, "detail": "RuntimeError: boom"}]}
    text = summary(report)
    assert "FAIL: the drill could not finish (RuntimeError: deploy exploded)" in text
    assert "FAILED deploy: RuntimeError: boom" in text


def test_an_in_region_recovery_counts_lost_writes_without_an_old_primary() -> None:
    """app-crash's summary said 'writes lost 0 of ? acknowledged by the old primary'."""
    report = copy.deepcopy(REPORT)
    report["writes"] = {"acknowledged": 69, "failed": 219, "survivor": "primary"}
    (line,) = [x for x in summary(report).splitlines() if x.startswith("writes lost")]
    assert "?" not in line and "old primary" not in line
    assert line.split(None, 2)[2] == "0; 69 acknowledged, 219 failed in all"


def test_a_new_scenario_with_a_minimal_result_shows_up_unchanged() -> None:
    """Other scenarios (switchover, failback) only need the common shape's two keys."""
    text = summary({"scenario": "planned-switchover", "ok": True,
                    "verifications": [{"name": "RPO 0", "ok": True, "detail": "0 writes lost"}]})
    assert "DRILL planned-switchover: PASS" in text and "ok     RPO 0" in text


def test_write_series_counts_writes_and_failures_per_second_from_the_outage() -> None:
    acks = [Ack(1, "primary", 99.0), Ack(2, "primary", 99.1), Ack(3, "standby", 101.3)]
    series = write_series(acks, [100.2, 100.3, 100.6], origin=100.0, bin_seconds=0.5)
    assert series["t"] == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert series["acknowledged_per_second"] == [4.0, 0.0, 0.0, 0.0, 2.0]
    assert series["failed_per_second"] == [0.0, 0.0, 4.0, 2.0, 0.0]
    assert write_series([], [], origin=0.0)["t"] == []


def test_reports_go_to_a_fixed_path_per_scenario(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.delenv(REPORTS_ENV, raising=False)
    assert reports_dir(tmp_path) == tmp_path / "drill-reports"
    monkeypatch.setenv(REPORTS_ENV, str(tmp_path / "elsewhere"))
    assert reports_dir(tmp_path) == tmp_path / "elsewhere"
    assert report_paths(tmp_path, "app-crash") == (tmp_path / "app-crash.json",
                                                   tmp_path / "app-crash.html")


def test_drill_reports_are_gitignored() -> None:
    ignored = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().split()
    assert "/drill-reports/" in ignored


def test_an_unwritable_reports_dir_is_a_usage_error_before_anything_runs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from caresync_dr.commands.drill import main

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["--report-dir", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert "reports directory" in err and "Traceback" not in err


def test_the_reports_are_written_even_when_the_drill_crashes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from caresync_dr.commands.drill import main
    from caresync_dr.drill import runner

    def crash(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("deploy exploded")

    monkeypatch.setattr(runner, "build_world", crash)
    assert main(["--scenario", "db-failure", "--report-dir", str(tmp_path)]) == 1
    report = json.loads((tmp_path / "db-failure.json").read_text())
    assert report["error"] == "RuntimeError: deploy exploded"
    assert "Drill db-failure: FAIL" in (tmp_path / "db-failure.html").read_text()
    out = capsys.readouterr().out
    assert str(tmp_path / "db-failure.html") in out and "could not finish" in out


@pytest.mark.parametrize("interrupted_in", ["html", "summary"])
def test_ctrl_c_while_the_reports_are_written_leaves_no_passing_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interrupted_in: str) -> None:
    """A drill that passed, then Ctrl-C while its reports were written (after the JSON, in the
    HTML; or in the summary, after both): the reports said ok true while the process exited 1.
    Every report now says interrupted, ok false, and the exit is the documented 1."""
    from caresync_dr.commands.drill import main
    from caresync_dr.drill import html_report, runner
    from caresync_dr.drill import report as report_module

    monkeypatch.setattr(runner, "run_drill", lambda options: copy.deepcopy(REPORT))
    target = (html_report, "render") if interrupted_in == "html" else (report_module, "summary")
    original = getattr(*target)
    calls: list[int] = []

    def interrupt_once(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(*target, interrupt_once)
    own = tmp_path / "own.json"
    assert main(["--report-dir", str(tmp_path), "--report", str(own)]) == 1
    for path in (own, tmp_path / "region-outage.json"):
        written = json.loads(path.read_text())
        assert written["ok"] is False, path
        assert written["interrupted"] is True and "interrupted" in written["error"], path
        assert written["verifications"] == REPORT["verifications"], path
    assert "Drill region-outage: FAIL" in (tmp_path / "region-outage.html").read_text()
