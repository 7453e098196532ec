"""In-region recovery as the update model sees it (issue 14; docs/lifecycles.md).

A release is a new launch template version that ``pulumi up`` creates and ``app.py deploy``
rolls out; ``pulumi up`` never switches the group's version (the provider would defeat the
automatic rollback). After ``scripts/pitr.py`` restored the writer into a new generation, the
stacks follow it the way they follow any new generation, with one step more: the restored
instance already exists, so it is imported before ``pulumi up``.
"""

from __future__ import annotations

import dataclasses
import functools

from caresync_dr.emulation.lifecycle import check, plan
from caresync_dr.offline.runtime import ProgramRun, RegisteredResource
from tests import offline_runs
from tests.emulation.test_lifecycles import RETIRE_REPLICA_1, RETIRE_WRITER_1, _dr, _prod

GROUP = "primary-app-asg"
TEMPLATE = "primary-app-launch-template"
NEW_AMI = "ami-0fedcba9876543210"


def steady(name: str) -> ProgramRun:
    return offline_runs.steady()[name]


def _group_edited(run: ProgramRun, *, launch_template: dict[str, str] | None = None,
                  ignore_changes: tuple[str, ...] | None = None,
                  **inputs: object) -> ProgramRun:
    """The run with the app group's launch template spec, inputs or ignore_changes changed."""
    def edit(r: RegisteredResource) -> RegisteredResource:
        if r.name != GROUP or not r.custom:
            return r
        new = dict(r.inputs)
        if launch_template is not None:
            new["launchTemplate"] = {**new["launchTemplate"], **launch_template}
        new.update(inputs)
        edited = dataclasses.replace(r, inputs=new)
        if ignore_changes is not None:
            edited = dataclasses.replace(edited, ignore_changes=ignore_changes)
        return edited
    return dataclasses.replace(run, resources=[edit(r) for r in run.resources])


# --- releases -----------------------------------------------------------------------------

def test_a_release_makes_a_template_version_and_leaves_the_group_alone() -> None:
    release = _prod({"appAmiId": NEW_AMI}, steady("dr").outputs)
    result = check(plan(steady("prod"), release))
    template = result.step(TEMPLATE)
    assert template.action == "update" and template.change("imageId") is not None
    assert any("python scripts/app.py deploy" in note for note in template.notes)
    # The version the group runs is ignored: no UpdateAutoScalingGroup, no refresh by pulumi.
    group = result.step(GROUP)
    assert group.action == "same"


def test_the_group_pinned_at_creation_to_the_templates_numbered_version() -> None:
    group = next(r for r in steady("prod").resources if r.name == GROUP)
    assert group.inputs["launchTemplate"]["version"] == "1"
    assert "launchTemplate.version" in group.ignore_changes


def test_a_stack_still_on_latest_is_told_to_pin_once() -> None:
    """Stacks deployed before issue 14 run $Latest; ignore_changes keeps it, so the first
    deploy pins the numbered version (app.py deploy does)."""
    before = _group_edited(steady("prod"), launch_template={"version": "$Latest"})
    result = check(plan(before, steady("prod")))
    group = result.step(GROUP)
    assert group.action == "same"
    assert any("$Latest" in n and "python scripts/app.py deploy" in n for n in group.notes)


def test_provider_driven_auto_rollback_is_refused() -> None:
    """The tempting wiring: instance_refresh with auto_rollback and the template's latest
    version on the group. The provider saves the new version before refreshing
    (terraform-provider-aws #34189): a rollback would return to the broken release."""
    block = {"strategy": "Rolling", "preferences": {
        "autoRollback": True, "minHealthyPercentage": 100.0, "maxHealthyPercentage": 200.0,
        "alarmSpecification": {"alarms": ["caresync-primary-alb-5xx"]}}}
    wired = _group_edited(steady("prod"), instanceRefresh=block, ignore_changes=())
    released = _group_edited(wired, launch_template={"version": "2"})
    result = plan(wired, released)
    (refusal,) = [r for r in result.refusals if GROUP in r]
    assert "#34189" in refusal and "python scripts/app.py deploy" in refusal


