"""Every AWS call a failover makes is granted to the operator role, and nothing more is needed.

The calls are recorded at botocore's ``before-call`` event (one per API call, below which the
retries happen) and mapped to IAM action names.
"""

from __future__ import annotations

from typing import Any

from caresync_dr.cli import ExitCode
from caresync_dr.operator_permissions import required_actions
from tests.failover import world as w

# botocore service id (hyphenised) -> IAM service prefix
IAM_PREFIX = {
    "rds": "rds", "auto-scaling": "autoscaling", "elastic-load-balancing-v2":
    "elasticloadbalancing", "ec2": "ec2", "s3": "s3", "ssm": "ssm", "sns": "sns",
    "cloudwatch": "cloudwatch", "route-53": "route53", "secrets-manager": "secretsmanager",
}
# API operations whose IAM action has another name.
IAM_ACTION = {"s3:HeadObject": "s3:GetObject"}


def iam_actions(world: w.World) -> set[str]:
    actions = set()
    for service, operation, _ in world.calls.seen:
        assert service in IAM_PREFIX, f"unexpected service {service} ({operation})"
        name = f"{IAM_PREFIX[service]}:{operation}"
        actions.add(IAM_ACTION.get(name, name))
    return actions


def test_every_call_of_every_mode_is_granted(world: w.World, failover: Any) -> None:
    for argv in (["--check"], ["--dry-run"], ["--scope", "database", "--check"],
                 ["--scope", "database", "--yes"], ["--yes"], ["--yes"]):
        assert failover(*argv).code == ExitCode.OK, argv
    used = iam_actions(world)
    missing = sorted(used - required_actions())
    assert missing == [], f"operator role lacks {missing}"
    # The run exercised the mutating grants too, so this is not a read-only audit.
    for action in ("rds:PromoteReadReplica", "autoscaling:UpdateAutoScalingGroup",
                   "autoscaling:StartInstanceRefresh", "s3:PutObject", "ssm:PutParameter",
                   "ssm:DeleteParameter", "sns:Publish", "ec2:RevokeSecurityGroupIngress",
                   "route53:GetHealthCheckStatus"):
        assert action in used, action
