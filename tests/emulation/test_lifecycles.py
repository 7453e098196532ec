"""Every lifecycle an operator meets, as the update model sees it (docs/lifecycles.md).

Each test runs the real program before and after the change (the *before* run stands for the
stack's state) and checks what ``pulumi up`` would do: what is created, updated in place,
replaced or deleted, which provider actions are special, and what is refused and why.
"""

from __future__ import annotations

import dataclasses
import functools

import pytest

from caresync_dr.emulation.lifecycle import (
    LifecycleRefusedError,
    Plan,
    check,
    plan,
)
from caresync_dr.offline.runtime import ProgramRun, RegisteredResource, run_program
from caresync_dr.settings import SettingsError, load_settings, read_stack_file
from tests import offline_runs
from tests.ci_paths import ROOT

RETIRE_WRITER_1 = '{"generation": 1, "role": "writer"}'
RETIRE_REPLICA_1 = '{"generation": 1, "role": "replica"}'


def _prod(overrides: dict[str, str], dr_outputs: dict[str, object]) -> ProgramRun:
    return run_program("prod", project_dir=ROOT, config_overrides=overrides,
                       stack_references={"dr": dr_outputs})


def _dr(overrides: dict[str, str], prod_outputs: dict[str, object]) -> ProgramRun:
    return run_program("dr", project_dir=ROOT, config_overrides=overrides,
                       stack_references={"prod": prod_outputs})


def steady(name: str) -> ProgramRun:
    return offline_runs.steady()[name]


@functools.cache
def run(name: str) -> ProgramRun:
    """Named states of the lifecycles, each run once per session."""
    dr, prod = steady("dr").outputs, steady("prod").outputs
    promoted = offline_runs.dr_promoted().outputs
    states = {
        # failback: prod replicates from the promoted standby, generation 1 retiring
        "prod-failback": lambda: _prod({"activeSite": "standby", "dbGeneration": "2",
                                        "dbRetiring": RETIRE_WRITER_1}, promoted),
        "prod-retired": lambda: _prod({"activeSite": "standby", "dbGeneration": "2"}, promoted),
        # the planned switch back (issue 15) made prod's generation 2 the writer again
        "prod-home": lambda: _prod({"activeSite": "primary", "dbGeneration": "2"}, promoted),
        "dr-regenerated": lambda: _dr({"dbGeneration": "2", "dbRetiring": RETIRE_WRITER_1},
                                      run("prod-home").outputs),
        "dr-regenerated-done": lambda: _dr({"dbGeneration": "2"}, run("prod-home").outputs),
        "prod-2-replicas": lambda: _prod({"dbReadReplicas": "2"}, dr),
        "prod-xlarge": lambda: _prod({"dbInstanceClass": "db.r6g.xlarge"}, dr),
        "dr-xlarge": lambda: _dr({"dbInstanceClass": "db.r6g.xlarge"}, prod),
        "prod-16": lambda: _prod({"dbEngineVersion": "16"}, dr),
        "dr-16-same-generation": lambda: _dr({"dbEngineVersion": "16"}, run("prod-16").outputs),
        "dr-16": lambda: _dr({"dbEngineVersion": "16", "dbGeneration": "2",
                              "dbRetiring": RETIRE_REPLICA_1}, run("prod-16").outputs),
        "dr-16-done": lambda: _dr({"dbEngineVersion": "16", "dbGeneration": "2"},
                                  run("prod-16").outputs),
        "prod-backups-every-4h": lambda: _prod({"backupIntervalHours": "4"}, dr),
        "prod-compliance": lambda: _prod({"vaultLockMode": "compliance"}, dr),
    }
    return states[name]()


def _edited(source: ProgramRun, name: str, **inputs: object) -> ProgramRun:
    """The run with one resource's inputs changed (None removes), as a state would hold it."""
    def edit(r: RegisteredResource) -> RegisteredResource:
        if r.name != name or not r.custom:
            return r
        new = {k: v for k, v in r.inputs.items() if inputs.get(k, 0) is not None}
        new.update({k: v for k, v in inputs.items() if v is not None})
        return dataclasses.replace(r, inputs=new)
    return dataclasses.replace(source, resources=[edit(r) for r in source.resources])


def _refused(result: Plan, fragment: str) -> list[str]:
    return [r for r in result.refusals if fragment in r]


# --- bootstrap --------------------------------------------------------------------------------

def test_bootstrap_steps_1_and_2_create_everything() -> None:
    for state in ("bootstrap", "dr"):
        after = steady(state)
        result = check(plan(ProgramRun(after.stack, [], {}), after))
        assert {s.action for s in result.steps} == {"create"}


