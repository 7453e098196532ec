"""Every AWS call app.py and pitr.py make is granted by the app operator role's in-region policy
(caresync-dr-app-operator).

Calls are recorded at botocore's ``before-call`` event (one per API call, below which the
retries happen) and mapped to IAM action names; every mode runs, the mutating ones included.
"""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3

from caresync_dr.commands import app as app_command
from caresync_dr.commands import pitr as pitr_command
from caresync_dr.operator_permissions import in_region_actions
from caresync_dr.pitr.window import iso
from tests.inregion.test_pitr import LATEST, stand_in, world

__all__ = ["stand_in", "world"]
IAM_PREFIX = {"auto-scaling": "autoscaling", "elastic-load-balancing-v2":
              "elasticloadbalancing", "ec2": "ec2", "s3": "s3", "ssm": "ssm", "rds": "rds",
              "cloudwatch": "cloudwatch", "kms": "kms", "secrets-manager": "secretsmanager"}
FREE = {"sts:GetCallerIdentity"}  # needs no permission (IAM user guide, STS)


def test_every_call_of_every_mode_is_granted(world: dict[str, Any], tmp_path: Path) -> None:
    seen: set[str] = set()
    session = boto3.Session()

    def record(model: Any, **_: Any) -> None:
        service = model.service_model.service_id.hyphenize()
        seen.add(f"{IAM_PREFIX.get(service, service)}:{model.name}")

    session.events.register("before-call", record)
    common = ["--report", str(tmp_path / "r.json"), "--journal-file", str(tmp_path / "j.json"),
              "--lock-heartbeat-seconds", "1", "--poll-seconds", "0.05"]
    for argv in (["status"], ["restart", "--dry-run"], ["restart", "--yes"],
                 ["rollback", "--yes", "--to-version", "2"], ["rollback", "--yes"],
                 ["rollback", "--yes", "--to-ami", "ami-0fedcba9876543210"]):
        code = app_command.run([*argv, *common, "--wait-timeout", "20"], session=session,
                               out=io.StringIO(), stdin=io.StringIO())
        assert code == 0, argv
    when = iso(LATEST - timedelta(hours=1))
    for extra in (["--dry-run"], ["--yes"]):
        code = pitr_command.run(["--restore-time", when, *extra, *common,
                                 "--restore-timeout", "20", "--refresh-timeout", "20"],
                                session=session, out=io.StringIO(), stdin=io.StringIO())
        assert code == 0, extra
    used = seen - FREE
    missing = sorted(used - in_region_actions())
    assert missing == [], f"the in-region policy lacks {missing}"
    for action in ("autoscaling:StartInstanceRefresh", "ec2:CreateLaunchTemplateVersion",
                   "rds:RestoreDBInstanceToPointInTime", "rds:ModifyDBInstance",
                   "ssm:PutParameter", "secretsmanager:GetSecretValue", "s3:PutObject"):
        assert action in used, f"the runs never used {action}: the test proves too little"
