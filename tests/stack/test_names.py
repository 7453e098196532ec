"""One source of physical names: what the stacks create is what the tools look for.

The restore test places its temporary instance in the site's DB subnet group and parameter
group by name (it cannot read the Pulumi state); the failover finds databases, parameters and
buckets through the inventory; backups wrap keys under the site key's alias. Each of those is
derived by :mod:`caresync_dr.names`, and each test here compares it with what the program
really registers under the mocks.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from caresync_dr import names
from caresync_dr.commands.restore_testing import parse_arguments
from caresync_dr.offline.runtime import ProgramRun
from caresync_dr.settings import settings_from_stack_file

ROOT = Path(__file__).resolve().parents[2]


def _named(run: ProgramRun, type_: str) -> set[str]:
    return {str(r.inputs.get("name")) for r in run.resources if r.type == type_}


@pytest.mark.parametrize(("site", "stack"), sorted(names.STACK_OF_SITE.items()))
def test_restore_test_places_its_copy_in_the_groups_the_stack_creates(
        site: str, stack: str, prod_linked: ProgramRun, dr: ProgramRun) -> None:
    run = prod_linked if stack == "prod" else dr
    args = parse_arguments(["--rds-instance", names.db_identifier(site), "--site", site,
                            "--db-security-group-id", "sg-0123456789abcdef0"])
    assert args.placement.subnet_group in _named(run, "aws:rds/subnetGroup:SubnetGroup")
    assert args.placement.parameter_group in _named(
        run, "aws:rds/parameterGroup:ParameterGroup")
    assert args.engine_major == str(settings_from_stack_file(stack, ROOT).engine_major)


def test_a_new_major_version_names_a_new_parameter_group(tmp_path: Path) -> None:
    """The restore test once hard-coded postgres15: a stack on 16 must get postgres16."""
    text = (ROOT / "Pulumi.prod.yaml").read_text()
    assert "dbEngineVersion" not in text and "\nconfig:\n" in text
    (tmp_path / "Pulumi.prod.yaml").write_text(
        text.replace("\nconfig:\n", "\nconfig:\n  caresync-dr:dbEngineVersion: '16'\n", 1))
    major = settings_from_stack_file("prod", tmp_path).engine_major
    assert major == 16
    assert names.parameter_group_name("primary", major) == "caresync-primary-postgres16"
    assert names.parameter_group_family(major) == "postgres16"


@pytest.mark.parametrize("stack", ["prod", "dr"])
def test_the_stacks_name_what_the_tools_look_for(stack: str, prod_linked: ProgramRun,
                                                 dr: ProgramRun) -> None:
    run = prod_linked if stack == "prod" else dr
    site = next(s for s, st in names.STACK_OF_SITE.items() if st == stack)
    assert run.outputs["dbIdentifier"] == names.db_identifier(site)
    assert run.outputs["dbEndpointParameter"] == names.endpoint_parameter_name(site)
    assert run.outputs["autoScalingGroupName"] == names.app_name(site)
    assert run.outputs["backupVaultName"] == names.backup_vault_name(site)
    assert names.site_key_alias(site) in _named(run, "aws:kms/alias:Alias")
    assert names.alert_topic_name(site) in _named(run, "aws:sns/topic:Topic")
    assert names.alb_name(site) in _named(run, "aws:lb/loadBalancer:LoadBalancer")
    if stack == "dr":
        assert names.OPERATOR_ROLE_NAME in _named(run, "aws:iam/role:Role")