def test_bootstrap_step_3_links_prod_to_dr_in_place() -> None:
    result = check(plan(steady("bootstrap"), steady("prod")))
    assert not result.with_action("replace", "delete", "retain")
    for secret in ("primary-credentials-master-secret", "primary-credentials-app-secret"):
        step = result.step(secret)
        change = step.change("replicas")
        assert step.action == "update" and change is not None and change.kind == "in-place"
        assert change.new[0]["region"] == "us-west-2"
        assert change.new[0]["kmsKeyId"] == steady("dr").outputs["kmsKeyArn"]
    assert result.step("primary-backups-replication").action == "create"
    plan_step = result.step("primary-backup-plan")
    assert plan_step.action == "update" and plan_step.change("rules") is not None


# --- post-failover reconcile ------------------------------------------------------------------

def test_post_failover_reconcile_promotes_in_the_program_and_applies_multi_az_now() -> None:
    result = check(plan(steady("dr"), offline_runs.dr_promoted()))
    db = result.step("standby-database-instance")
    promote = db.change("replicateSourceDb")
    assert db.action == "update" and promote is not None and promote.kind == "special"
    assert "pulumi refresh --target" in promote.note
    multi_az = db.change("multiAz")
    assert multi_az is not None and multi_az.kind == "in-place"
    assert any("now" in note for note in db.notes)
    # The automated-backup replication's delete would wait on the failed source region.
    pitr = result.step("standby-pitr-replication")
    assert pitr.action == "retain"
    assert any("stop-db-instance-automated-backups-replication" in n for n in pitr.notes)
    assert result.step("standby-app-asg").action == "update"


def test_after_a_refresh_the_reconcile_does_not_promote_again() -> None:
    """failover.py promoted it; `pulumi refresh` wrote that into the state."""
    refreshed = _edited(steady("dr"), "standby-database-instance", replicateSourceDb=None)
    db = check(plan(refreshed, offline_runs.dr_promoted())).step("standby-database-instance")
    assert db.change("replicateSourceDb") is None


def test_a_deferred_multi_az_is_refused() -> None:
    deferred = _edited(offline_runs.dr_promoted(), "standby-database-instance",
                       applyImmediately=False)
    result = plan(steady("dr"), deferred)
    assert _refused(result, "Multi-AZ deferred to the maintenance window")


# --- failback and a new generation -----------------------------------------------------------

def test_re_sourcing_an_existing_instance_is_refused() -> None:
    values, region = read_stack_file("prod", ROOT)
    with pytest.raises(SettingsError, match="cannot elect new source database"):
        load_settings("prod", {**values, "activeSite": "standby"}, region)
    # Rendered anyway (a program bug), the model refuses it, naming resource and property.
    resourced = _edited(steady("prod"), "primary-database-instance",
                        replicateSourceDb=offline_runs.dr_promoted().outputs["dbArn"])
    with pytest.raises(LifecycleRefusedError) as err:
        check(plan(steady("prod"), resourced))
    message = str(err.value)
    assert "primary-database-instance" in message and "replicate_source_db" in message
    assert "cannot elect new source database for replication" in message


def test_failback_builds_generation_2_and_retires_generation_1_on_purpose() -> None:
    result = check(plan(steady("prod"), run("prod-failback")))
    fresh = result.step("primary-database-g2-instance")
    assert fresh.action == "create"
    (g2,) = [r for r in run("prod-failback").resources if r.name == fresh.name]
    assert g2.inputs["replicateSourceDb"] == offline_runs.dr_promoted().outputs["dbArn"]
    old = result.step("primary-database-instance")
    assert old.action == "update" and old.change("deletionProtection") is not None
    assert "protect off (state only)" in old.notes
    assert result.step("primary-database-replica-1").action == "delete"
    endpoint = result.step("primary-database-endpoint").change("value")
    assert endpoint is not None and "caresync-primary-db-g2." in endpoint.new

    retire = check(plan(run("prod-failback"), run("prod-retired")))
    gone = retire.step("primary-database-instance")
    assert gone.action == "delete"
    assert any("final snapshot caresync-primary-db-final" in n for n in gone.notes)


def test_dropping_a_generation_without_retiring_it_is_refused() -> None:
    result = plan(steady("prod"), run("prod-retired"))
    refused = [r for r in result.refusals if "primary-database-instance:" in r]
    assert any("protected" in r for r in refused)
    assert any("deletion_protection is on" in r for r in refused)
    assert any("without being retired on purpose" in r for r in refused)


def test_the_switch_back_converges_the_other_way() -> None:
    """Issue 15's return home: prod's generation 2 becomes the writer, dr gets generation 2."""
    home = check(plan(run("prod-retired"), run("prod-home")))
    promote = home.step("primary-database-g2-instance").change("replicateSourceDb")
    assert promote is not None and promote.kind == "special"
    regenerated = check(plan(offline_runs.dr_promoted(), run("dr-regenerated")))
    assert regenerated.step("standby-database-g2-instance").action == "create"
    assert regenerated.step("standby-database-instance").action == "update"
    done = check(plan(run("dr-regenerated"), run("dr-regenerated-done")))
    assert done.step("standby-database-instance").action == "delete"


