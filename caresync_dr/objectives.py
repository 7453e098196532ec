"""Objectives as code: can this configuration meet its RTO and RPO?

The worst-case RTO budget of a regional failover is the sum of the steps on the critical path,
each derived from a setting or from a documented estimate
(:class:`caresync_dr.estimates.Estimates`, which failover.py's plan shows too). It follows
failover.py's region plan: detection pages the on-call engineer, who decides; failover.py then
promotes the replica and scales the standby *concurrently* (the longer of the two counts), flips
the traffic switch (which Route 53 sees after its own check cycle), and verifies; resolvers may
keep the old answer for the record's TTL.

The RPO exposure is listed per failure mode. The plan's RPO binds the recovery paths it commits
to (cross-region replica, point-in-time restore); logical dumps are the last resort for
corruption that the other two cannot undo, shown with their exposure but not bound by the RPO
(the plan itself takes dumps every 6 h against a 15-minute RPO).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from caresync_dr.estimates import DEFAULT_ESTIMATES, Estimates
from caresync_dr.settings import Settings


@dataclass(frozen=True)
class Step:
    """One step of the RTO critical path."""

    name: str
    seconds: int
    basis: str


@dataclass(frozen=True)
class Exposure:
    """Worst-case data loss of one failure mode and the recovery path it uses."""

    failure_mode: str
    recovery_path: str
    seconds: int
    basis: str
    bound_by_rpo: bool
    remedy: str = ""


@dataclass(frozen=True)
class Objectives:
    """The computed budget and exposures of one stack's configuration."""

    stack: str
    rto_objective_seconds: int
    rpo_objective_seconds: int
    rto_steps: tuple[Step, ...]
    rpo_exposures: tuple[Exposure, ...]
    estimates: Estimates = field(default=DEFAULT_ESTIMATES)

    @property
    def rto_budget_seconds(self) -> int:
        return sum(step.seconds for step in self.rto_steps)

    @property
    def rto_headroom_seconds(self) -> int:
        return self.rto_objective_seconds - self.rto_budget_seconds

    def problems(self) -> list[str]:
        """Why this configuration cannot meet its objectives; empty when it can."""
        found: list[str] = []
        if self.rto_budget_seconds > self.rto_objective_seconds:
            largest = max(self.rto_steps, key=lambda step: step.seconds)
            found.append(
                f"RTO: the worst-case failover takes {_minutes(self.rto_budget_seconds)} but "
                f"rtoMinutes is {_minutes(self.rto_objective_seconds)}; raise rtoMinutes or "
                f"shorten the steps (largest: {largest.name}, {_minutes(largest.seconds)}: "
                f"{largest.basis})")
        for exposure in self.rpo_exposures:
            if exposure.bound_by_rpo and exposure.seconds > self.rpo_objective_seconds:
                found.append(
                    f"RPO: {exposure.failure_mode} ({exposure.recovery_path}) can lose "
                    f"{_minutes(exposure.seconds)} of data but rpoMinutes is "
                    f"{_minutes(self.rpo_objective_seconds)}; {exposure.remedy}")
        return found

    @property
    def feasible(self) -> bool:
        return not self.problems()

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "feasible": self.feasible,
            "problems": self.problems(),
            "rto": {
                "objectiveSeconds": self.rto_objective_seconds,
                "budgetSeconds": self.rto_budget_seconds,
                "headroomSeconds": self.rto_headroom_seconds,
                "steps": [{"name": s.name, "seconds": s.seconds, "basis": s.basis}
                          for s in self.rto_steps],
            },
            "rpo": {
                "objectiveSeconds": self.rpo_objective_seconds,
                "exposures": [{"failureMode": e.failure_mode, "recoveryPath": e.recovery_path,
                               "seconds": e.seconds, "basis": e.basis,
                               "boundByRpo": e.bound_by_rpo,
                               "meetsRpo": e.seconds <= self.rpo_objective_seconds}
                              for e in self.rpo_exposures],
            },
        }


def _minutes(seconds: int) -> str:
    minutes, rest = divmod(seconds, 60)
    if minutes == 0:
        return f"{rest} s"
    return f"{minutes} min" if rest == 0 else f"{minutes} min {rest} s"


