"""Run both stacks under the mocks the way they run for real: each sees the other's outputs.

A first ``pulumi up -s prod`` cannot see dr (dr does not exist yet); the steady state is prod
run with dr's outputs, and dr run with prod's. The preview shows the steady state, which is
what a pull request changes.
"""

from __future__ import annotations

import logging
from pathlib import Path

from caresync_dr.offline.runtime import REPO_ROOT, ProgramRun, run_program
from caresync_dr.settings import settings_from_stack_file

STACKS = ("prod", "dr")
log = logging.getLogger(__name__)


def linked_runs(project_dir: Path = REPO_ROOT, preview: bool = False) -> dict[str, ProgramRun]:
    """Both stacks in their steady state: {"bootstrap": prod alone, "dr": ..., "prod": ...}.

    ``preview`` runs the program as ``pulumi preview`` does (a dry run).
    """
    prod_settings = settings_from_stack_file("prod", project_dir)
    log.info("run 1/3: prod as on its first deploy, before dr exists (its warning is expected)")
    bootstrap = run_program("prod", project_dir=project_dir, preview=preview)
    dr = _dr(bootstrap, project_dir, preview)
    standby_ref = prod_settings.standby_stack or "dr"
    log.info("run 3/3: prod seeing dr's outputs (the steady state)")
    prod = run_program("prod", project_dir=project_dir, preview=preview,
                       stack_references={standby_ref: dr.outputs})
    return {"bootstrap": bootstrap, "dr": dr, "prod": prod}


def _dr(bootstrap: ProgramRun, project_dir: Path, preview: bool) -> ProgramRun:
    primary_ref = settings_from_stack_file("dr", project_dir).primary_stack or "prod"
    log.info("run 2/3: dr seeing prod's outputs")
    return run_program("dr", project_dir=project_dir, preview=preview,
                       stack_references={primary_ref: bootstrap.outputs})


def steady_run(stack: str, project_dir: Path = REPO_ROOT, preview: bool = True) -> ProgramRun:
    """One stack's steady-state run (runs the other stack as needed), by default as a preview."""
    if stack not in STACKS:
        raise ValueError(f"unknown stack {stack!r}: the offline preview knows {', '.join(STACKS)}")
    if stack == "dr":
        return _dr(run_program("prod", project_dir=project_dir, preview=preview), project_dir,
                   preview)
    return linked_runs(project_dir, preview)["prod"]


# The bootstrap states a stack is deployed in (docs/deploying.md): prod before dr
# exists, each stack in steady state, and dr after a failover (activeSite=standby).
STATES: dict[str, tuple[str, ...]] = {"prod": ("bootstrap", "steady"), "dr": ("steady", "promoted")}
PROMOTED_OVERRIDES = {"activeSite": "standby"}


def all_states(project_dir: Path = REPO_ROOT, preview: bool = True
               ) -> dict[tuple[str, str], ProgramRun]:
    """Every (stack, state) of :data:`STATES`, in four runs."""
    runs = linked_runs(project_dir, preview)
    primary_ref = settings_from_stack_file("dr", project_dir).primary_stack or "prod"
    log.info("one more run: dr after a failover (activeSite=standby)")
    promoted = run_program("dr", project_dir=project_dir, preview=preview,
                           config_overrides=PROMOTED_OVERRIDES,
                           stack_references={primary_ref: runs["bootstrap"].outputs})
    return {("prod", "bootstrap"): runs["bootstrap"], ("prod", "steady"): runs["prod"],
            ("dr", "steady"): runs["dr"], ("dr", "promoted"): promoted}


def state_run(stack: str, state: str, project_dir: Path = REPO_ROOT,
              preview: bool = True) -> ProgramRun:
    """One stack in one bootstrap state (runs the other stack as needed)."""
    if state not in STATES.get(stack, ()):
        known = ", ".join(f"{s} {st}" for s, states in STATES.items() for st in states)
        raise ValueError(f"stack {stack!r} has no state {state!r}: the states are {known}")
    if state == "steady":
        return steady_run(stack, project_dir, preview)
    bootstrap = run_program("prod", project_dir=project_dir, preview=preview)
    if stack == "prod":
        return bootstrap
    primary_ref = settings_from_stack_file("dr", project_dir).primary_stack or "prod"
    return run_program("dr", project_dir=project_dir, preview=preview,
                       config_overrides=PROMOTED_OVERRIDES,
                       stack_references={primary_ref: bootstrap.outputs})
