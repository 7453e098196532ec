"""The physical names of what the stacks create and the tools look up, derived in one place.

The components name their resources with these functions, and the inventory, the failover, the
backup and restore-test commands and the drill find them by the same functions, so a name
changes in one place or nowhere. Physical names are fixed (not Pulumi's random suffixes) so an
operator and ``failover.py`` recognise them during an outage without the Pulumi state.

A site is ``primary`` (stack prod) or ``standby`` (stack dr). AWS's own rules for these names
(lengths, characters) are in :mod:`caresync_dr.aws_names`; the policy pack and the offline
runs check them.
"""

from __future__ import annotations

PROJECT = "caresync-dr"
# Which stack deploys which site.
STACK_OF_SITE = {"primary": "prod", "standby": "dr"}


def site_prefix(site: str) -> str:
    """``caresync-primary`` / ``caresync-standby``: the stem of every per-site name."""
    return f"caresync-{site}"


# --- KMS -------------------------------------------------------------------------------------

def site_key_alias(site: str) -> str:
    """``alias/caresync-<site>``, the site key's alias in its own region.

    KMS accepts an alias wherever a key id is asked for (``KeyId`` of SSM PutParameter, of KMS
    Encrypt), so tools that write encrypted data in a region (failover.py repointing a
    SecureString endpoint parameter, backup.py wrapping a data key) need nothing but the site
    name. IAM policies must still name the key's ARN: an alias ARN in ``Resource`` does not
    grant use of the key it points to (KMS developer guide, "Using aliases to control access").
    """
    return f"alias/{site_prefix(site)}"


# --- Database --------------------------------------------------------------------------------

ENGINE = "postgres"


def db_identifier(site: str, generation: int = 1) -> str:
    """``caresync-<site>-db``; generation N > 1 (a new identity) ``caresync-<site>-db-g<N>``."""
    base = f"{site_prefix(site)}-db"
    return base if generation == 1 else f"{base}-g{generation}"


def replica_identifier(site: str, index: int, generation: int = 1) -> str:
    """The in-region read replicas: ``caresync-<site>-db[-g<N>]-replica-<index>``."""
    return f"{db_identifier(site, generation)}-replica-{index}"


def db_subnet_group_name(site: str) -> str:
    return f"{site_prefix(site)}-db"


def parameter_group_family(major: str | int) -> str:
    """RDS parameter group family of a PostgreSQL major version: ``postgres15``."""
    return f"{ENGINE}{major}"


def db_identifier_pattern(site: str) -> str:
    """Every generation and replica of the site's database (IAM resource ARNs)."""
    return f"{db_identifier(site)}*"


def parameter_group_pattern(site: str) -> str:
    """The site's parameter groups of every major version (IAM resource ARNs)."""
    return f"{site_prefix(site)}-{ENGINE}*"


def parameter_group_name(site: str, major: str | int) -> str:
    """``caresync-<site>-postgres<major>``: one group per family, so a major upgrade gets a new
    group beside the old one."""
    return f"{site_prefix(site)}-{parameter_group_family(major)}"


def endpoint_parameter_name(site: str) -> str:
    """The SSM parameter holding the site's database host, read by its app at boot."""
    return f"/{PROJECT}/{site}/database-host"


def restore_test_security_group_name(site: str) -> str:
    """The no-access group restore-tested copies are placed in."""
    return f"{site_prefix(site)}-restore-test"


# Self-managed Secrets Manager secrets (decision D1), replicated into the standby region.
# The channels' credentials (chat webhook URL, Statuspage API key): created by the operator in
# the standby region with a replica in the primary (docs/communication.md, "Secrets").
NOTIFY_SECRET_NAME = "caresync/notify"
MASTER_SECRET_NAME = "caresync/db/master"
APP_SECRET_NAME = "caresync/db/app"


# --- App tier, alerts, backups, audit --------------------------------------------------------

def app_name(site: str) -> str:
    """The Auto Scaling group, its launch template, target group and instance role."""
    return f"{site_prefix(site)}-app"


def alb_name(site: str) -> str:
    return f"{site_prefix(site)}-alb"


def alert_topic_name(site: str) -> str:
    return f"{site_prefix(site)}-alerts"


def alarm_name(site: str, key: str) -> str:
    """A site alarm: ``caresync-<site>-<key>`` (``alb-5xx``, ``unhealthy-hosts``, ...);
    ``key`` ``*`` gives the pattern of them all (IAM resource ARNs)."""
    return f"{site_prefix(site)}-{key}"


def in_region_parameter(site: str, name: str) -> str:
    """The in-region operations' lock and journals (app.py, pitr.py), in the site's region:
    ``/caresync-dr/<site>/in-region/<name>``."""
    return f"/{PROJECT}/{site}/in-region/{name}"


def backup_vault_name(site: str) -> str:
    """The AWS Backup vault (and plan) of the site."""
    return site_prefix(site)


def backup_bucket_name(site: str, account_id: str) -> str:
    return f"{site_prefix(site)}-backups-{account_id}"


