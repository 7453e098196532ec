"""The offline preview of the real program against the committed snapshots."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from caresync_dr.cli import ExitCode
from caresync_dr.commands import preview as preview_script
from caresync_dr.offline.runtime import run_program
from caresync_dr.preview import snapshot
from tests import offline_runs
from tests.ci_paths import ROOT, SNAPSHOTS


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_program_matches_the_committed_snapshot(stack: str) -> None:
    committed = snapshot.load(snapshot.path_for(stack, SNAPSHOTS))
    current = snapshot.build(stack, offline_runs.steady()[stack].resources)
    changes = snapshot.diff(committed, current)
    assert changes == [], (
        f"the {stack} infrastructure changed; if intended, run `python scripts/preview.py "
        f"--stack {stack} --update` and commit tests/snapshots/preview-{stack}.json:\n"
        + "\n".join(changes))


def test_a_changed_property_fails_against_the_snapshot() -> None:
    committed = snapshot.load(snapshot.path_for("dr", SNAPSHOTS))
    run = offline_runs.dr_with({"healthCheckFailureThreshold": "5"})
    changes = snapshot.diff(committed, snapshot.build("dr", run.resources))
    assert changes and all(line.startswith("~ ") for line in changes), changes
    assert any("HealthCheck::" in line and "failureThreshold: 3 -> 5" in line
               for line in changes), changes


def test_runs_are_deterministic() -> None:
    primary = offline_runs.steady()["bootstrap"]
    again = run_program("prod", project_dir=ROOT)
    assert snapshot.dumps(snapshot.build("prod", again.resources)) == snapshot.dumps(
        snapshot.build("prod", primary.resources))


def test_script_diff_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copy(snapshot.path_for("dr", SNAPSHOTS), tmp_path / "preview-dr.json")
    argv = ["--stack", "dr", "--diff", "--snapshot-dir", str(tmp_path)]
    assert preview_script.main(argv) == ExitCode.OK
    edited = json.loads((tmp_path / "preview-dr.json").read_text())
    [key] = [k for k in edited["resources"] if k.endswith("::traffic-switch-check")]
    edited["resources"][key]["properties"]["failureThreshold"] = 9
    (tmp_path / "preview-dr.json").write_text(json.dumps(edited))
    capsys.readouterr()
    assert preview_script.main(argv) == ExitCode.FAILED
    assert "traffic-switch-check: failureThreshold: 9 -> " in capsys.readouterr().out


def test_script_update_writes_the_committed_bytes(tmp_path: Path) -> None:
    assert preview_script.main(["--stack", "prod", "--update", "--snapshot-dir",
                                str(tmp_path), "--report", str(tmp_path / "r.json")]) == 0
    assert (tmp_path / "preview-prod.json").read_text() == snapshot.path_for(
        "prod", SNAPSHOTS).read_text()
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["violations"] == [] and report["resources"] > 50


def test_output_without_a_document_format_is_a_usage_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--output with the default table format wrote nothing and exited 0."""
    out = tmp_path / "plan.json"
    assert preview_script.main(["--stack", "prod", "--output", str(out)]) == ExitCode.USAGE
    assert "--output" in capsys.readouterr().err and not out.exists()


def test_script_without_snapshot_is_a_usage_error(tmp_path: Path) -> None:
    assert preview_script.main(["--stack", "dr", "--diff", "--no-policy", "--snapshot-dir",
                                str(tmp_path)]) == ExitCode.USAGE


def test_script_refuses_what_aws_would_refuse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    import components.backup_plan

    monkeypatch.setattr(components.backup_plan, "COMPLIANCE_GRACE_DAYS", 2)
    for stack in ("prod", "dr"):
        text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
        (tmp_path / f"Pulumi.{stack}.yaml").write_text(
            text + "  caresync-dr:vaultLockMode: compliance\n")
    shutil.copy(ROOT / "__main__.py", tmp_path / "__main__.py")
    report = tmp_path / "r.json"
    code = preview_script.main(["--stack", "prod", "--project-dir", str(tmp_path),
                                "--report", str(report)])
    assert code == ExitCode.REFUSED
    out = capsys.readouterr().out
    assert "aws rule: backup-vault-lock-bounds: urn:pulumi:prod::" in out and "(source: " in out
    assert json.loads(report.read_text())["awsRules"]
