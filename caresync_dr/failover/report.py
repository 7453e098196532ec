"""The run's record: JSON report, Markdown incident timeline, and the follow-ups to print."""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from caresync_dr.failover.context import FailoverContext
from caresync_dr.operations.journal import StepRecord

log = logging.getLogger(__name__)
# --scope database fences only the old primary database: its app tier is the one being
# repointed, and its region is healthy.
FENCE_STEPS = {"region": ("fence-primary-app", "fence-primary-database"),
               "database": ("fence-primary-database",)}


def fenced_status(ctx: FailoverContext, records: dict[str, StepRecord]) -> str:
    names = FENCE_STEPS[ctx.options.scope]
    outcomes = [records[n].outcome for n in names if n in records]
    if len(outcomes) == len(names) and all(o in ("done", "skipped") for o in outcomes):
        return "fenced"
    return "not confirmed"


def follow_ups(ctx: FailoverContext) -> list[str]:
    inv = ctx.inventory
    if ctx.options.scope == "database":
        return [
            f"Reconcile the prod stack: {ctx.target_database} is now the primary's writer; "
            "update Pulumi.prod.yaml/the program so the old instance "
            f"{inv.primary.database.identifier} is replaced, then `pulumi up -s prod`.",
            f"Keep {inv.primary.database.identifier} for forensics until the cause is known; "
            "create a new in-region replica so --scope database is possible again.",
            f"The cross-region dr replica {inv.standby.database.identifier} in "
            f"{inv.standby.region} still replicates from the old primary "
            f"{inv.primary.database.identifier}, which takes no writes now: a region failover "
            "now would lose every write since this failover. Once the prod stack is reconciled, "
            f"rebuild it as a replica of {ctx.target_database} (`pulumi up -s dr`); "
            "`python scripts/failover.py --check` (region scope) fails until then.",
            "Run `python scripts/failover.py --check` until it passes again.",
        ]
    if ctx.reversed:
        sw = inv.traffic_switch
        return [
            "Reconcile the stacks with reality: set `caresync-dr:activeSite: primary` in "
            f"Pulumi.prod.yaml and Pulumi.dr.yaml ({ctx.target_database} is now the writer; "
            "refresh it first, it is promoted already) and `pulumi up -s prod`; the dr stack "
            f"once {inv.standby.region} is back.",
            f"Watch the new primary: {ctx.target_database} in {inv.primary.region}.",
            f"When {inv.standby.region} is back: write {sw.primary_value} into "
            f"s3://{sw.bucket}/{sw.key} if it still says {sw.failover_value} (before the "
            "next `pulumi up -s dr --refresh`, which un-pins the primary record's check; a plain "
            "`pulumi up` compares with its state and leaves it pinned), fence the old "
            f"writer {inv.standby.database.identifier} and its app, and re-protect with "
            "`caresync-failback --stack dr` (a new standby generation replicating from "
            f"{ctx.target_database}; docs/runbooks/switchover-failback.md).",
            "Until then there is no disaster recovery: the standby site is the one that failed.",
        ]
    return [
        "Reconcile the dr stack with reality: set `caresync-dr:activeSite: standby` in "
        "Pulumi.dr.yaml and Pulumi.prod.yaml (the standby database is now the writer; do not "
        "let Pulumi re-create it as a replica), refresh it first (`pulumi refresh -s dr "
        "--target '<urn>'`: it is promoted already). While us-east-1 is down, update only the "
        "standby database and app group: `pulumi up -s dr --target '<urn>' --target '<urn>'` "
        "with the "
        "URNs of standby-database-instance and standby-app-asg from `pulumi stack "
        "--show-urns -s dr` (docs/failover-reference.md, 'After the failover'); the full "
        "`pulumi up -s dr` "
        "(Route 53 records, us-east-1 alarms) once us-east-1's control plane is back.",
        f"Watch the new primary: {ctx.target_database} in {inv.standby.region}, alarms on "
        f"{inv.alert_topic_arn}.",
        f"Fail back once {inv.primary.region} is healthy: a new prod database generation "
        f"replicating from {ctx.target_database} (docs/lifecycles.md, failback), wait until "
        "its lag is under the RPO, "
        "then run this procedure in the other direction in a maintenance window (promote it, "
        f"scale prod up, write {inv.traffic_switch.primary_value} into "
        f"s3://{inv.traffic_switch.bucket}/{inv.traffic_switch.key}, verify), "
        "and give the dr stack a new standby generation (activeSite primary).",
        "Until fail-back, the old primary must stay fenced: do not scale its app tier up.",
    ]


def _seconds_between(start: datetime, end_iso: str | None) -> float | None:
    if not end_iso:
        return None
    return round((datetime.fromisoformat(end_iso) - start).total_seconds(), 3)


def rto_start(ctx: FailoverContext) -> datetime:
    """Where the RTO clock starts: the stated outage, else this run's start."""
    return ctx.options.outage_started or ctx.started_at


