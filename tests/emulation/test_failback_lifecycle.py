"""The round trip as ``pulumi up`` sees it (issue 15 item 2): the stack settings say which site
writes, and each stack converges in either direction under the AWS rules oracle (every
``run_program`` checks it) and the update model (``caresync_dr.emulation.lifecycle``).

States, in the order an operator meets them: both stacks steady; dr reconciled after the
failover and fully deployed once us-east-1 is back (backups now flow from dr); prod
re-protected (generation 2, generation 1 retiring); prod retired; the planned switchback
(prod's generation 2 writes); dr re-protected (its generation 2, generation 1 retiring); dr
retired; prod linked to dr's new outputs.
"""

from __future__ import annotations

import functools
import re
from collections import Counter

from caresync_dr.emulation.lifecycle import Plan, check, plan
from caresync_dr.offline.runtime import ProgramRun, RegisteredResource, run_program
from tests import offline_runs
from tests.ci_paths import ROOT

RETIRE_WRITER_1 = '{"generation": 1, "role": "writer"}'


def _prod(overrides: dict[str, str], dr: ProgramRun) -> ProgramRun:
    return run_program("prod", project_dir=ROOT, config_overrides=overrides,
                       stack_references={"dr": dr.outputs})


def _dr(overrides: dict[str, str], prod: ProgramRun) -> ProgramRun:
    return run_program("dr", project_dir=ROOT, config_overrides=overrides,
                       stack_references={"prod": prod.outputs})


@functools.cache
def state(name: str) -> ProgramRun:
    steady = offline_runs.steady()
    states = {
        "prod": lambda: steady["prod"],
        "dr": lambda: steady["dr"],
        "dr-writer": lambda: _dr({"activeSite": "standby"}, steady["prod"]),
        "prod-reprotect": lambda: _prod({"activeSite": "standby", "dbGeneration": "2",
                                         "dbRetiring": RETIRE_WRITER_1}, state("dr-writer")),
        "prod-retired": lambda: _prod({"activeSite": "standby", "dbGeneration": "2"},
                                      state("dr-writer")),
        "prod-home": lambda: _prod({"activeSite": "primary", "dbGeneration": "2"},
                                   state("dr-writer")),
        "dr-reprotect": lambda: _dr({"dbGeneration": "2", "dbRetiring": RETIRE_WRITER_1},
                                    state("prod-home")),
        "dr-retired": lambda: _dr({"dbGeneration": "2"}, state("prod-home")),
        "prod-home-linked": lambda: _prod({"activeSite": "primary", "dbGeneration": "2"},
                                          state("dr-retired")),
    }
    return states[name]()


def _plan(before: str, after: str) -> Plan:
    return check(plan(state(before), state(after)))


def _resource(run: ProgramRun, name: str) -> RegisteredResource:
    (found,) = [r for r in run.resources if r.name == name and r.custom]
    return found


def _replication_target(run: ProgramRun, name: str) -> str:
    rules = _resource(run, name).inputs["rules"]
    return str(rules[0]["destination"]["bucket"])


def _copy_targets(run: ProgramRun, name: str) -> list[str]:
    rules = _resource(run, name).inputs["rules"]
    return [c["destinationVaultArn"] for r in rules for c in r.get("copyActions") or []]


def test_the_whole_round_trip_plans_without_a_refusal() -> None:
    """Every transition passes the rules oracle (in run_program) and the update model."""
    path = ["dr", "dr-writer"], ["prod", "prod-reprotect"], ["prod-reprotect", "prod-retired"], \
        ["prod-retired", "prod-home"], ["dr-writer", "dr-reprotect"], \
        ["dr-reprotect", "dr-retired"], ["prod-home", "prod-home-linked"]
    for before, after in path:
        result = _plan(before, after)
        assert not result.with_action("replace"), (before, after, result.summary())


def test_the_promoted_writer_now_sends_backups_to_the_original_region() -> None:
    result = _plan("dr", "dr-writer")
    prod = state("prod").outputs
    assert result.step("standby-backups-replication").action == "create"
    assert _replication_target(state("dr-writer"), "standby-backups-replication") == \
        prod["backupBucketArn"]
    # The writer's site backs up (AWS Backup) and copies into the other site's vault; the
    # replica's site only had the vault.
    assert result.step("standby-backup-plan").action == "create"
    assert _copy_targets(state("dr-writer"), "standby-backup-plan") == [prod["backupVaultArn"]]
    assert result.step("standby-database-replica-1").action == "create"
    # The copy of the failed writer's automated backups: forgotten, never waited on.
    assert result.step("standby-pitr-replication").action == "retain"


def test_re_protection_follows_the_promoted_writer_and_stops_sending_backups() -> None:
    result = _plan("prod", "prod-reprotect")
    writer = state("dr-writer").outputs
    g2 = _resource(state("prod-reprotect"), "primary-database-g2-instance")
    assert result.step("primary-database-g2-instance").action == "create"
    assert g2.inputs["replicateSourceDb"] == writer["dbArn"]
    assert g2.inputs["kmsKeyId"] == state("prod").outputs["kmsKeyArn"]  # this region's key
    assert "username" not in g2.inputs and "dbName" not in g2.inputs
    pitr = _resource(state("prod-reprotect"), "primary-pitr-replication")
    assert result.step("primary-pitr-replication").action == "create"
    assert pitr.inputs["sourceDbInstanceArn"] == writer["dbArn"]
    for gone in ("primary-backups-replication", "primary-backup-plan",
                 "primary-database-replica-1"):
        assert result.step(gone).action == "delete"
    old = result.step("primary-database-instance")
    assert old.action == "update" and {c.property for c in old.changes} <= {
        "deletionProtection", "tags"}


def test_the_switch_back_reverses_everything_again() -> None:
    home = _plan("prod-retired", "prod-home")
    promote = home.step("primary-database-g2-instance").change("replicateSourceDb")
    assert promote is not None and promote.kind == "special"
    assert home.step("primary-pitr-replication").action == "retain"
    dr = _plan("dr-writer", "dr-reprotect")
    g2 = _resource(state("dr-reprotect"), "standby-database-g2-instance")
    assert g2.inputs["replicateSourceDb"] == state("prod-home").outputs["dbArn"]
    assert dr.step("standby-backups-replication").action == "delete"
    pitr = _resource(state("dr-reprotect"), "standby-pitr-replication")
    assert pitr.inputs["sourceDbInstanceArn"] == state("prod-home").outputs["dbArn"]
    linked = _plan("prod-home", "prod-home-linked")
    assert not linked.with_action("delete", "replace")
    assert _replication_target(state("prod-home-linked"), "primary-backups-replication") == \
        state("dr-retired").outputs["backupBucketArn"]
    assert _copy_targets(state("prod-home-linked"), "primary-backup-plan") == \
        [state("dr-retired").outputs["backupVaultArn"]]


def _shape(run: ProgramRun) -> Counter[tuple[str, str]]:
    """The resources, with the generation suffixes taken out of the names."""
    return Counter((r.type, re.sub(r"-g\d+(?=-|$)", "", r.name)) for r in run.resources)


def test_the_round_trip_ends_where_it_started_with_new_identities() -> None:
    assert _shape(state("prod-home-linked")) == _shape(state("prod"))
    assert _shape(state("dr-retired")) == _shape(state("dr"))
    assert state("prod-home-linked").outputs["dbIdentifier"] == "caresync-primary-db-g2"
    assert state("dr-retired").outputs["dbIdentifier"] == "caresync-standby-db-g2"
