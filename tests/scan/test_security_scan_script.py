"""scripts/security_scan.py's verdicts and exit codes, with a stand-in for Checkov's output."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest

from caresync_dr.cli import ExitCode
from caresync_dr.commands import security_scan

SG = "aws_security_group.primary-network-alb-sg"
SKIP = f'''[[skip]]
check = "CKV_AWS_260"
resources = ["{SG}"]
reason = "Port 80 only redirects to HTTPS."
'''


def stand_in(tmp_path: Path, failed_sg: bool) -> Path:
    """An executable that prints what Checkov would: one passed check, maybe one failed."""
    entry = {"check_id": "CKV_AWS_260", "check_name": "port 80 from the internet",
             "resource": SG, "file_path": "/prod-steady.json"}
    report = {"summary": {"checkov_version": "stand-in"}, "results": {
        "passed_checks": [{**entry, "check_id": "CKV_AWS_23"}],
        "failed_checks": [entry] if failed_sg else []}}
    out = tmp_path / "report.json"
    out.write_text(json.dumps(report))
    script = tmp_path / "checkov"
    script.write_text(f"#!{sys.executable}\nimport sys\nsys.stdout.write(open({str(out)!r})"
                      ".read())\nsys.exit(1)\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def scan(tmp_path: Path, skip_text: str, failed_sg: bool) -> tuple[int, dict[str, object]]:
    (tmp_path / "skips.toml").write_text(skip_text)
    code = security_scan.main([
        "--checkov", str(stand_in(tmp_path, failed_sg)), "--skips", str(tmp_path / "skips.toml"),
        "--plans-dir", str(tmp_path / "plans"), "--report", str(tmp_path / "scan.json")])
    report: dict[str, object] = json.loads((tmp_path / "scan.json").read_text())
    return code, report


def test_a_skipped_finding_passes_and_is_listed_with_its_reason(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, report = scan(tmp_path, SKIP, failed_sg=True)
    assert code == ExitCode.OK
    assert report["summary"] == {"prod-steady": {"passed": 1, "failed": 0, "skipped": 1},
                                 "total": {"passed": 1, "failed": 0, "skipped": 1}}
    assert "Port 80 only redirects to HTTPS." in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "plans").iterdir()) == [
        "dr-promoted.json", "dr-steady.json", "prod-bootstrap.json", "prod-steady.json"]


def test_an_unexplained_finding_fails(tmp_path: Path) -> None:
    code, report = scan(tmp_path, "", failed_sg=True)
    assert code == ExitCode.FAILED
    assert report["unexplained"] == [{"check": "CKV_AWS_260", "resource": SG,
                                      "state": "prod-steady",
                                      "name": "port 80 from the internet"}]


def test_a_skip_that_covers_nothing_fails(tmp_path: Path) -> None:
    code, report = scan(tmp_path, SKIP, failed_sg=False)
    assert code == ExitCode.FAILED
    assert report["staleSkips"] == [{"check": "CKV_AWS_260", "resource": SG}]


def test_a_malformed_skip_file_is_a_usage_error(tmp_path: Path) -> None:
    code, report = scan(tmp_path, SKIP.replace("HTTPS.", "HTTPS"), failed_sg=True)
    assert code == ExitCode.USAGE
    assert "one sentence" in str(report["error"])


def test_a_missing_checkov_is_a_usage_error(tmp_path: Path) -> None:
    assert security_scan.main(["--checkov", str(tmp_path / "nope"), "--skips",
                               str(Path(security_scan.SKIP_FILE))]) == ExitCode.USAGE


def test_a_relative_checkov_path_works_from_any_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stand_in(tmp_path, failed_sg=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "skips.toml").write_text("")
    assert security_scan.main(["--checkov", "checkov", "--skips", "skips.toml",
                               "--plans-dir", "plans"]) == ExitCode.OK