def switch_bucket_name(account_id: str) -> str:
    """The traffic switch's bucket, in the standby region. No dots: the virtual-hosted HTTPS
    name Route 53 probes must match S3's wildcard certificate."""
    return f"caresync-traffic-switch-{account_id}"


def audit_bucket_name(site: str, account_id: str) -> str:
    return f"{site_prefix(site)}-audit-{account_id}"


def alb_log_bucket_name(site: str, account_id: str) -> str:
    return f"{site_prefix(site)}-alb-logs-{account_id}"


def waf_log_bucket_name(site: str, account_id: str) -> str:
    """WAF logs only to buckets whose names start with ``aws-waf-logs-`` (WAF developer
    guide, "Amazon S3 logging destination")."""
    return f"aws-waf-logs-{site_prefix(site)}-{account_id}"


def trail_name(site: str) -> str:
    return f"{site_prefix(site)}-audit"


# --- Breach detection and response (issue 13) -----------------------------------------------

def security_topic_name(site: str) -> str:
    """The site's security topic, separate from its ops alert topic (components/detection.py)."""
    return f"{site_prefix(site)}-security"


def trail_log_group_name(site: str) -> str:
    """The CloudWatch Logs group the site's trail also delivers to."""
    return f"/{PROJECT}/{site}/cloudtrail"


def trail_logs_role_name(site: str) -> str:
    """The role CloudTrail assumes to write into that group."""
    return f"{site_prefix(site)}-cloudtrail-logs"


def backup_service_role_name(site: str) -> str:
    """The role AWS Backup assumes for the site's plan and restore jobs."""
    return f"{site_prefix(site)}-backup"


def rds_monitoring_role_name(site: str) -> str:
    """The role RDS Enhanced Monitoring assumes to publish the site's OS metrics."""
    return f"{site_prefix(site)}-rds-monitoring"


def security_alarm_name(site: str, signal_key: str) -> str:
    """One breach signal's alarm (caresync_dr.detection): ``caresync-<site>-security-<key>``."""
    return alarm_name(site, f"security-{signal_key}")


def security_metric_filter_name(site: str, signal_key: str) -> str:
    """The trail log group's metric filter counting one breach signal."""
    return f"{site_prefix(site)}-{signal_key}"


def findings_rule_name(site: str) -> str:
    """The EventBridge rule sending GuardDuty findings to the security topic."""
    return f"{site_prefix(site)}-guardduty-findings"


def db_log_group_name(identifier: str, log: str = "postgresql") -> str:
    """Where RDS exports an instance's PostgreSQL log (RDS user guide, "Publishing
    PostgreSQL logs to Amazon CloudWatch Logs")."""
    return f"/aws/rds/instance/{identifier}/{log}"


def quarantine_group_name(incident_id: str) -> str:
    """The rule-less security group a breach response isolates instances with (per VPC)."""
    return f"caresync-quarantine-{incident_id}"[:255]


BREACH_LOCK_PARAMETER = f"/{PROJECT}/breach/lock"
BREACH_JOURNAL_PARAMETER = f"/{PROJECT}/breach/journal"
ROTATION_LOCK_PARAMETER = f"/{PROJECT}/rotation/lock"
ROTATION_JOURNAL_PARAMETER = f"/{PROJECT}/rotation/journal"
# Every parameter of one kind of operation (its lock and journal): an IAM resource pattern.
BREACH_PARAMETERS = f"/{PROJECT}/breach/*"
ROTATION_PARAMETERS = f"/{PROJECT}/rotation/*"


# --- Failover (dr stack, standby region) -----------------------------------------------------

OPERATOR_ROLE_NAME = "caresync-dr-operator"
# The other operator roles (dr stack; caresync_dr/operator_permissions.py says which command
# needs which role, and why they are separate).
APP_OPERATOR_ROLE_NAME = "caresync-dr-app-operator"
INCIDENT_RESPONDER_ROLE_NAME = "caresync-dr-incident-responder"
CREDENTIAL_ROTATION_ROLE_NAME = "caresync-dr-credential-rotation"
BACKUP_ROLE_NAME = "caresync-dr-backup"
# Every role these stacks create is named with this prefix (an IAM resource pattern).
ROLE_NAME_PREFIX = f"{PROJECT}-"
DEFAULT_INVENTORY_PARAMETER = f"/{PROJECT}/failover-inventory"
LOCK_PARAMETER = f"/{PROJECT}/failover/lock"
JOURNAL_PARAMETER = f"/{PROJECT}/failover/journal"
# A planned switchover keeps its own journal but shares the failover's lock: the two must never
# run at the same time (a failover may take over a dead switchover's stale lock).
SWITCHOVER_JOURNAL_PARAMETER = f"/{PROJECT}/switchover/journal"
# The re-protection after a failover (failback.py) keeps its own journal, in the standby region.
FAILBACK_JOURNAL_PARAMETER = f"/{PROJECT}/failback/journal"
