"""The scheduled rotation drill end to end: the real program in the emulator, real PostgreSQL,
the real ``scripts/rotate_db_credentials.py`` as a subprocess while the app serves and its
instances keep opening connections with the credentials they booted with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.drill.test_scenarios import _require_postgres

pytestmark = [pytest.mark.drill, pytest.mark.postgres]


def test_a_scheduled_rotation_refuses_no_app_connection(tmp_path: Path) -> None:
    _require_postgres()
    from caresync_dr.commands.drill import main

    report_path = tmp_path / "drill.json"
    code = main(["--scenario", "credential-rotation", "--promote-seconds", "1",
                 "--scale-seconds", "1", "--report", str(report_path),
                 "--report-dir", str(tmp_path / "reports")])
    report = json.loads(report_path.read_text())
    failed = [v for v in report["verifications"] if not v["ok"]]
    assert code == 0 and report["ok"], failed
    section = report["in_region"]
    # The figure: new connections with the boot credentials through the whole window, from
    # the rotation until both sites' instances were replaced; none refused.
    assert section["failed_connections"] == 0, section["first_failed_connection"]
    assert section["connections_opened"] > 0
    assert set(section["instances_replaced_after_seconds"]) == {"primary", "standby"}
    assert section["failed_writes"] == 0 and report["rpo_transactions"] == 0
    assert section["report"]["outcome"] == "completed"
    assert report["scenario"] == "credential-rotation" and report["rto_seconds"] is None
    assert "<svg" in (tmp_path / "reports" / "credential-rotation.html").read_text()
