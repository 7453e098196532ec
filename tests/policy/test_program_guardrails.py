"""The guardrails on the resources both stacks really register (the program under the mocks)."""

from __future__ import annotations

import pytest

from policy import context
from policy.local import checked, evaluate
from tests import offline_runs

# Every resource type a policy inspects must be among what the program registers, or "passes"
# would say nothing.
INSPECTED = {
    context.BUCKET[0], context.BUCKET_SSE[0], context.BUCKET_VERSIONING[0], context.BUCKET_PAB[0],
    context.BUCKET_POLICY[0], context.BUCKET_LIFECYCLE[0], context.RDS_INSTANCE[0],
    context.RDS_PARAMETER_GROUP[0], context.ROUTE53_RECORD[0], context.ROUTE53_HEALTH_CHECK[0],
    context.BACKUP_PLAN[0], context.SECURITY_GROUP[0], context.LOAD_BALANCER[0],
    context.SSM_PARAMETER[0],
}


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_every_policy_passes_on_the_steady_state(stack: str) -> None:
    run = offline_runs.steady()[stack]
    assert [str(v) for v in evaluate(stack, run.resources)] == []


def test_every_policy_passes_on_the_promoted_standby() -> None:
    run = offline_runs.dr_promoted()
    settings = offline_runs.settings_with("dr", {"activeSite": "standby"})
    assert [str(v) for v in evaluate("dr", run.resources, settings=settings)] == []


def test_the_program_registers_everything_the_policies_inspect() -> None:
    runs = offline_runs.steady()
    registered = {r.type for stack in ("prod", "dr") for r in checked(runs[stack].resources)}
    assert INSPECTED - registered == set()


def test_first_prod_deploy_lacks_only_the_cross_region_copy() -> None:
    # Before dr exists prod has nowhere to copy backups to: the one rule the bootstrap config
    # (policy/bootstrap-config.json) turns advisory for that first `pulumi up -s prod`.
    run = offline_runs.steady()["bootstrap"]
    assert sorted({v.policy for v in evaluate("prod", run.resources)}) == [
        "backup-plan-interval-and-cross-region-copy"]


def test_an_rto_the_real_configuration_cannot_meet_fails_the_pack() -> None:
    overrides = {"rtoMinutes": "30"}
    run = offline_runs.dr_with(overrides)
    found = {v.policy: v.message for v in evaluate(
        "dr", run.resources, settings=offline_runs.settings_with("dr", overrides))}
    # 37 min 30 s = 2250 s (tests/objectives), verification at failover.py's 600 s default
    assert "worst-case failover takes 37 min 30 s but rtoMinutes is 30 min" in found[
        "objectives-feasible"]