# --- day-to-day changes ----------------------------------------------------------------------

def test_read_replicas_up_and_down() -> None:
    up = check(plan(steady("prod"), run("prod-2-replicas")))
    assert up.step("primary-database-replica-2").action == "create"
    assert not up.with_action("delete", "replace")
    down = check(plan(run("prod-2-replicas"), steady("prod")))
    assert down.step("primary-database-replica-2").action == "delete"
    assert down.step("primary-database-replica-1").action == "same"
    # The kind of fault 5: with deletion protection (or a final snapshot) it could not go.
    protected = _edited(run("prod-2-replicas"), "primary-database-replica-2",
                        deletionProtection=True, skipFinalSnapshot=False,
                        finalSnapshotIdentifier="caresync-primary-db-replica-2-final")
    refused = plan(protected, steady("prod")).refusals
    assert any("deletion_protection is on" in r for r in refused)
    assert any("read replica deleted with a final snapshot" in r for r in refused)


def test_instance_class_changes_in_place_everywhere() -> None:
    for before, after in ((steady("prod"), run("prod-xlarge")), (steady("dr"),
                                                                 run("dr-xlarge"))):
        result = check(plan(before, after))
        instances = [s for s in result.steps if s.type == "aws:rds/instance:Instance"]
        assert instances and all(s.action == "update" for s in instances)
        for step in instances:
            change = step.change("instanceClass")
            assert change is not None and change.kind == "in-place"
            assert any("restart or failover, now" in n for n in step.notes)


def test_postgres_15_to_16_upgrades_prod_and_regenerates_the_standby() -> None:
    prod = check(plan(steady("prod"), run("prod-16")))
    params = prod.step("primary-database-params")
    assert params.action == "replace" and any("retain_on_delete" in n for n in params.notes)
    upgrade = prod.step("primary-database-instance").change("engineVersion")
    assert upgrade is not None and upgrade.kind == "special"
    assert "in-region replicas with it" in upgrade.note
    replica = prod.step("primary-database-replica-1").change("parameterGroupName")
    assert replica is not None and replica.new == "caresync-primary-postgres16"
    # The cross-region replica cannot follow: the same generation is refused...
    naive = plan(steady("dr"), run("dr-16-same-generation"))
    assert _refused(naive, "standby-database-instance: postgres15 -> postgres16 on a "
                           "cross-region replica")
    # ...a new generation replicates from the upgraded writer, the old one retires.
    dr = check(plan(steady("dr"), run("dr-16")))
    assert dr.step("standby-database-g2-instance").action == "create"
    assert dr.step("standby-database-instance").action == "update"
    assert check(plan(run("dr-16"), run("dr-16-done"))).step(
        "standby-database-instance").action == "delete"


def test_a_major_upgrade_without_permission_or_backwards_is_refused() -> None:
    unpermitted = _edited(run("prod-16"), "primary-database-instance",
                          allowMajorVersionUpgrade=None)
    assert _refused(plan(steady("prod"), unpermitted), "allow_major_version_upgrade")
    assert _refused(plan(run("prod-16"), steady("prod")), "cannot downgrade")


def test_backup_interval_changes_the_plan_in_place() -> None:
    result = check(plan(steady("prod"), run("prod-backups-every-4h")))
    (changed,) = [s for s in result.steps if s.action != "same"]
    assert changed.name == "primary-backup-plan" and changed.action == "update"
    rules = changed.change("rules")
    assert rules is not None and rules.new[0]["schedule"] == "cron(0 0/4 * * ? *)"


def test_vault_lock_governance_to_compliance_is_deliberate_and_one_way() -> None:
    result = check(plan(steady("prod"), run("prod-compliance")))
    lock = result.step("primary-backup-vault-lock")
    assert lock.action == "replace"
    assert any(n.startswith("IRREVERSIBLE after 3 days") for n in lock.notes)
    (resource,) = [r for r in run("prod-compliance").resources if r.name == lock.name]
    assert resource.delete_before_replace, "create-before-delete would unlock the vault"
    back = plan(run("prod-compliance"), steady("prod"))
    assert _refused(back, "compliance mode: after its grace period AWS refuses")


def test_replacing_a_database_or_a_named_resource_in_place_is_refused() -> None:
    rekeyed = _edited(steady("dr"), "standby-database-instance",
                      kmsKeyId="arn:aws:kms:us-west-2:111122223333:key/another")
    refused = plan(steady("dr"), rekeyed).refusals
    assert any("replacing a protected resource (kmsKeyId" in r for r in refused)
    assert any("replacing a Instance loses what it holds" in r for r in refused)
    described = _edited(steady("prod"), "primary-network-db-sg", description="new words")
    assert _refused(plan(steady("prod"), described), "keeps the physical name (name)")
