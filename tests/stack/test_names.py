"""One source of physical names: what the stacks create is what the tools look for.

The restore test places its temporary instance in the site's DB subnet group and parameter
group by name (it cannot read the Pulumi state); the failover finds databases, parameters and
buckets through the inventory; backups wrap keys under the site key's alias. Each of those is
derived by :mod:`caresync_dr.names`, and each test here compares it with what the program
really registers under the mocks.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from caresync_dr import names
from caresync_dr.commands.restore_check import parse_arguments
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


# Prose (messages, help, tag descriptions) may mention a name; only a bare name is a name.
NAME_LIKE = re.compile(r"caresync-(\{|primary|standby|dr/)|/caresync-dr\b")
SOURCES = ("caresync_dr", "components", "policy", "scripts")


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    """String literals and f-strings (placeholders as ``{``), docstrings left out."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                                | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    found: list[tuple[int, str]] = []
    inner: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            inner.update(id(v) for v in node.values)
            found.append((node.lineno, "".join(
                str(v.value) if isinstance(v, ast.Constant) else "{" for v in node.values)))
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in docstrings | inner):
            found.append((node.lineno, node.value))
    return found


def test_physical_names_are_spelled_in_names_py_only() -> None:
    """Issue 12 item 5: app.py and pitr.py spelled the backup bucket's name themselves, the
    security alarms and metric filters, the failback journal and the operator role's resource
    patterns theirs; a rename in names.py would have missed each."""
    spelled = []
    for package in SOURCES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "caresync_dr" / "names.py":
                continue
            for line, text in _strings(ast.parse(path.read_text())):
                if NAME_LIKE.search(text) and not re.search(r"\s", text):
                    spelled.append(f"{path.relative_to(ROOT)}:{line}: {text!r}")
    assert not spelled, "derive these with caresync_dr.names:\n" + "\n".join(spelled)
