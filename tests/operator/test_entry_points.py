"""Every operator command works from any shell: a console entry point per command, and the
seed's ``./scripts/...`` forms executable under the project's virtualenv whatever Python
starts them."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from caresync_dr import venv_guard
from tests.operator.commands import COMMANDS, ROOT, entry_points, load_main

SCRIPTS = sorted(p for p in (ROOT / "scripts").iterdir()
                 if p.suffix in (".py", ".sh") and p.name != "__init__.py")


def test_every_entry_point_is_in_the_hostile_input_table_and_back() -> None:
    assert {c.name for c in COMMANDS} == set(entry_points())


def test_every_script_is_an_entry_point_and_back() -> None:
    """The same main behind ``./scripts/X.py`` and ``caresync-X``: one command, two names."""
    behind_scripts = {importlib.import_module(f"scripts.{p.stem}").main
                      for p in SCRIPTS if p.suffix == ".py"}
    behind_entry_points = {load_main(target) for target in entry_points().values()}
    assert behind_scripts == behind_entry_points


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_script_is_executable_with_a_shebang(script: Path) -> None:
    assert os.access(script, os.X_OK), f"chmod +x {script.relative_to(ROOT)}"
    first = script.read_text().splitlines()[0]
    expected = "#!/usr/bin/env python3" if script.suffix == ".py" else "#!/usr/bin/env bash"
    assert first == expected, f"{script.name}: {first!r}"


def _base_python() -> str:
    """An interpreter without the project's dependencies: the base Python under -S."""
    return str(Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}."
               f"{sys.version_info.minor}")


@pytest.mark.parametrize("script", ["objectives.py", "health-check.sh"])
def test_scripts_run_under_the_venv_whatever_python_starts_them(script: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    if script.endswith(".py"):
        argv = [_base_python(), "-S", str(ROOT / "scripts" / script), "--help"]
    else:
        argv = [str(ROOT / "scripts" / script), "--help"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env,
                          cwd="/", check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:"), done.stdout
    assert "exit codes" in done.stdout.lower()


def test_without_a_venv_the_script_says_how_to_get_one(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(venv_guard, "missing_dependencies", lambda: ["boto3"])
    monkeypatch.setattr(venv_guard, "VENV_PYTHON", tmp_path / "venv" / "bin" / "python")
    monkeypatch.setattr(sys, "argv", [str(ROOT / "scripts" / "failover.py"), "--check"])
    with pytest.raises(SystemExit) as stopped:
        venv_guard.ensure_project_python()
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "lacks boto3" in err and "make setup" in err


def test_the_guard_does_nothing_outside_a_script(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(venv_guard, "missing_dependencies", lambda: ["boto3"])
    monkeypatch.setattr(sys, "argv", ["pytest"])
    venv_guard.ensure_project_python()