def test_replacing_the_template_under_an_ignored_version_is_refused() -> None:
    moved = _group_edited(steady("prod"), launch_template={"id": "lt-0123456789abcdef0"})
    result = plan(steady("prod"), moved)
    assert [r for r in result.refusals if "belongs to the old template" in r]


# --- after a point-in-time restore ------------------------------------------------------------

@functools.cache
def after_pitr() -> ProgramRun:
    """pitr.py restored caresync-primary-db into caresync-primary-db-g2 and cut over; the
    stack file then says generation 2, generation 1 retiring (kept for forensics)."""
    return _prod({"dbGeneration": "2", "dbRetiring": RETIRE_WRITER_1}, steady("dr").outputs)


def _imported(state: ProgramRun, program: ProgramRun, name: str) -> ProgramRun:
    """The state after `pulumi import`: the instance as RDS reports it (engine and master
    user included, which the program leaves to the provider for a non-born writer)."""
    (resource,) = [r for r in program.resources if r.name == name and r.custom]
    reported = dataclasses.replace(resource, inputs={
        **resource.inputs, "engine": "postgres", "username": "caresync_admin",
        "dbName": "caresync"}, protect=True)
    return dataclasses.replace(state, resources=[*state.resources, reported])


def test_without_the_import_the_restored_generation_cannot_be_created() -> None:
    result = plan(steady("prod"), after_pitr())
    (refusal,) = [r for r in result.refusals if "caresync-primary-db-g2" in r]
    assert "RDS refuses CreateDBInstance" in refusal and "pitr.py" in refusal


def test_after_the_import_prod_adopts_the_restored_writer_and_retires_the_damaged_one() -> None:
    state = _imported(steady("prod"), after_pitr(), "primary-database-g2-instance")
    result = check(plan(state, after_pitr()))
    restored = result.step("primary-database-g2-instance")
    assert restored.action in ("same", "update")
    assert not [c for c in restored.changes if c.kind in ("replace", "refused")]
    damaged = result.step("primary-database-instance")
    assert damaged.action == "update" and damaged.change("deletionProtection") is not None
    # Its in-region replica holds the damage too; the new writer gets its own.
    assert result.step("primary-database-replica-1").action == "delete"
    assert result.step("primary-database-g2-replica-1").action == "create"
    # pitr.py repointed the endpoint; on the writer's site pulumi up never rewrites it.
    assert result.step("primary-database-endpoint").change("value") is None


def test_the_standby_follows_the_restored_writer_with_a_new_generation() -> None:
    """The cross-region replica replicates from the damaged writer: RDS cannot re-source it."""
    naive = plan(steady("dr"), _dr({}, after_pitr().outputs))
    assert [r for r in naive.refusals if "cannot elect new source database" in r]
    regenerated = _dr({"dbGeneration": "2", "dbRetiring": RETIRE_REPLICA_1},
                      after_pitr().outputs)
    result = check(plan(steady("dr"), regenerated))
    fresh = result.step("standby-database-g2-instance")
    assert fresh.action == "create"
    (g2,) = [r for r in regenerated.resources if r.name == fresh.name]
    assert g2.inputs["replicateSourceDb"] == after_pitr().outputs["dbArn"]


def test_retiring_the_damaged_generation_keeps_a_final_snapshot() -> None:
    """Once the forensics are done: remove dbRetiring and pulumi up deletes generation 1."""
    retired = _prod({"dbGeneration": "2"}, steady("dr").outputs)
    step = check(plan(after_pitr(), retired)).step("primary-database-instance")
    assert step.action == "delete"
    assert any("final snapshot caresync-primary-db-final" in n for n in step.notes)
