"""AWS Backup guardrail: a plan runs at least every backupIntervalHours and copies off-region."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs

from policy.context import BACKUP_PLAN, items, prop, resource_policy, with_settings


class ScheduleError(ValueError):
    """A schedule expression this guardrail cannot read."""


def _hours(field: str) -> set[int]:
    hours: set[int] = set()
    for part in field.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base in ("*", ""):
            start, end = 0, 23
        elif "-" in base:
            first, last = base.split("-", 1)
            start, end = int(first), int(last)
        else:
            start = int(base)
            end = 23 if step_text else start
        if not (0 <= start <= 23 and 0 <= end <= 23 and step >= 1):
            raise ScheduleError(f"hour field {field!r} is out of range")
        hours.update(range(start, end + 1, step))
    return hours


def max_gap_hours(schedule: str) -> int:
    """The longest time between two runs of an AWS cron schedule, in whole hours.

    Runs that are not daily (a day-of-month or day-of-week restriction) count as 24 h or more.
    """
    match = re.fullmatch(r"\s*cron\((.+)\)\s*", schedule)
    if not match:
        raise ScheduleError(f"{schedule!r} is not an AWS cron(...) expression")
    fields = match.group(1).split()
    if len(fields) != 6:
        raise ScheduleError(f"{schedule!r} needs 6 fields: minutes hours day month weekday year")
    _, hour_field, day, month, weekday, _ = fields
    if day not in ("*", "?") or month != "*" or weekday not in ("*", "?"):
        return 7 * 24 if weekday not in ("*", "?") else 28 * 24
    try:
        hours = sorted(_hours(hour_field))
    except ValueError as exc:
        raise ScheduleError(f"cannot read the hour field of {schedule!r}: {exc}") from exc
    gaps = [later - earlier for earlier, later in itertools.pairwise(hours)]
    gaps.append(24 - hours[-1] + hours[0])
    return max(gaps)


def _arn_region(arn: Any) -> str | None:
    parts = str(arn).split(":")
    return parts[3] if len(parts) > 3 and parts[0] == "arn" else None


def plan_problems(props: Mapping[str, Any], interval_hours: int, region: str,
                  require_copy: bool = True) -> list[str]:
    rules = items(prop(props, "rules"))
    frequent = []
    unreadable = []
    for rule in rules:
        schedule = prop(rule, "schedule")
        try:
            if schedule is not None and max_gap_hours(str(schedule)) <= interval_hours:
                frequent.append(rule)
        except ScheduleError as exc:
            unreadable.append(str(exc))
    if not frequent:
        why = f" ({'; '.join(unreadable)})" if unreadable else ""
        return [f"no rule runs at least every {interval_hours} h (backupIntervalHours){why}: "
                f"set schedule='cron(0 */{interval_hours} * * ? *)'"]
    if not require_copy:
        return []
    for rule in frequent:
        for copy in items(prop(rule, "copyActions")):
            target = _arn_region(prop(copy, "destinationVaultArn"))
            if target is not None and target != region:
                return []
    return [f"rule {prop(frequent[0], 'ruleName')!r} copies no recovery point out of {region}: "
            "add copy_actions=[{destination_vault_arn: <the vault in the other site's region>}]"]


def _plan(args: ResourceValidationArgs, report: ReportViolation) -> list[str]:
    settings = with_settings(args.urn, report)
    if settings is None:
        return []
    region = str(prop(args.props, "region") or settings.region)
    # A promoted standby (activeSite standby) serves alone because the primary region failed:
    # copies into that region cannot be required until fail-back, and the guardrail must not
    # block the reconciling `pulumi up` during the outage.
    require_copy = settings.active_site == "primary"
    return plan_problems(args.props, settings.backup_interval_hours, region, require_copy)


backup_plan_frequency_and_copy = resource_policy(
    "backup-plan-interval-and-cross-region-copy",
    "AWS Backup plans run at least every backupIntervalHours and copy each recovery point to a "
    "vault in another region (not required while the standby is the active site).",
    BACKUP_PLAN, _plan)

POLICIES = [backup_plan_frequency_and_copy]
