"""The plans: which steps run in which order, and which run side by side. Modes are data."""

from __future__ import annotations

from caresync_dr.failover import steps
from caresync_dr.failover.context import FailoverContext
from caresync_dr.failover.options import Scope
from caresync_dr.operations.steps import Stage, all_steps, critical_path_seconds

__all__ = ["FailoverPlan", "Stage", "all_steps", "build_plan", "critical_path_seconds"]

FailoverPlan = tuple[Stage[FailoverContext], ...]


def build_plan(scope: Scope, reversed_: bool = False) -> FailoverPlan:
    """Fencing never blocks the failover (a background stage: started, not waited for).
    ``reversed_``: the region failover after a failback (standby -> primary), which also pins
    the primary record's DNS check (steps.PinPrimaryRecord)."""
    if scope == "region":
        observe: tuple[steps.Step, ...] = (steps.ObserveRoute53(),)
        if reversed_:
            observe = (steps.PinPrimaryRecord(), *observe)
        return (
            Stage((steps.FencePrimaryApp(), steps.FencePrimaryDatabase()), background=True),
            Stage((steps.PromoteDatabase(), steps.ScaleStandbyApp())),
            Stage((steps.SwitchTraffic(),)),
            Stage(observe, background=True),
            Stage((steps.VerifyService(),)),
        )
    return (
        Stage((steps.PromoteDatabase(),)),
        Stage((steps.FenceOldPrimaryDatabase(),)),
        Stage((steps.PointAppAtDatabase(),)),
        Stage((steps.RefreshApp(),)),
        Stage((steps.VerifyService(),)),
    )
