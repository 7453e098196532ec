"""The runbooks say what to do in the seed's order, and their commands work.

Every fenced ``bash`` command in ``docs/runbooks/*.md`` that names one of this project's
commands must parse with that command's own parser (a renamed flag breaks the runbook here, not
at 3 a.m.). The ones that can run on this machine do: every ``--help``, ``objectives.py``, and
``failover.py --check`` / ``--dry-run`` against the emulated pair of sites of
``tests/failover`` (moto). The rest (a real restore, a drill, a URL on the internet) are parsed
only; the drill itself runs in ``tests/drill``.
"""

from __future__ import annotations

import argparse
import io
import re
import shlex
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from caresync_dr.cli import ExitCode
from tests.failover import world as w
from tests.operator.commands import Command, parser_of

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = sorted((ROOT / "docs" / "runbooks").glob("*.md"))
SECTIONS = ("Detection", "Decision", "Commands", "Verification", "If a step fails")
# The runbooks' example outage start; a run replaces it with a time inside the emulated
# replica's replication window.
EXAMPLE_OUTAGE = "2026-11-30T02:11Z"


def _command_of(program: str) -> Command | None:
    """``./scripts/failover.py`` -> its ``main``; a shell wrapper -> the Python script it execs
    (read from the wrapper itself); anything else (psql, aws) -> None."""
    module = _module_of(program)
    return Command(program, target=f"{module}:main") if module else None


def _module_of(program: str) -> str | None:
    path = ROOT / program.removeprefix("./")
    if not program.startswith("./scripts/") or not path.is_file():
        return None
    if path.suffix == ".sh":
        target = re.search(r'exec "\$py" "\$here/(\w+)\.py"', path.read_text())
        assert target, f"{program}: no `exec \"$py\" \"$here/NAME.py\"` line"
        return f"scripts.{target.group(1)}"
    return f"scripts.{path.stem}"


def fenced_commands(path: Path) -> list[list[str]]:
    """Each command of the ``bash`` blocks, continuation lines joined, comments dropped."""
    commands: list[list[str]] = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), re.DOTALL):
        text = block.replace("\\\n", " ")
        for raw in text.splitlines():
            line = raw.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                commands.append(shlex.split(line))
    return commands


PROJECT_COMMANDS = [(path.name, argv) for path in RUNBOOKS for argv in fenced_commands(path)
                    if _module_of(argv[0])]


def _id(item: tuple[str, list[str]]) -> str:
    return f"{item[0]}:{' '.join(item[1])}"


def test_the_seed_runbooks_exist_and_the_readme_links_each_one() -> None:
    names = {path.name for path in RUNBOOKS}
    assert {"region-outage.md", "database-failure.md", "backup-restore.md",
            "drills.md"} <= names
    readme = (ROOT / "README.md").read_text()
    for name in names:
        assert f"](docs/runbooks/{name})" in readme, f"README does not link {name}"
    for linked in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / linked).is_file(), f"README links {linked}, which does not exist"


@pytest.mark.parametrize("path", RUNBOOKS, ids=[p.name for p in RUNBOOKS])
def test_runbook_follows_the_seed_order(path: Path) -> None:
    headings = re.findall(r"^## \d+\. (.+)$", path.read_text(), re.MULTILINE)
    assert tuple(headings) == SECTIONS, f"{path.name}: sections {headings}"
    assert fenced_commands(path), f"{path.name} has no commands"


@pytest.mark.parametrize("item", PROJECT_COMMANDS, ids=[_id(i) for i in PROJECT_COMMANDS])
def test_runbook_command_parses(item: tuple[str, list[str]]) -> None:
    _, argv = item
    command = _command_of(argv[0])
    assert command is not None
    parser = parser_of(command)
    if "--help" in argv:
        return
    err = io.StringIO()
    try:
        with redirect_stderr(err):
            parser.parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"{' '.join(argv)}: {err.getvalue().strip()}")


def _run_main(command: Command, argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        try:
            code = command.main()(argv)
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return code, out.getvalue()


HELP = [item for item in PROJECT_COMMANDS if "--help" in item[1]]
OFFLINE = [item for item in PROJECT_COMMANDS if item[1][0] == "./scripts/objectives.py"]
FAILOVER_READ_ONLY = [item for item in PROJECT_COMMANDS
                      if item[1][0] == "./scripts/failover.py"
                      and ({"--check", "--dry-run"} & set(item[1]))]


def test_runbooks_have_commands_that_run_here() -> None:
    assert HELP and OFFLINE and FAILOVER_READ_ONLY


@pytest.mark.parametrize("item", HELP + OFFLINE, ids=[_id(i) for i in HELP + OFFLINE])
def test_runbook_help_and_offline_commands_run(item: tuple[str, list[str]]) -> None:
    _, argv = item
    command = _command_of(argv[0])
    assert command is not None
    code, out = _run_main(command, argv[1:])
    assert code == ExitCode.OK, f"{' '.join(argv)} exited {code}\n{out}"
    assert out.strip()


@pytest.mark.parametrize("item", FAILOVER_READ_ONLY, ids=[_id(i) for i in FAILOVER_READ_ONLY])
def test_runbook_failover_check_and_dry_run_pass_on_a_healthy_pair(
        item: tuple[str, list[str]], world: w.World, failover: Any) -> None:
    _, argv = item
    recent = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%MZ")
    args = [recent if arg == EXAMPLE_OUTAGE else arg for arg in argv[1:]]
    result = failover(*args)
    assert result.code == ExitCode.OK, f"{' '.join(argv)}\n{result.out}"
    assert "nothing was changed" in result.out or "ready:" in result.out, result.out


def test_parser_of_sees_every_runbook_program() -> None:
    programs = {argv[0] for _, argv in PROJECT_COMMANDS}
    assert {"./scripts/failover.py", "./scripts/rollback.sh",
            "./scripts/health-check.sh"} <= programs, programs
    failover = _command_of("./scripts/failover.py")
    assert failover is not None
    assert isinstance(parser_of(failover), argparse.ArgumentParser)


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
            for heading in re.findall(r"^#+ (.+)$", page.read_text(), re.MULTILINE)}


@pytest.mark.parametrize("page", DOCS, ids=[str(p.relative_to(ROOT)) for p in DOCS])
def test_every_relative_link_resolves(page: Path) -> None:
    """A link is relative to the page that holds it: docs/architecture.md linked
    docs/aws-rules.md as `docs/aws-rules.md` (docs/docs/aws-rules.md, a 404 on GitHub)."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    broken = []
    for link in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z][a-z0-9+.-]*:", link):       # https:, mailto:
            continue
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        if not path.exists():
            broken.append(f"{link} (no {path.relative_to(ROOT) if ROOT in path.parents else path})")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{link} (no heading #{anchor})")
    assert not broken, f"{page.relative_to(ROOT)}: {broken}"