def rto_steps(settings: Settings, estimates: Estimates = DEFAULT_ESTIMATES) -> tuple[Step, ...]:
    """The regional-failover critical path, in the order failover happens."""
    interval = settings.health_check_interval_seconds
    threshold = settings.health_check_failure_threshold
    production = settings.app_capacity.desired
    warm = settings.standby_warm_capacity
    promotion = estimates.replica_promotion_seconds
    if warm >= production:
        scale, scale_basis = 0, f"standbyWarmCapacity {warm} already runs production"
    else:
        scale = estimates.scale_up_seconds
        scale_basis = (f"scale-up {scale} s (standbyWarmCapacity {warm} < appCapacity.desired "
                       f"{production}: boot {estimates.instance_boot_seconds} s + grace "
                       f"{estimates.health_check_grace_seconds} s)")
    return (
        Step("detection", interval * threshold,
             f"healthCheckIntervalSeconds {interval} x healthCheckFailureThreshold {threshold}"),
        Step("operator decision", estimates.operator_decision_seconds,
             "seed plan: assessment and team notification"),
        Step("promotion and scale-up", max(promotion, scale),
             f"concurrent: replica promotion {promotion} s (estimate), {scale_basis}"),
        Step("traffic switch", interval * threshold + estimates.route53_propagation_seconds,
             f"the switch check's {interval} s x {threshold} + Route 53 propagation "
             f"{estimates.route53_propagation_seconds} s (estimate)"),
        Step("DNS cache expiry", estimates.alias_ttl_seconds,
             "TTL of a Route 53 alias record to an ALB"),
        Step("verification", estimates.verification_seconds,
             "failover.py end-to-end check, worst case its default --verify-timeout"),
    )


def rpo_exposures(settings: Settings,
                  estimates: Estimates = DEFAULT_ESTIMATES) -> tuple[Exposure, ...]:
    """Worst-case data loss per failure mode."""
    lag = settings.replica_lag_alarm_seconds
    detection = settings.replica_lag_detection_seconds
    dump = settings.backup_interval_hours * 3600
    return (
        Exposure("regional outage", "promote the cross-region replica", lag + detection,
                 f"the replica-lag alarm threshold ({lag} s, derived from rpoMinutes) + its "
                 f"detection delay ({detection} s: lag keeps growing until it pages)", True,
                 f"the lag alarm needs {detection} s to page: set rpoMinutes to at least "
                 f"{-(-detection // 60)}"),
        Exposure("database failure or corruption", "point-in-time restore",
                 estimates.pitr_granularity_seconds,
                 "the RDS transaction-log upload interval (5 min, fixed by AWS)", True,
                 "point-in-time restore cannot do better than 5 min: set rpoMinutes to at "
                 "least 5"),
        Exposure("corruption beyond point-in-time recovery", "restore the latest logical dump",
                 dump, f"backupIntervalHours ({settings.backup_interval_hours} h); the last "
                 "resort, not bound by the RPO", False),
    )


def compute(settings: Settings, estimates: Estimates = DEFAULT_ESTIMATES) -> Objectives:
    """The objectives report for one stack's settings."""
    return Objectives(
        stack=settings.stack,
        rto_objective_seconds=settings.rto_minutes * 60,
        rpo_objective_seconds=settings.rpo_minutes * 60,
        rto_steps=rto_steps(settings, estimates),
        rpo_exposures=rpo_exposures(settings, estimates),
        estimates=estimates,
    )


def render_table(objectives: Objectives) -> str:
    """The human table printed by ``scripts/objectives.py``."""
    lines = [f"Objectives for stack {objectives.stack}", "",
             f"RTO budget (worst-case regional failover) vs rtoMinutes "
             f"{_minutes(objectives.rto_objective_seconds)}",
             f"  {'step':<28}{'time':>12}  basis"]
    for step in objectives.rto_steps:
        lines.append(f"  {step.name:<28}{_minutes(step.seconds):>12}  {step.basis}")
    verdict = "meets" if objectives.rto_headroom_seconds >= 0 else "MISSES"
    lines.append(f"  {'total':<28}{_minutes(objectives.rto_budget_seconds):>12}  "
                 f"{verdict} the RTO (headroom {objectives.rto_headroom_seconds} s)")
    lines += ["", f"RPO exposure per failure mode vs rpoMinutes "
              f"{_minutes(objectives.rpo_objective_seconds)}",
              f"  {'failure mode':<42}{'loss':>10}  {'verdict':<22}recovery path"]
    for exposure in objectives.rpo_exposures:
        within = exposure.seconds <= objectives.rpo_objective_seconds
        if exposure.bound_by_rpo:
            verdict = "meets the RPO" if within else "MISSES the RPO"
        else:
            verdict = "last resort (unbound)"
        lines.append(f"  {exposure.failure_mode:<42}{_minutes(exposure.seconds):>10}  "
                     f"{verdict:<22}{exposure.recovery_path}")
    lines.append("")
    problems = objectives.problems()
    if problems:
        lines.append("CANNOT MEET the objectives:")
        lines += [f"  - {problem}" for problem in problems]
    else:
        lines.append("The configuration can meet rtoMinutes and rpoMinutes.")
    return "\n".join(lines)
