"""`make setup` shows its progress (issue 12): a fresh set-up takes minutes, and a silent
`pip --quiet` looked hung. Read from make's dry run of the real recipe; nothing is installed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_setup_prints_a_line_per_stage_and_pip_is_not_quiet() -> None:
    if shutil.which("make") is None:
        pytest.skip("no make")
    recipe = subprocess.run(["make", "-n", "-B", "venv/.installed"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    installs = [line for line in recipe.splitlines() if "pip install" in line]
    assert len(installs) == 3
    assert not any("--quiet" in line or " -q" in line for line in installs)
    stages = [line for line in recipe.splitlines() if line.startswith("echo \"setup [")]
    assert len(stages) == 4
