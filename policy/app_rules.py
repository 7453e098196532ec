"""App tier guardrail: releases roll out through instance refreshes Auto Scaling can roll back.

A group on ``$Latest``/``$Default`` cannot be rolled back at all (Auto Scaling user guide,
"Undo changes with a manual or auto rollback"); a group whose version ``pulumi up`` switches
defeats the rollback, because the provider saves the new version on the group before it
starts the refresh (terraform-provider-aws #34189). So the group runs a numbered version,
ignores changes to it, and carries no provider-driven ``instance_refresh`` with auto rollback:
``python scripts/app.py deploy`` rolls releases out (``caresync_dr/app/rollout.py``).
"""

from __future__ import annotations

from pulumi_policy import ReportViolation, ResourceValidationArgs

from caresync_dr.app.rollout import is_numbered
from policy.context import AUTOSCALING_GROUP, prop, resource_policy, truthy

TEMPLATE_VERSION = "launchTemplate.version"


def release_problems(args: ResourceValidationArgs, _: ReportViolation) -> list[str]:
    if prop(args.props, "launchConfiguration"):
        return ["uses a launch configuration: Auto Scaling rolls back only launch templates"]
    version = prop(args.props, "launchTemplate", "version")
    problems = []
    if not is_numbered(None if version is None else str(version)):
        problems.append(f"launch template version {version or '(unset: $Default)'}: a rollback "
                        "needs a specific numbered version (use the template's latest_version)")
    if TEMPLATE_VERSION not in list(args.opts.ignore_changes or []):
        problems.append(f"ignore_changes must hold {TEMPLATE_VERSION}: a pulumi up that "
                        "switches the version saves it before the refresh, and a rollback then "
                        "returns to the new release (terraform-provider-aws #34189); releases "
                        "roll out with `python scripts/app.py deploy`")
    if truthy(prop(args.props, "instanceRefresh", "preferences", "autoRollback")):
        problems.append("instance_refresh with auto_rollback: the provider's rollback restores "
                        "the new version (terraform-provider-aws #34189); use "
                        "`python scripts/app.py deploy`")
    return problems


app_group_rolls_back = resource_policy(
    "app-group-rolls-back", "The app group's releases can be rolled back by Auto Scaling.",
    AUTOSCALING_GROUP, release_problems)

POLICIES = [app_group_rolls_back]
