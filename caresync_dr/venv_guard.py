"""Run an operator script under the project's virtualenv, whichever Python started it.

``./scripts/failover.py`` (shebang ``/usr/bin/env python3``) and ``python3 scripts/...`` start
whatever Python is first on ``PATH``, often one without this project's dependencies; the
operator then met ``ModuleNotFoundError``. Importing this module from a script (it does its
work on import, before the script imports anything else) checks the dependencies and, when
they are missing, re-runs the same script with the same arguments under ``./venv/bin/python``
(what ``make setup`` creates), or stops with one line saying how to get it (exit 2). Standard
library only: it must import under any Python.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_PYTHON = ROOT / "venv" / "bin" / "python"
# The run-time dependencies (requirements.txt) every command imports at start.
REQUIRED = ("boto3", "psycopg", "yaml", "pulumi", "zstandard", "cryptography", "requests")


def missing_dependencies() -> list[str]:
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def _started_script() -> Path | None:
    """The project script this process was started as, if any."""
    if not sys.argv or not sys.argv[0]:
        return None
    script = Path(sys.argv[0]).resolve()
    return script if script.parent == ROOT / "scripts" and script.is_file() else None


def ensure_project_python() -> None:
    missing = missing_dependencies()
    script = _started_script()
    if not missing or script is None:
        return
    in_venv = Path(sys.prefix).resolve() == (ROOT / "venv").resolve()
    if VENV_PYTHON.is_file() and os.access(VENV_PYTHON, os.X_OK) and not in_venv:
        os.execv(VENV_PYTHON, [str(VENV_PYTHON), str(script), *sys.argv[1:]])
    sys.stderr.write(
        f"{script.name}: {sys.executable} lacks {', '.join(missing)}, and {VENV_PYTHON} "
        f"{'lacks them too' if in_venv else 'does not exist'}: run `make setup` in {ROOT}, "
        "then run the command again\n")
    raise SystemExit(2)


ensure_project_python()
