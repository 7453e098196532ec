"""Injected AWS faults: every call a run makes in a region that must answer, refused (nothing
applied) or answered with throttling after being applied (answer lost) -- for two attempts
(within the retry budget) or for the whole run. The run that meets the fault writes a report
and says the truth (done, resumable, or refused with nothing changed); once the fault clears,
the operator's later runs finish the failover; no change reaches AWS twice (``faults.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.failover import faults
from tests.failover.conftest import ROOT
from tests.failover.test_kill_points import explain, hour_passer

# The calls of a clean run, by region (test_the_matrix_covers_every_call keeps this complete).
CALLS = {
    "region": [
        ("auto-scaling", "DescribeAutoScalingGroups", "us-west-2"),
        ("auto-scaling", "UpdateAutoScalingGroup", "us-west-2"),
        ("cloudwatch", "GetMetricStatistics", "us-west-2"),
        ("ec2", "DescribeLaunchTemplates", "us-west-2"),
        ("elastic-load-balancing-v2", "DescribeTargetHealth", "us-west-2"),
        ("rds", "DescribeDBInstances", "us-west-2"),
        ("rds", "PromoteReadReplica", "us-west-2"),
        ("s3", "GetObject", "us-west-2"),
        ("s3", "PutObject", "us-west-2"),
        ("secrets-manager", "GetSecretValue", "us-west-2"),   # the notifier's channels
        ("sns", "Publish", "us-west-2"),                      # the notifier's e-mail
        ("ssm", "DeleteParameter", "us-west-2"),
        ("ssm", "GetParameter", "us-west-2"),
        ("ssm", "PutParameter", "us-west-2"),
    ],
    "database": [
        ("auto-scaling", "DescribeAutoScalingGroups", "us-east-1"),
        ("cloudwatch", "GetMetricStatistics", "us-east-1"),
        ("ec2", "DescribeLaunchTemplates", "us-east-1"),
        ("ec2", "DescribeSecurityGroups", "us-east-1"),
        ("ec2", "RevokeSecurityGroupIngress", "us-east-1"),
        ("rds", "DescribeDBInstances", "us-east-1"),
        ("rds", "PromoteReadReplica", "us-east-1"),
        ("s3", "PutObject", "us-west-2"),
        ("secrets-manager", "GetSecretValue", "us-east-1"),
        ("secrets-manager", "GetSecretValue", "us-west-2"),
        ("sns", "Publish", "us-west-2"),
        ("ssm", "DeleteParameter", "us-west-2"),
        ("ssm", "GetParameter", "us-east-1"),
        ("ssm", "GetParameter", "us-west-2"),
        ("ssm", "PutParameter", "us-east-1"),
        ("ssm", "PutParameter", "us-west-2"),
    ],
}
FAULTS = [faults.Fault(scope, service, operation, region, kind)
          for scope, calls in CALLS.items() for service, operation, region in calls
          for kind in faults.KINDS
          if service in faults.PROTOCOLS or kind.startswith("refused")]
# The kinds issue 10 names run by default; the whole matrix is `make faults`.
ALWAYS = {("region", "ssm", "PutParameter", "lost"), ("region", "ssm", "DeleteParameter", "lost"),
          ("region", "rds", "PromoteReadReplica", "lost"),
          ("region", "ssm", "PutParameter", "refused"),
          # Issue 15: a dead notification channel never changes a recovery's outcome.
          ("region", "sns", "Publish", "refused"),
          ("region", "secrets-manager", "GetSecretValue", "lost"),
          ("database", "ec2", "RevokeSecurityGroupIngress", "refused")}


@pytest.mark.parametrize("scope", list(CALLS))
def test_the_matrix_covers_every_call(tmp_path: Path, scope: str) -> None:
    with faults.emulated_world() as world:
        found = faults.fault_targets(world, faults.make_invoke(world, tmp_path, ROOT), scope)
    assert sorted({(f.service, f.operation, f.region) for f in found}) == sorted(CALLS[scope])


@pytest.mark.parametrize("fault", [
    pytest.param(f, id=str(f), marks=() if (f.scope, f.service, f.operation, f.kind) in ALWAYS
                 else pytest.mark.faults) for f in FAULTS])
def test_an_injected_fault_is_survived(tmp_path: Path, fault: faults.Fault) -> None:
    with faults.emulated_world() as world:
        outcome = faults.survive(world, faults.make_invoke(world, tmp_path, ROOT), fault,
                                 hour_passer(world))
    assert outcome.recovered, explain(outcome)
