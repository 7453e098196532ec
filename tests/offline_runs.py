"""The real program run once per test session under the mocks, for the CI tests that need it."""

from __future__ import annotations

import functools

from caresync_dr.offline.runtime import ProgramRun, run_program
from caresync_dr.preview.program import linked_runs
from caresync_dr.settings import (
    Settings,
    load_settings,
    read_stack_file,
    settings_from_stack_file,
)
from tests.ci_paths import ROOT


@functools.cache
def steady() -> dict[str, ProgramRun]:
    """{"bootstrap": prod before dr exists, "dr": ..., "prod": prod linked to dr}."""
    return linked_runs(ROOT)


def settings_with(stack: str, overrides: dict[str, str]) -> Settings:
    """The stack file's settings with the same overrides a run was given."""
    values, region = read_stack_file(stack, ROOT)
    return load_settings(stack, {**values, **overrides}, region)


def dr_with(overrides: dict[str, str]) -> ProgramRun:
    """The dr stack run with config overrides (prod's bootstrap outputs as its reference)."""
    primary = settings_from_stack_file("dr", ROOT).primary_stack or "prod"
    return run_program("dr", project_dir=ROOT, config_overrides=overrides,
                       stack_references={primary: steady()["bootstrap"].outputs})


@functools.cache
def dr_promoted() -> ProgramRun:
    """The dr stack after a failover, reconciled with activeSite=standby."""
    return dr_with({"activeSite": "standby"})
