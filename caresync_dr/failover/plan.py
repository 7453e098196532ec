"""The plans: which steps run in which order, and which run side by side. Modes are data."""

from __future__ import annotations

from dataclasses import dataclass

from caresync_dr.failover import steps
from caresync_dr.failover.options import Scope


@dataclass(frozen=True)
class Stage:
    """Steps that run together (in threads when more than one). A background stage is
    started and not waited for until the end of the run: fencing never blocks the failover."""

    steps: tuple[steps.Step, ...]
    background: bool = False


def build_plan(scope: Scope) -> tuple[Stage, ...]:
    if scope == "region":
        return (
            Stage((steps.FencePrimaryApp(), steps.FencePrimaryDatabase()), background=True),
            Stage((steps.PromoteDatabase(), steps.ScaleStandbyApp())),
            Stage((steps.SwitchTraffic(),)),
            Stage((steps.ObserveRoute53(),), background=True),
            Stage((steps.VerifyService(),)),
            Stage((steps.Notify(),)),
        )
    return (
        Stage((steps.PromoteDatabase(),)),
        Stage((steps.FenceOldPrimaryDatabase(),)),
        Stage((steps.PointAppAtDatabase(),)),
        Stage((steps.RefreshApp(),)),
        Stage((steps.VerifyService(),)),
        Stage((steps.Notify(),)),
    )


def all_steps(plan: tuple[Stage, ...]) -> list[steps.Step]:
    return [step for stage in plan for step in stage.steps]


def critical_path_seconds(plan: tuple[Stage, ...]) -> float:
    """Expected duration: the longest step of each waited-for stage, summed."""
    return sum(max(s.expected_seconds for s in stage.steps) for stage in plan
               if not stage.background)
