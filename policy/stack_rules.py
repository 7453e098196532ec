"""Stack-level guardrails on the two sites together and on the recovery objectives."""

from __future__ import annotations

import json

from pulumi_policy import PolicyResource, ReportViolation, StackValidationArgs

from caresync_dr.objectives import compute
from caresync_dr.settings import (
    Settings,
    SettingsError,
    StackFileError,
    read_stack_file,
    settings_from_stack_file,
)
from policy.context import (
    SSM_PARAMETER,
    check_each,
    of_type,
    project_dir,
    prop,
    stack_policy,
    with_settings,
)

OBJECTIVE_KEYS = ("rtoMinutes", "rpoMinutes")


def _stack_settings(args: StackValidationArgs, report: ReportViolation) -> Settings | None:
    if not args.resources:
        args.not_applicable("the stack registers no resources")
    return with_settings(args.resources[0].urn, report)


def peer_stack_name(settings: Settings) -> str | None:
    """The other site's stack name (the last part of primaryStack / standbyStack)."""
    ref = settings.standby_stack if settings.is_primary else settings.primary_stack
    return ref.rsplit("/", 1)[-1] if ref else None


def both_sites_problems(settings: Settings) -> list[str]:
    """Both stack files state the same objectives and regions, one site each."""
    root = project_dir()
    own_key = "standbyStack" if settings.is_primary else "primaryStack"
    peer = peer_stack_name(settings)
    if peer is None:
        return [f"{settings.stack} does not name the other site's stack: set "
                f"caresync-dr:{own_key} so both sites' objectives can be compared"]
    problems: list[str] = []
    try:
        own_raw, own_region = read_stack_file(settings.stack, root)
        peer_raw, peer_region = read_stack_file(peer, root)
        peer_settings = settings_from_stack_file(peer, root)
    except (StackFileError, SettingsError) as exc:
        return [f"the other site's stack {peer!r} cannot be read: {exc}"]
    for stack, raw in ((settings.stack, own_raw), (peer, peer_raw)):
        for key in OBJECTIVE_KEYS:
            if key not in raw:
                problems.append(f"Pulumi.{stack}.yaml does not declare caresync-dr:{key}: "
                                "declare it (a default is not an objective anyone agreed to)")
    if peer_settings.site == settings.site:
        problems.append(f"stacks {settings.stack} and {peer} are both {settings.site} sites: "
                        "one must be primary and the other standby")
    for field, key in (("rto_minutes", "rtoMinutes"), ("rpo_minutes", "rpoMinutes"),
                       ("primary_region", "primaryRegion"), ("standby_region", "standbyRegion")):
        mine, theirs = getattr(settings, field), getattr(peer_settings, field)
        if mine != theirs:
            problems.append(f"caresync-dr:{key} is {mine!r} in {settings.stack} but {theirs!r} "
                            f"in {peer}: make both sites agree")
    if own_region is not None and own_region == peer_region:
        problems.append(f"both stacks deploy to aws:region {own_region}: the standby site "
                        "must be in another region")
    return problems


def _validate_both_sites(args: StackValidationArgs, report: ReportViolation) -> None:
    settings = _stack_settings(args, report)
    if settings is None:
        return
    for problem in both_sites_problems(settings):
        report(problem, None)
    # The dr stack also writes the objectives into the failover inventory; they must match.
    def one(parameter: PolicyResource) -> None:
        if prop(parameter.props, "name") != settings.inventory_parameter:
            return
        try:
            document = json.loads(str(prop(parameter.props, "value")))
        except json.JSONDecodeError:
            report(f"{parameter.name}: the failover inventory is not JSON", parameter.urn)
            return
        objectives = document.get("objectives", {}) if isinstance(document, dict) else {}
        want = {"rtoMinutes": settings.rto_minutes, "rpoMinutes": settings.rpo_minutes}
        missing = [site for site in ("primary", "standby") if site not in document]
        if missing:
            report(f"{parameter.name}: the failover inventory lacks the {missing} site(s)",
                   parameter.urn)
        if {k: objectives.get(k) for k in want} != want:
            report(f"{parameter.name}: the inventory's objectives {objectives} differ from "
                   f"the settings {want}: render them from the settings", parameter.urn)
    check_each(of_type(args.resources, SSM_PARAMETER), one)


objectives_both_sites = stack_policy(
    "objectives-present-for-both-sites",
    "Both sites' stacks declare the same rtoMinutes, rpoMinutes and regions.",
    _validate_both_sites)


def region_problems(settings: Settings) -> list[str]:
    if settings.primary_region == settings.standby_region:
        return [f"standbyRegion equals primaryRegion ({settings.primary_region}): put the "
                "standby site in another region, or it shares the primary's regional outages"]
    return []


def _validate_regions(args: StackValidationArgs, report: ReportViolation) -> None:
    settings = _stack_settings(args, report)
    if settings is not None:
        for problem in region_problems(settings):
            report(problem, None)


dr_region_differs = stack_policy(
    "dr-region-differs-from-primary",
    "The standby region differs from the primary region.",
    _validate_regions)


def _validate_feasible(args: StackValidationArgs, report: ReportViolation) -> None:
    settings = _stack_settings(args, report)
    if settings is None:
        return
    for problem in compute(settings).problems():
        report(f"{problem} (see `python scripts/objectives.py --stack {settings.stack}`)", None)


objectives_feasible = stack_policy(
    "objectives-feasible",
    "The configuration can meet rtoMinutes and rpoMinutes (caresync_dr.objectives).",
    _validate_feasible)

POLICIES = [objectives_both_sites, dr_region_differs, objectives_feasible]
