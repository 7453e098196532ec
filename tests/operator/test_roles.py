"""Every operator command has its IAM role, and says so: in its missing-credentials message
(tests/operator/test_hostile_inputs.py runs each one without credentials), in the roles
reference (docs/operator-roles.md) and in the runbook that runs it."""

from __future__ import annotations

import logging
import re

import pytest
from botocore.exceptions import NoCredentialsError

from caresync_dr.cli import ExitCode, Invocation, command_parser, run_command
from caresync_dr.names import OPERATOR_ROLE_NAME
from caresync_dr.operator_permissions import NO_AWS_COMMANDS, ROLES, role_of
from tests.ci_paths import ROOT
from tests.operator.commands import COMMANDS, command_name, entry_points, help_text

REFERENCE = ROOT / "docs" / "operator-roles.md"


def test_every_entry_point_is_placed_in_one_role_or_calls_no_aws() -> None:
    names = [command_name(e) for e in entry_points()]
    for name in names:
        role_of(name)     # raises KeyError for a command nobody placed
    placed = [c for role in ROLES for c in role.commands]
    assert len(placed) == len(set(placed)), "a command is in two roles"
    assert sorted([*placed, *NO_AWS_COMMANDS]) == sorted(names)
    assert len({role.name for role in ROLES}) == len(ROLES)


def test_every_command_that_calls_aws_has_a_role() -> None:
    for command in COMMANDS:
        if command.aws is not None:
            assert role_of(command_name(command.name)) is not None, command.name


def test_the_breach_names_the_incident_responder_not_the_failover_operator(
        caplog: pytest.LogCaptureFixture) -> None:
    """The named case: breach.py's missing-credentials line sent the security team to assume
    caresync-dr-operator, a role that cannot disable a key or cancel an instance refresh."""
    def body(args: object, run: Invocation) -> int:
        raise NoCredentialsError()

    parser = command_parser("breach.py", "toy", [(ExitCode.OK, "ok")])
    with caplog.at_level(logging.ERROR):
        assert run_command(parser, body, [], command="breach") == ExitCode.REFUSED
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "caresync-dr-incident-responder" in line and OPERATOR_ROLE_NAME not in line
    assert "--serial-number" in line      # every role requires MFA


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_the_reference_and_the_runbooks_name_each_role(role: object) -> None:
    from caresync_dr.operator_permissions import OperatorRoleSpec

    assert isinstance(role, OperatorRoleSpec)
    reference = REFERENCE.read_text()
    row = next((line for line in reference.splitlines()
                if line.startswith(f"| `{role.name}` |")), None)
    assert row is not None, f"docs/operator-roles.md has no row for {role.name}"
    for command in role.commands:
        assert command in row, f"{role.name}'s row does not name {command}"
    runbooks = "\n".join(p.read_text() for p in (ROOT / "docs" / "runbooks").glob("*.md"))
    assert role.name in runbooks, f"no runbook says to assume {role.name}"


def test_each_runbook_that_runs_a_command_names_its_role() -> None:
    script = re.compile(r"scripts/(\w+)\.(?:py|sh)")
    for runbook in sorted((ROOT / "docs" / "runbooks").glob("*.md")):
        text = runbook.read_text()
        for name in sorted(set(script.findall(text))):
            command = {"restore_check": "restore_check", "rollback": "rollback"}.get(name, name)
            try:
                role = role_of(command)
            except KeyError:
                continue      # a helper script, not an operator command
            if role is not None:
                assert role.name in text, f"{runbook.name} runs {name} but never names " \
                                          f"{role.name}"


def test_each_commands_help_names_its_role() -> None:
    for command in COMMANDS:
        role = role_of(command_name(command.name))
        text = help_text(command)
        if role is not None:
            assert f"runs as the IAM role {role.name}" in text, command.name
        else:
            assert "aws role:" not in text, command.name


def test_the_profile_in_the_reference_asks_for_the_roles_whole_session() -> None:
    """The CLI and boto3 ask STS for 3600 s unless the profile says duration_seconds: the
    reference's profile gave the 4-hour roles one-hour sessions, and a PITR or a breach
    response that outlasts an hour fails half-way with ExpiredToken."""
    from components.operator_role import SESSION_SECONDS

    text = REFERENCE.read_text()
    profile = text[text.index("[profile "):]
    profile = profile[:profile.index("```")]
    asked = re.search(r"^duration_seconds = (\d+)$", profile, re.MULTILINE)
    assert asked is not None, "the profile example asks for the default hour"
    assert int(asked.group(1)) == SESSION_SECONDS
    assert re.search(r"^mfa_serial = ", profile, re.MULTILINE)