def build_report(ctx: FailoverContext, records: dict[str, StepRecord], outcome: str,
                 exit_code: int, message: str) -> dict[str, Any]:
    lag = ctx.facts.get("replica_lag") or {}
    return {
        "runId": ctx.run_id,
        "project": ctx.inventory.project,
        "stack": ctx.options.stack,
        "scope": ctx.options.scope,
        "outcome": outcome,
        "exitCode": exit_code,
        "message": message,
        "startedAt": ctx.started_at.isoformat(),
        "endedAt": datetime.now(UTC).isoformat(),
        # RTO is writable service: from the outage the operator stated (--outage-started), else
        # from this run's start, to the verify step's first answer from a writable database.
        "rtoSeconds": _seconds_between(rto_start(ctx), ctx.facts.get("serving_at")),
        "rtoFrom": "outage" if ctx.options.outage_started is not None else "run start",
        "servingAt": ctx.facts.get("serving_at"),
        "rtoObjectiveSeconds": ctx.inventory.objectives.rto_minutes * 60,
        "dataLossExposureSeconds": ctx.facts.get("data_loss_exposure_seconds",
                                                 lag.get("seconds")),
        # If the replica received nothing after its last lag datapoint and the old primary
        # kept taking writes until the promotion, this much is lost (the honest upper bound).
        "dataLossExposureMaxSeconds": ctx.facts.get("data_loss_exposure_max_seconds",
                                                    lag.get("boundSeconds")),
        # The operator's --outage-started, and the loss as of then (None without it).
        "outageStartedAt": lag.get("outageStartedAt"),
        "dataLossExposureAtOutageSeconds": lag.get("boundAtOutageSeconds"),
        "replicationActive": lag.get("replication_active"),
        "rpoObjectiveSeconds": ctx.inventory.objectives.rpo_minutes * 60,
        "replicaLag": lag,
        "forced": ctx.options.force,
        # --adopt-promoted: the target promoted by hand before the run (who, what, when).
        "adoptedPromotion": ctx.facts.get("adopted_promotion"),
        "fenced": fenced_status(ctx, records),
        "newWriter": {"identifier": ctx.target_database, "region": ctx.target.region,
                      "endpoint": ctx.facts.get("promoted_endpoint")},
        "facts": ctx.facts,
        "steps": [asdict(r) for r in records.values()],
        "followUps": follow_ups(ctx) if outcome in ("completed", "already failed over") else [],
        "timeline": f"s3://{ctx.inventory.backup_bucket}/incidents/{ctx.run_id}.md",
    }


def render_timeline(report: dict[str, Any]) -> str:
    def fmt(value: object) -> str:
        return "-" if value is None else str(value)

    lines = [
        f"# Incident timeline: {report['scope']} failover {report['runId']}",
        "",
        f"- Outcome: **{report['outcome']}** (exit {report['exitCode']}): {report['message']}",
        f"- Started {report['startedAt']}, ended {report['endedAt']}",
        f"- Measured RTO (writable service, from the {report.get('rtoFrom', 'run start')}): "
        f"{fmt(report['rtoSeconds'])} s (objective {report['rtoObjectiveSeconds']} s)",
        f"- Data-loss exposure at promotion (last known replica lag): "
        f"{fmt(report['dataLossExposureSeconds'])} s, at most "
        f"{fmt(report['dataLossExposureMaxSeconds'])} s if the old primary kept taking writes "
        f"after that measurement (objective {report['rpoObjectiveSeconds']} s)"
        + ("" if report["replicationActive"] is not False else
           " -- replication had stopped before the promotion")
        + (" -- replication checks overridden with --force" if report["forced"] else ""),
        *([f"- Outage start stated by the operator (--outage-started): "
           f"{report['outageStartedAt']}; exposure as of then: "
           f"{fmt(report['dataLossExposureAtOutageSeconds'])} s"]
          if report.get("outageStartedAt") else []),
        *([f"- Promoted by hand before the run, adopted with --adopt-promoted: "
           f"{adopted.get('database')} in {adopted.get('region')} by {adopted.get('operator')} "
           f"at {adopted.get('at')}"] if (adopted := report.get("adoptedPromotion")) else []),
        f"- Old primary fenced: {report['fenced']}",
        f"- New writer: {report['newWriter']['identifier']} in {report['newWriter']['region']}",
        "",
        "| step | outcome | started | ended | seconds | detail |",
        "|---|---|---|---|---|---|",
    ]
    for step in report["steps"]:
        detail = str(step["detail"]).replace("|", "\\|")
        lines.append(f"| {step['name']} | {step['outcome']} | {fmt(step['started_at'])} | "
                     f"{fmt(step['ended_at'])} | {fmt(step['seconds'])} | {detail} |")
    lines += ["", "## Follow-ups", ""] + [f"{i}. {t}" for i, t in
                                          enumerate(report["followUps"], 1)]
    return "\n".join(lines) + "\n"
