"""The app tier on both sites is ready for rollouts Auto Scaling can roll back (issue 14).

The group runs a numbered template version that pulumi up never switches; the alarms a deploy
watches exist under the names ``app.py`` uses, and their windows fit in the deploy's bake time;
every refresh ``app.py`` can ask for passes AWS's validation against this very group.
"""

from __future__ import annotations

import pytest

from caresync_dr.app.rollout import (
    BAKE_SECONDS,
    METRIC_DELAY_SECONDS,
    MODES,
    RefreshMode,
    TemplateVersion,
    refresh_request,
    rollout_alarm_names,
)
from caresync_dr.emulation.aws_rules.autoscaling import refresh_problems
from caresync_dr.offline.runtime import ProgramRun, of_type
from tests.stack.checks import check, one

ASG = "aws:autoscaling/group:Group"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def _site(run: ProgramRun) -> str:
    return "primary" if run.stack == "prod" else "standby"


def test_group_runs_the_templates_numbered_version_and_pulumi_never_switches_it(
        any_stack: ProgramRun) -> None:
    site = _site(any_stack)
    group = one(any_stack, ASG, f"{site}-app-asg")
    template = one(any_stack, TEMPLATE, f"{site}-app-launch-template")
    spec = group.inputs["launchTemplate"]
    check(group, spec["id"] == template.resource_id, "not the site's template")
    check(group, spec["version"] == str(int(template.outputs["latestVersion"])),
          f"version {spec['version']!r} is not the template's latest numbered version")
    check(group, "launchTemplate.version" in group.ignore_changes,
          "pulumi up would switch the release itself and defeat the automatic rollback")
    check(group, "instanceRefresh" not in group.inputs,
          "provider-driven refreshes roll back to the new version (tf-provider-aws #34189)")


def test_the_deploy_alarms_exist_and_fit_the_bake_time(any_stack: ProgramRun) -> None:
    site = _site(any_stack)
    alarms = {a.inputs["name"]: a for a in of_type(any_stack.resources, ALARM)}
    for name in rollout_alarm_names(site):
        assert name in alarms, f"{name} is watched by app.py deploy but not created"
        alarm = alarms[name]
        period = alarm.inputs.get("period") or max(
            q["metric"]["period"] for q in alarm.inputs["metricQueries"] if q.get("metric"))
        window = period * alarm.inputs["evaluationPeriods"]
        check(alarm, window + METRIC_DELAY_SECONDS <= BAKE_SECONDS,
              f"a {window:g} s window does not fit the deploy's {BAKE_SECONDS} s bake time")


@pytest.mark.parametrize("mode", list(MODES.values()), ids=list(MODES))
def test_every_refresh_app_py_asks_for_passes_aws_validation(any_stack: ProgramRun,
                                                             mode: RefreshMode) -> None:
    site = _site(any_stack)
    group = one(any_stack, ASG, f"{site}-app-asg")
    template = one(any_stack, TEMPLATE, f"{site}-app-launch-template")
    names = {a.inputs["name"] for a in of_type(any_stack.resources, ALARM)}
    target = TemplateVersion(template.resource_id, 2)
    request = refresh_request(mode, site, group.inputs["name"],
                              target if mode.needs_version else None)
    problems = refresh_problems(request, group_version=group.inputs["launchTemplate"]["version"],
                                image_id=template.inputs["imageId"],
                                alarm_exists=names.__contains__)
    assert problems == []
    prefs = request["Preferences"]
    assert (prefs["MinHealthyPercentage"], prefs["MaxHealthyPercentage"]) == (100, 200), \
        "every replacement keeps the serving capacity"
