"""Export both stacks' plans in every bootstrap state and run Checkov on them, offline.

Checkov pins many packages of its own, so it lives in its own virtualenv (``make
checkov-setup`` creates ``.venv-checkov`` from ``requirements-checkov.txt``) and runs as a
subprocess; nothing of it is imported here. It runs offline: ``--skip-download`` and
``BC_SKIP_MAPPING`` keep it from fetching guideline mappings and policies from Prisma Cloud,
and no API key is ever given.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from caresync_dr.offline.runtime import REPO_ROOT, ProgramRun
from caresync_dr.preview import terraform_plan
from caresync_dr.preview.program import all_states
from caresync_dr.scan.findings import Report, parse

log = logging.getLogger(__name__)
DEFAULT_CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
CHECKOV_ENV = "CHECKOV_BIN"
OFFLINE_ENV = {"BC_SKIP_MAPPING": "TRUE"}
TIMEOUT_SECONDS = 900


class CheckovError(RuntimeError):
    """Checkov is missing, failed to run, or printed no report; the message says which."""


@dataclass(frozen=True)
class ExportedPlan:
    state: str  # prod-bootstrap, ...
    path: Path
    resources: int
    unmapped_types: tuple[str, ...]
    unmapped_properties: tuple[str, ...]


def checkov_binary(given: Path | None = None) -> Path:
    """``given``, else ``$CHECKOV_BIN``, else ``.venv-checkov/bin/checkov``."""
    path = given or Path(os.environ.get(CHECKOV_ENV) or DEFAULT_CHECKOV)
    if not path.is_file():
        raise CheckovError(f"Checkov not found at {path}: run `make checkov-setup` (its own "
                           f"virtualenv), or pass --checkov / set ${CHECKOV_ENV}")
    return path.absolute()  # Checkov runs in the plans' directory


def write_plans(runs: Mapping[tuple[str, str], ProgramRun], directory: Path
                ) -> list[ExportedPlan]:
    """One ``<stack>-<state>.json`` plan per run."""
    directory.mkdir(parents=True, exist_ok=True)
    plans: list[ExportedPlan] = []
    for (stack, state), run in runs.items():
        exported = terraform_plan.export(run.resources, str(run.outputs.get("region", "")))
        path = directory / f"{stack}-{state}.json"
        path.write_text(json.dumps(exported.plan, indent=1, sort_keys=True) + "\n")
        plans.append(ExportedPlan(
            state=f"{stack}-{state}", path=path,
            resources=len(exported.plan["planned_values"]["root_module"]["resources"]),
            unmapped_types=exported.unmapped_types,
            unmapped_properties=exported.unmapped_properties))
    return plans


def export_all(directory: Path, project_dir: Path = REPO_ROOT) -> list[ExportedPlan]:
    """Both stacks in every bootstrap state, as plans in ``directory``."""
    return write_plans(all_states(project_dir), directory)


def run_checkov(binary: Path, plans: Sequence[Path], checks: Sequence[str] = ()) -> Report:
    """Checkov's results for ``plans`` (``checks``: only these check ids)."""
    command = [str(binary), "--framework", "terraform_plan", "--output", "json",
               "--skip-download", "--compact"]
    if checks:
        command += ["--check", ",".join(checks)]
    for plan in plans:
        command += ["--file", str(plan)]
    log.info("running Checkov on %d plan(s)", len(plans))
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              timeout=TIMEOUT_SECONDS, env={**os.environ, **OFFLINE_ENV},
                              cwd=plans[0].parent if plans else None)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CheckovError(f"Checkov could not run: {exc}") from exc
    # Checkov exits 1 when a check fails; anything else but 0 is Checkov itself failing.
    if done.returncode not in (0, 1):
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise CheckovError(f"Checkov exited {done.returncode}: " + " | ".join(tail))
    return parse(done.stdout)
