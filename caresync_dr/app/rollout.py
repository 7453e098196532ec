"""A site's app tier by name, and the three ways its instances are replaced, as data.

Every replacement is one ``StartInstanceRefresh`` (Auto Scaling API reference) that keeps the
serving capacity: ``MinHealthyPercentage`` 100 and ``MaxHealthyPercentage`` 200 launch the new
instances beside the old ones and terminate an old one only once a new one is healthy.

=========  =======================================================================================
restart    the same release on fresh instances (``app.py restart``); every instance replaced; no
           alarms watched (they are firing: that is why one restarts) and nothing to roll back to
deploy     a new launch template version, the one ``pulumi up`` made (``app.py deploy``, CI's
           deploy job): instances already on it kept (``SkipMatching``), the 5xx and
           unhealthy-host alarms watched during the refresh and for :data:`BAKE_SECONDS` after it,
           and Auto Scaling rolls the group back to the version it ran before if one fires or the
           refresh fails (``AutoRollback``)
rollback   an earlier numbered version (``app.py rollback``): instances already on it kept; no
           alarms (they are firing) and no automatic rollback (that would return to the bad one)
=========  =======================================================================================

AWS's rules these rest on (Auto Scaling user guide, "Undo changes with a manual or auto
rollback"; API reference, ``RefreshPreferences`` and ``RollbackInstanceRefresh``): a rollback,
automatic or manual, needs a desired configuration in the request, and is not available when
the group uses the launch template's ``$Latest`` or ``$Default`` version, or a template whose
``ImageId`` is a Systems Manager parameter; ``MaxHealthyPercentage`` is 100-200, needs
``MinHealthyPercentage`` (0-100) and may exceed it by at most 100; up to 10 alarms; ``BakeTime``
0-172800 s. A rollback restores "the configuration that you last saved on the Auto Scaling
group before starting the instance refresh".

That last sentence is why ``pulumi up`` never switches the group's version itself (the group
ignores changes to ``launchTemplate.version``, ``components/app_tier.py``): the provider calls
``UpdateAutoScalingGroup`` with the new version *before* ``StartInstanceRefresh``
(terraform-provider-aws ``resourceGroupUpdate``; issue #34189, open), so an automatic rollback
would "restore" the new, broken version. ``deploy`` leaves the group's saved version alone and
names the new one only as the desired configuration: Auto Scaling saves it when the refresh
succeeds, and rolls back to the old one when it does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from caresync_dr.names import alarm_name

ModeName = Literal["restart", "deploy", "rollback"]

# The alarms a deploy watches (components/monitoring.py creates them under these names).
ALB_5XX = "alb-5xx"
UNHEALTHY_HOSTS = "unhealthy-hosts"
ROLLOUT_ALARMS = (ALB_5XX, UNHEALTHY_HOSTS)
# Their evaluation windows: the 5xx rate over one 5-minute period, unhealthy hosts over three
# 1-minute periods. A broken release can only be seen once a window has passed.
ALB_5XX_PERIOD_SECONDS = 300
ALB_5XX_PERIODS = 1
UNHEALTHY_PERIOD_SECONDS = 60
UNHEALTHY_PERIODS = 3
# ALB metrics reach CloudWatch a minute or so after the period ends; allow two.
METRIC_DELAY_SECONDS = 120
# Bake time: how long a finished deploy still watches the alarms before it counts as done, so
# a release that breaks only under real traffic is still rolled back automatically.
BAKE_SECONDS = max(ALB_5XX_PERIOD_SECONDS * ALB_5XX_PERIODS,
                   UNHEALTHY_PERIOD_SECONDS * UNHEALTHY_PERIODS) + METRIC_DELAY_SECONDS
MAX_ALARMS = 10  # AlarmSpecification.Alarms: "You can specify up to 10 alarms."


def rollout_alarm_names(site: str) -> tuple[str, ...]:
    return tuple(alarm_name(site, key) for key in ROLLOUT_ALARMS)


def is_numbered(version: str | None) -> bool:
    """A specific launch template version ("3"), not ``$Latest``/``$Default``/unset."""
    return bool(version) and str(version).isdigit()


@dataclass(frozen=True)
class RefreshMode:
    """One way to replace a group's instances (see the module docstring)."""

    name: ModeName
    summary: str
    skip_matching: bool
    auto_rollback: bool
    watch_alarms: bool
    needs_version: bool   # the request names a launch template version (desired configuration)
    bake_seconds: int = 0
    min_healthy_percentage: int = 100
    max_healthy_percentage: int = 200


MODES: dict[ModeName, RefreshMode] = {
    "restart": RefreshMode(
        "restart", "replace every instance with a fresh one of the same release",
        skip_matching=False, auto_rollback=False, watch_alarms=False, needs_version=False),
    "deploy": RefreshMode(
        "deploy", "roll out a new launch template version; Auto Scaling rolls back by itself "
        "if the 5xx or unhealthy-host alarm fires", skip_matching=True, auto_rollback=True,
        watch_alarms=True, needs_version=True, bake_seconds=BAKE_SECONDS),
    "rollback": RefreshMode(
        "rollback", "go back to an earlier launch template version", skip_matching=True,
        auto_rollback=False, watch_alarms=False, needs_version=True),
}


@dataclass(frozen=True)
class TemplateVersion:
    """A launch template and one of its numbered versions."""

    template_id: str
    version: int


def refresh_request(mode: RefreshMode, site: str, group: str,
                    target: TemplateVersion | None = None) -> dict[str, Any]:
    """The keyword arguments of ``StartInstanceRefresh`` for ``mode``.

    Raises ``ValueError`` when the mode needs a target version and none is given (a rollback
    needs a desired configuration: "The AutoRollback parameter cannot be set to true when the
    DesiredConfiguration parameter is empty")."""
    if mode.needs_version and target is None:
        raise ValueError(f"a {mode.name} needs the launch template version to go to")
    preferences: dict[str, Any] = {
        "MinHealthyPercentage": mode.min_healthy_percentage,
        "MaxHealthyPercentage": mode.max_healthy_percentage,
        "SkipMatching": mode.skip_matching,
        "AutoRollback": mode.auto_rollback,
        # The group has no scale-in protected or standby instances; say what to do anyway
        # rather than wait an hour (the API's default is Wait).
        "ScaleInProtectedInstances": "Refresh",
        "StandbyInstances": "Terminate",
    }
    if mode.watch_alarms:
        preferences["AlarmSpecification"] = {"Alarms": list(rollout_alarm_names(site))}
    if mode.bake_seconds:
        preferences["BakeTime"] = mode.bake_seconds
    request: dict[str, Any] = {"AutoScalingGroupName": group, "Strategy": "Rolling",
                               "Preferences": preferences}
    if target is not None:
        request["DesiredConfiguration"] = {"LaunchTemplate": {
            "LaunchTemplateId": target.template_id, "Version": str(target.version)}}
    return request
