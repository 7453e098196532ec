"""Every bad input of the catalogue (``hostile_inputs.py``) is refused cleanly: exit 2, one clear
line naming the problem, no traceback, nothing changed (issue 10, items 10, 11, 15)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from caresync_dr.cli import ExitCode
from caresync_dr.failover.command import run
from caresync_dr.inventory import Inventory
from tests.failover import faults
from tests.failover import world as w
from tests.failover.conftest import FAST, ROOT
from tests.failover.hostile_inputs import ALL, BadInput
from tests.failover.test_region_failover import assert_untouched, mutating

ENV_KNOBS = ("AWS_ENDPOINT_URL", "AWS_PROFILE", "CARESYNC_DR_POLL_SECONDS",
             "CARESYNC_DR_POLL_MAX_SECONDS", "CARESYNC_DR_WAIT_TIMEOUT_SECONDS",
             "CARESYNC_DR_VERIFY_TIMEOUT_SECONDS", "CARESYNC_DR_HEALTH_URL",
             "CARESYNC_DR_LOCK_HEARTBEAT_SECONDS")


@dataclass
class Refusal:
    code: int
    lines: list[str]       # the error lines the operator sees
    traceback: bool


@dataclass
class Capture:
    caplog: pytest.LogCaptureFixture
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch


@pytest.fixture
def capture(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
            monkeypatch: pytest.MonkeyPatch) -> Capture:
    return Capture(caplog, capsys, monkeypatch)


def attempt(case: BadInput, world: w.World, tmp_path: Path, capture: Capture) -> Refusal:
    """Run ``failover.py --yes`` with the bad input, as the operator would."""
    caplog, capsys, monkeypatch = capture.caplog, capture.capsys, capture.monkeypatch
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    argv = ["--yes", *case.argv]
    if case.prepare is not None:
        argv += case.prepare(tmp_path)
    if case.inventory is not None:
        changed = case.inventory(json.loads(world.inventory.to_json()))
        text = changed if isinstance(changed, (str, bytes)) else json.dumps(changed)
        if case.via_file:
            path = tmp_path / "inventory.json"
            path.write_bytes(text if isinstance(text, bytes) else text.encode())
            argv += ["--inventory", str(path)]
        else:
            w.client("ssm", w.STANDBY).put_parameter(
                Name=w.INVENTORY_PARAMETER, Value=text, Type="String", Overwrite=True,
                Tier="Advanced")
    if "--project-dir" not in argv:
        argv += ["--project-dir", str(ROOT)]
    if "--journal-file" not in argv:
        argv += ["--journal-file", str(tmp_path / "journal.json")]
    if "--health-url" not in argv and "CARESYNC_DR_HEALTH_URL" not in case.env:
        argv += ["--health-url", world.health_url]
    for flag, value in zip(FAST[::2], FAST[1::2], strict=True):
        if flag not in argv and not any(flag[2:].upper().replace("-", "_") in k
                                        for k in case.env):
            argv += [flag, value]
    world.calls.seen.clear()
    caplog.clear()
    caplog.set_level(logging.INFO)
    try:
        code = run(argv, session=world.session, stdin=io.StringIO(""), out=io.StringIO())
    except SystemExit as exc:          # argparse's own refusals: usage line + one error line
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    lines = [r.getMessage() for r in errors] + [line for line in err.splitlines()
                                                if "error:" in line]
    traceback = "Traceback" in err or "Traceback" in caplog.text or any(
        r.exc_info for r in errors)
    return Refusal(code, lines, traceback)


def refused_cleanly(case: BadInput, refusal: Refusal, world: w.World) -> list[str]:
    """What is wrong with a refusal (empty: clean)."""
    problems = []
    if refusal.code != ExitCode.USAGE:
        problems.append(f"exit {refusal.code}, not {int(ExitCode.USAGE)}")
    if len(refusal.lines) != 1:
        problems.append(f"{len(refusal.lines)} error lines: {refusal.lines}")
    elif case.expect not in refusal.lines[0]:
        problems.append(f"the error line does not say {case.expect!r}: {refusal.lines[0]}")
    if refusal.traceback:
        problems.append("a traceback")
    changed = mutating(world)
    if changed:
        problems.append(f"mutating calls {changed}")
    return problems


@pytest.fixture(scope="module")
def shared_world() -> Iterator[w.World]:
    """One emulated pair of sites for the whole catalogue (seeding it per case would cost
    most of the time): every case must leave it untouched, which each test asserts."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (("AWS_ACCESS_KEY_ID", "testing"),
                            ("AWS_SECRET_ACCESS_KEY", "testing"),
                            ("AWS_DEFAULT_REGION", "us-east-1"),
                            ("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")):
            patch.setenv(name, value)
        for name in ENV_KNOBS:
            patch.delenv(name, raising=False)
        with faults.emulated_world() as world:
            yield world


@pytest.mark.parametrize("case", ALL, ids=[c.name for c in ALL])
def test_bad_input_is_refused_cleanly(case: BadInput, shared_world: w.World, tmp_path: Path,
                                      capture: Capture) -> None:
    world = shared_world
    original = world.inventory.to_json()
    try:
        refusal = attempt(case, world, tmp_path, capture)
        assert refused_cleanly(case, refusal, world) == [], refusal
        assert_untouched(world)
    finally:
        w.client("ssm", w.STANDBY).put_parameter(
            Name=w.INVENTORY_PARAMETER, Value=original, Type="String", Overwrite=True,
            Tier="Advanced")


def test_the_catalogue_covers_every_named_case() -> None:
    """Issue 10's named inputs are in the catalogue (so the figures count them)."""
    names = {c.name for c in ALL}
    for named in ("backupRetentionDays 0", "backupRetentionDays 36", "production capacity 0/0/0",
                  "duplicate key", "health URL without scheme", "--wait-timeout nan",
                  "--lock-heartbeat-seconds nan", "--inventory not UTF-8",
                  "--inventory nested deeply", "lock parameter not a path"):
        assert named in names, named


def test_the_seeded_inventory_itself_is_valid(shared_world: w.World) -> None:
    """The catalogue mutates one field of a valid document: the document must be valid."""
    from caresync_dr.inventory import parse_inventory

    assert isinstance(parse_inventory(shared_world.inventory.to_json()), Inventory)
