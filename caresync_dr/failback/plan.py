"""The failback's plan as data: one step per stage, in the order each needs the last."""

from __future__ import annotations

from caresync_dr.failback.context import FailbackContext
from caresync_dr.failback.steps import (
    DeployActiveStack,
    DeployProtectedStack,
    RefreshInventory,
    RefreshProtectedApp,
    RetireOldGeneration,
    VerifyArmed,
    WaitForReplica,
    WriteStackSettings,
)
from caresync_dr.operations.steps import Stage

FailbackPlan = tuple[Stage[FailbackContext], ...]


def build_plan() -> FailbackPlan:
    return tuple(Stage((step,)) for step in (
        WriteStackSettings(), DeployActiveStack(), DeployProtectedStack(), WaitForReplica(),
        RefreshProtectedApp(), VerifyArmed(), RetireOldGeneration(),
        RefreshInventory()))
