"""Auto Scaling rules: what an instance refresh and its rollback need of the group.

:func:`refresh_problems` is AWS's validation of one ``StartInstanceRefresh`` request; the
oracle applies it to a group's ``instance_refresh`` block (which the provider turns into that
request) and the emulation layer (``caresync_dr.emulation.autoscaling``) applies it to every
request a command sends, so neither the program nor ``app.py`` can ask for what AWS refuses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from caresync_dr.app.rollout import MAX_ALARMS, is_numbered, rollout_alarm_names
from caresync_dr.emulation.aws_rules.core import ResourceLike, Rule, RunView, as_list, first
from caresync_dr.names import app_name

ASG = "aws:autoscaling/group:Group"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
GUIDE = "https://docs.aws.amazon.com/autoscaling/ec2/"
ROLLBACK_SOURCE = (f"{GUIDE}userguide/instance-refresh-rollback.html (Considerations); "
                   f"{GUIDE}APIReference/API_RollbackInstanceRefresh.html")
PREFERENCES_SOURCE = f"{GUIDE}APIReference/API_RefreshPreferences.html"
MAX_SECONDS = 172800  # CheckpointDelay and BakeTime


def rollback_unavailable(template_version: Any, image_id: Any = None) -> str | None:
    """Why Auto Scaling cannot roll a refresh of this group back, or None."""
    if not is_numbered(None if template_version is None else str(template_version)):
        shown = template_version or "(unset, i.e. $Default)"
        return (f"the group uses launch template version {shown}: rollbacks need a specific "
                "numbered version, not $Latest or $Default")
    if str(image_id or "").startswith("resolve:ssm:"):
        return ("the launch template's ImageId is a Systems Manager parameter: rollbacks need "
                "an AMI id")
    return None


def refresh_problems(request: Mapping[str, Any], *, group_version: Any,
                     image_id: Any = None,
                     alarm_exists: Any = None) -> list[str]:
    """What AWS refuses in a ``StartInstanceRefresh`` request (API names, PascalCase).

    ``group_version``: the launch template version the group uses now; ``alarm_exists(name)``
    says whether a CloudWatch alarm of that name exists in the group's region (None: not
    checked)."""
    problems: list[str] = []
    prefs: Mapping[str, Any] = request.get("Preferences") or {}
    low, high = prefs.get("MinHealthyPercentage"), prefs.get("MaxHealthyPercentage")
    if low is not None and not 0 <= int(low) <= 100:
        problems.append(f"MinHealthyPercentage {low}: 0 to 100")
    if high is not None:
        if not 100 <= int(high) <= 200:
            problems.append(f"MaxHealthyPercentage {high}: 100 to 200")
        if low is None:
            problems.append("MaxHealthyPercentage needs MinHealthyPercentage")
        elif int(high) - int(low) > 100:
            problems.append(f"MaxHealthyPercentage {high} exceeds MinHealthyPercentage {low} "
                            "by more than 100")
    for key in ("CheckpointDelay", "BakeTime"):
        value = prefs.get(key)
        if value is not None and not 0 <= int(value) <= MAX_SECONDS:
            problems.append(f"{key} {value}: 0 to {MAX_SECONDS} seconds")
    if prefs.get("CheckpointDelay") is not None and not prefs.get("CheckpointPercentages"):
        problems.append("CheckpointDelay needs CheckpointPercentages")
    alarms = [str(a) for a in as_list((prefs.get("AlarmSpecification") or {}).get("Alarms"))]
    if len(alarms) > MAX_ALARMS:
        problems.append(f"{len(alarms)} alarms: at most {MAX_ALARMS}")
    if alarm_exists is not None:
        problems.extend(f"alarm {name} does not exist in the group's region"
                        for name in alarms if not alarm_exists(name))
    if prefs.get("AutoRollback"):
        if not request.get("DesiredConfiguration"):
            problems.append("AutoRollback cannot be set to true when the DesiredConfiguration "
                            "parameter is empty")
        reason = rollback_unavailable(group_version, image_id)
        if reason is not None:
            problems.append(f"AutoRollback: {reason}")
    return problems


def _template_of(group: ResourceLike, view: RunView) -> ResourceLike | None:
    spec = first(group.inputs.get("launchTemplate"))
    return view.with_output(LAUNCH_TEMPLATE, "id", spec.get("id")) if spec else None


def _alarm_checker(group: ResourceLike, view: RunView) -> Any:
    region = view.region_of(group)
    names = {str(a.inputs.get("name")) for a in view.of_type(ALARM)
             if view.region_of(a) == region}
    return lambda name: name in names


def _api_shape(block: Mapping[str, Any], group: ResourceLike) -> dict[str, Any]:
    """The StartInstanceRefresh request the provider builds from an ``instance_refresh`` block
    (terraform-provider-aws ``expandStartInstanceRefreshInput``: the group's launch template
    is the desired configuration when auto rollback is on)."""
    prefs = first(block.get("preferences"))
    names = {"minHealthyPercentage": "MinHealthyPercentage",
             "maxHealthyPercentage": "MaxHealthyPercentage", "autoRollback": "AutoRollback",
             "checkpointDelay": "CheckpointDelay", "skipMatching": "SkipMatching",
             "checkpointPercentages": "CheckpointPercentages",
             "instanceWarmup": "InstanceWarmup"}
    api: dict[str, Any] = {names[k]: v for k, v in prefs.items() if k in names and v is not None}
    alarms = first(prefs.get("alarmSpecification")).get("alarms")
    if alarms:
        api["AlarmSpecification"] = {"Alarms": list(alarms)}
    request: dict[str, Any] = {"Preferences": api}
    template = first(group.inputs.get("launchTemplate"))
    if api.get("AutoRollback") and template:
        request["DesiredConfiguration"] = {"LaunchTemplate": template}
    return request


def instance_refresh_request(group: ResourceLike, view: RunView) -> list[str]:
    block = first(group.inputs.get("instanceRefresh"))
    if not block:
        return []
    template = _template_of(group, view)
    version = first(group.inputs.get("launchTemplate")).get("version")
    image = template.inputs.get("imageId") if template else None
    problems = refresh_problems(_api_shape(block, group), group_version=version,
                                image_id=image, alarm_exists=_alarm_checker(group, view))
    if first(block.get("preferences")).get("autoRollback") and group.inputs.get(
            "launchConfiguration"):
        problems.append("auto rollback needs a launch template, not a launch configuration")
    return problems


def app_group_rolls_back(group: ResourceLike, view: RunView) -> list[str]:
    """``app.py deploy`` starts refreshes with AutoRollback and the site's rollout alarms:
    the app group must allow a rollback and those alarms must exist in its region."""
    name = str(group.inputs.get("name") or "")
    site = next((s for s in ("primary", "standby") if name == app_name(s)), None)
    if site is None:
        return []
    problems = []
    template = _template_of(group, view)
    version = first(group.inputs.get("launchTemplate")).get("version")
    reason = rollback_unavailable(version, template.inputs.get("imageId") if template else None)
    if reason is not None:
        problems.append(f"{reason}; app.py deploy and rollback need it")
    exists = _alarm_checker(group, view)
    problems.extend(f"the deploy alarm {alarm} is not created in the group's region (a "
                    "refresh that names a missing alarm is refused)"
                    for alarm in rollout_alarm_names(site) if not exists(alarm))
    return problems


RULES: Iterable[Rule] = (
    Rule("autoscaling-instance-refresh-request", "An instance_refresh block asks for what "
         "StartInstanceRefresh accepts: healthy percentages in range, alarms that exist, auto "
         "rollback only from a numbered launch template version", PREFERENCES_SOURCE + "; "
         + ROLLBACK_SOURCE, (ASG,), instance_refresh_request),
    Rule("autoscaling-app-group-rolls-back", "The app group uses a numbered launch template "
         "version of an AMI id, and the alarms a deploy watches exist in its region",
         ROLLBACK_SOURCE, (ASG,), app_group_rolls_back),
)
