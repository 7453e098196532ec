"""``app.py status``: the app tier of one site as AWS reports it, in one read-only pass.

Instances and their health, the launch template version the group runs and its AMI, the
newest versions, target health, the last instance refreshes, the deploy alarms and the 5xx
rate at the load balancer over the last minutes: what an on-call engineer checks before
deciding between restart and rollback (the seed's "check application logs" is the instance's
log group; the command names it).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from caresync_dr.app import probes, rollout
from caresync_dr.app.context import AppContext


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def read_status(ctx: AppContext, minutes: int = 15) -> dict[str, Any]:
    """Everything ``status`` shows, as JSON-ready data. Raises ``LookupError`` when the group
    does not exist."""
    clients = ctx.clients
    group = probes.describe_group(clients.autoscaling(), ctx.group)
    if group is None:
        raise LookupError(f"Auto Scaling group {ctx.group} not found in {ctx.region}")
    versions = (probes.template_versions(clients.ec2(), group.template_id)
                if group.template_id else [])
    running = next((v for v in versions if str(v.version) == str(group.template_version)),
                   None)
    targets = probes.target_counts(clients.elbv2(), group.target_group_arns)
    refreshes = probes.instance_refreshes(clients.autoscaling(), ctx.group)[:5]
    alarms = probes.alarm_states(clients.cloudwatch(), rollout.rollout_alarm_names(ctx.site))
    suffix = (probes.load_balancer_suffix(clients.elbv2(), group.target_group_arns[0])
              if group.target_group_arns else None)
    rate = probes.recent_5xx(clients.cloudwatch(), suffix, minutes) if suffix else None
    return {
        "site": ctx.site, "region": ctx.region, "group": ctx.group,
        "capacity": {"min": group.min, "desired": group.desired, "max": group.max,
                     "inService": group.in_service},
        "launchTemplate": {"id": group.template_id, "version": group.template_version,
                           "image": running.image_id if running else None,
                           "rollbackPossible": rollout.is_numbered(group.template_version),
                           "versions": [{"version": v.version, "image": v.image_id,
                                         "created": _iso(v.created),
                                         "description": v.description}
                                        for v in versions[-5:]]},
        "instances": [{**asdict(i), "target": targets.states.get(i.instance_id, "not registered")}
                      for i in group.instances],
        "refreshes": [{"id": r.refresh_id, "status": r.status, "started": _iso(r.started),
                       "ended": _iso(r.ended), "version": r.desired_version,
                       "reason": r.status_reason} for r in refreshes],
        "alarms": alarms,
        "recent5xx": None if rate is None else {
            "minutes": rate.minutes, "requests": rate.requests, "errors": rate.errors,
            "percent": rate.percent},
        # The seed's "check application logs": the instances run the SSM agent (instance role
        # AmazonSSMManagedInstanceCore), so a session reaches the app's journal.
        "logs": f"aws ssm start-session --region {ctx.region} --target <instance id>, then "
                "journalctl -u caresync --since -1h",
    }


def render(status: dict[str, Any]) -> str:
    template = status["launchTemplate"]
    cap = status["capacity"]
    lines = [f"{status['group']} in {status['region']}: {cap['inService']} of {cap['desired']} "
             f"in service (min {cap['min']}, max {cap['max']})",
             f"  release: launch template {template['id']} version {template['version']} "
             f"({template['image']}); rollback "
             + ("possible" if template["rollbackPossible"] else
                "NOT possible (not a numbered version: pin one with rollback --to-version)")]
    lines += [f"  version {v['version']}: {v['image']} ({v['created']})"
              for v in template["versions"]]
    lines += [f"  instance {i['instance_id']}: {i['lifecycle']}, {i['health']}, target "
              f"{i['target']}, version {i['template_version']}" for i in status["instances"]]
    lines += [f"  alarm {name}: {state}" for name, state in status["alarms"].items()]
    rate = status["recent5xx"]
    if rate is not None:
        shown = "no requests" if rate["percent"] is None else f"{rate['percent']}%"
        lines.append(f"  5xx over the last {rate['minutes']} min: {rate['errors']:g} of "
                     f"{rate['requests']:g} requests ({shown})")
    lines += [f"  refresh {r['id']}: {r['status']} (version {r['version'] or 'same'}, started "
              f"{r['started']}){': ' + r['reason'] if r['reason'] else ''}"
              for r in status["refreshes"]]
    lines.append(f"  logs: {status['logs']}")
    return "\n".join(lines)
