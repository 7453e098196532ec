"""Every AWS call breach.py and rotate_db_credentials.py make is granted to their roles.

The scheduled rotation runs as caresync-dr-credential-rotation, the breach response as
caresync-dr-incident-responder (caresync_dr/operator_permissions.py, ROLES). Each run below is
recorded (tests/iam_calls.py: the project's own calls while a command runs) and mapped to IAM
actions; every mode runs, the mutating ones included, and the breach lands in the middle of a
rotation's instance refresh, so it cancels and restarts it. Before these roles existed no
policy of the dr stack granted autoscaling:CancelInstanceRefresh or any Secrets Manager write:
the breach would have stopped with AccessDenied half-way through its containment.
"""

from __future__ import annotations

import pytest

from caresync_dr.cli import ExitCode
from caresync_dr.operator_permissions import role_of
from tests.breach.test_rotation_command import Rotation, rotation
from tests.iam_calls import record_command_calls

__all__ = ["rotation"]
pytestmark = pytest.mark.postgres


def test_every_call_of_a_rotation_and_a_breach_during_its_refresh_is_granted(
        rotation: Rotation) -> None:
    with record_command_calls() as log:
        for mode in ("--check", "--dry-run"):
            assert rotation.run(mode) == ExitCode.OK, rotation.out
        rotation.refreshes.delay_seconds = 2.0   # the rotation's refresh still runs ...
        assert rotation.run("--yes") == ExitCode.OK, rotation.out
        try:                                     # ... when the breach response starts
            rotation.breach("breach-permissions")
        finally:
            rotation.refreshed()
    for command, named in (
            ("rotate_db_credentials", {"autoscaling:StartInstanceRefresh",
                                       "autoscaling:DescribeInstanceRefreshes",
                                       "secretsmanager:PutSecretValue",
                                       "secretsmanager:UpdateSecretVersionStage",
                                       "ssm:PutParameter", "s3:PutObject"}),
            ("breach", {"autoscaling:CancelInstanceRefresh",
                        "autoscaling:DescribeInstanceRefreshes",
                        "autoscaling:StartInstanceRefresh", "secretsmanager:PutSecretValue",
                        "sns:Publish"})):
        role = role_of(command)
        assert role is not None, command
        used = log.actions(command)
        assert named <= used, f"the runs never used {sorted(named - used)}: proves too little"
        missing = sorted(used - role.actions())
        assert missing == [], f"{command}'s role {role.name} lacks {missing}"
