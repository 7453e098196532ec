"""How long the steps of a recovery take: the one source for failover.py's plan and the RTO
budget of :mod:`caresync_dr.objectives`.

Durations that no setting controls, each an estimate with its basis. failover.py's plan shows
each step's figure (``--dry-run``), and ``objectives.py`` adds them up into the worst-case RTO
budget; the drill's measured timeline is the check on them. Change a figure here, with its
source, and both follow.
"""

from __future__ import annotations

from dataclasses import dataclass

from caresync_dr.app.rollout import BAKE_SECONDS
from caresync_dr.failover.options import DEFAULT_VERIFY_TIMEOUT_SECONDS


@dataclass(frozen=True)
class Estimates:
    """Durations that no setting controls. Each is an estimate with its basis; change here."""

    # Route 53 aggregates its checkers' results and hands the new status to its DNS servers;
    # AWS gives no figure, 30 s is the allowance used here.
    route53_propagation_seconds: int = 30
    # Route 53 alias records to an Application Load Balancer answer with a fixed TTL of 60 s;
    # resolvers may serve the old answer that long after the switch flips.
    alias_ttl_seconds: int = 60
    # The seed plan: "0-15 min: Assessment and team notification" before recovery starts.
    operator_decision_seconds: int = 15 * 60
    # Promoting a cross-region RDS replica (it applies the remaining WAL and reboots); AWS says
    # "a few minutes" depending on size and load; 10 min is a pessimistic allowance.
    replica_promotion_seconds: int = 10 * 60
    # A new instance: launch, boot, start the app (5 min), then the Auto Scaling health-check
    # grace period before it takes traffic (the AWS default, 300 s).
    instance_boot_seconds: int = 5 * 60
    health_check_grace_seconds: int = 300
    # failover.py's end-to-end verification (health URL through DNS, a database write): the
    # worst case is its default --verify-timeout, read from failover.py's options.
    verification_seconds: int = int(DEFAULT_VERIFY_TIMEOUT_SECONDS)
    # RDS uploads transaction logs to S3 every 5 minutes: the point-in-time restore granularity.
    pitr_granularity_seconds: int = 5 * 60
    # An RDS point-in-time restore: a new instance from the nearest snapshot, then the logs
    # replayed up to T; AWS gives no figure ("can take several hours" for large databases, RDS
    # user guide), 30 min is the allowance for CareSync's size.
    pitr_restore_seconds: int = 30 * 60
    # ModifyDBInstance moving an instance into other VPC security groups (applied immediately):
    # the instance shows "modifying" until the groups are active; AWS gives no figure, 30 s is
    # the allowance (the fence of pitr.py waits for it).
    security_group_change_seconds: int = 30
    # One or a few AWS API calls (an S3 PutObject, an SSM PutParameter, an SNS Publish, a
    # security-group revoke): seconds, bounded by the calls' timeouts and retries.
    api_call_seconds: int = 5

    @property
    def scale_up_seconds(self) -> int:
        """New app instances taking traffic: boot, then the health-check grace period."""
        return self.instance_boot_seconds + self.health_check_grace_seconds

    @property
    def instance_refresh_seconds(self) -> int:
        """A rolling instance refresh: each replacement boots and warms up like a scale-up."""
        return self.scale_up_seconds

    @property
    def deploy_seconds(self) -> int:
        """A deploy's refresh (the longest refresh mode): the replacements, then the bake time
        (:data:`caresync_dr.app.rollout.BAKE_SECONDS`) that still watches the alarms."""
        return self.instance_refresh_seconds + BAKE_SECONDS


DEFAULT_ESTIMATES = Estimates()
