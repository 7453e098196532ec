"""Stack settings: read once, validated, frozen.

The same loader serves the Pulumi program (values from ``pulumi.Config``) and the operator
scripts (values from ``Pulumi.<stack>.yaml``, read without the Pulumi CLI), so a setting means
the same thing everywhere. Every problem names the key, the value and what is allowed.
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml

from caresync_dr import names
from caresync_dr.detection import DEFAULT_GUARDDUTY_MIN_SEVERITY, GUARDDUTY_SEVERITY_RANGE
from caresync_dr.names import DEFAULT_INVENTORY_PARAMETER

NAMESPACE = "caresync-dr"
SITES = ("primary", "standby")
DB_ROLES = ("writer", "replica")
VAULT_LOCK_MODES = ("governance", "compliance")
ROUTE53_INTERVALS = (10, 30)
# AWS Backup runs at most hourly; the schedule is cron(0 0/N * * ? *), even only if N divides 24.
BACKUP_INTERVALS = (1, 2, 3, 4, 6, 8, 12, 24)
# RDS accepts 0-35 days of automated backups; 0 disables them, which a DR stack must not do.
RDS_RETENTION_RANGE = (1, 35)
# The paging ReplicaLag alarm (components/monitoring.py builds it from these): RDS publishes
# ReplicaLag once a minute, and the alarm pages after this many consecutive breaching minutes.
# Lag keeps growing while the alarm waits, so the detection delay adds to the threshold.
REPLICA_LAG_PERIOD_SECONDS = 60
REPLICA_LAG_DATAPOINTS_TO_ALARM = 3
# PostgreSQL majors RDS offers. Below 14: read replicas keep automated backups only from 14.1
# ("Working with read replicas for RDS for PostgreSQL": automated backups on replicas need
# 14.1 or higher), and every replica here keeps backups (a promoted one must have PITR).
# RDS never offered 14.0, so any 14 qualifies.
POSTGRES_MAJORS = (14, 15, 16, 17)
# CloudWatch Logs accepts only these retention periods (PutRetentionPolicy, retentionInDays).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                      1827, 2192, 2557, 2922, 3288, 3653)
MAX_GENERATION = 99
# The seed plan's communication plan (docs/communication.md): who hears about an incident, how.
NOTIFY_CHANNELS = ("chat", "email", "statuspage")
TIER_CHANNELS = ("chat", "email")          # the status page is for users, not for escalation
DEFAULT_NOTIFY_SECRET = names.NOTIFY_SECRET_NAME
STATUSPAGE_API_URL = "https://api.statuspage.io/v1"
MAX_TIERS = 10

Site = Literal["primary", "standby"]
DbRole = Literal["writer", "replica"]
T = TypeVar("T")


class SettingsError(ValueError):
    """A stack setting is missing or invalid; the message names key, value and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        shown = "(not set)" if value is None else repr(value)
        super().__init__(f"{NAMESPACE}:{key} = {shown} is invalid: {allowed}")


@dataclass(frozen=True)
class Capacity:
    """Auto Scaling group sizes for one site at production load."""

    min: int
    desired: int
    max: int


@dataclass(frozen=True)
class RetiringGeneration:
    """A previous database generation kept in the program while it is retired on purpose.

    ``role`` is what the instance is now: ``writer`` (standalone: it was a primary or was
    promoted; it is deleted with a final snapshot) or ``replica`` (still replicating; RDS
    refuses a final snapshot of a read replica, so none is taken).
    """

    generation: int
    role: DbRole


@dataclass(frozen=True)
class EscalationTier:
    """One step of the escalation path: ``who`` is told through ``channels`` once an incident
    has been open ``after_minutes`` (a data breach engages every tier at once).

    ``chat_mention`` is put in the chat message that engages the tier (Slack syntax such as
    ``<!subteam^S0123>`` or ``<@U0123>``); ``emails`` are subscribed to each site's alert topic
    with a filter policy, so they receive an incident's messages once their tier is engaged.
    """

    name: str
    who: str
    after_minutes: int
    channels: tuple[str, ...] = TIER_CHANNELS
    chat_mention: str | None = None
    emails: tuple[str, ...] = ()


# The SNS message attribute naming an incident's engaged tiers (a String.Array): each tier's
# e-mail subscriptions filter on it, so a tier hears of an incident only once it is engaged
# (SNS Developer Guide, "Amazon SNS message filtering": a filter policy matches a String.Array
# attribute when any of its values matches).
ESCALATION_TIER_ATTRIBUTE = "escalationTier"


def tier_filter_policy(tier_name: str) -> str:
    """The subscription filter policy (JSON) of one tier's e-mail addresses."""
    return json.dumps({ESCALATION_TIER_ATTRIBUTE: [tier_name]}, sort_keys=True)


# The seed plan's escalation path: on-call 0-15 min, technical lead 15-30, CTO 30-60, CEO after
# 60 min or for any data breach.
DEFAULT_ESCALATION = (
    EscalationTier("on-call", "On-call engineer", 0),
    EscalationTier("technical-lead", "Technical lead", 15),
    EscalationTier("cto", "CTO", 30),
    EscalationTier("ceo", "CEO", 60),
)


@dataclass(frozen=True)
class StatusPage:
    """The public status page (Atlassian Statuspage): the page and the components an incident
    marks, as in the page's API settings. The API key is a secret (docs/communication.md)."""

    page_id: str
    component_ids: tuple[str, ...]
    api_url: str = STATUSPAGE_API_URL


@dataclass(frozen=True)
class Settings:
    """Every stack setting, typed. Build with :func:`load_settings`."""

    stack: str
    site: Site
    primary_region: str
    standby_region: str
    primary_stack: str | None
    standby_stack: str | None
    rto_minutes: int
    rpo_minutes: int
    backup_interval_hours: int
    backup_retention_days: int
    vpc_cidr: str
    az_count: int
    db_instance_class: str
    db_engine_version: str
    db_allocated_storage_gb: int
    db_read_replicas: int
    db_name: str
    db_username: str
    app_capacity: Capacity
    standby_warm_capacity: int
    app_instance_type: str
    app_ami_id: str
    app_port: int
    certificate_arn: str
    hosted_zone_id: str | None
    domain_name: str | None
    health_check_path: str
    health_check_interval_seconds: int
    health_check_failure_threshold: int
    active_site: Site
    db_generation: int
    db_retiring: RetiringGeneration | None
    db_log_retention_days: int
    alert_emails: tuple[str, ...]
    vault_lock_mode: str
    inventory_parameter: str
    # Breach detection (issue 13, components/detection.py and caresync_dr/detection.py).
    security_emails: tuple[str, ...] = ()
    guardduty_min_severity: float = 4.0
    trail_log_retention_days: int = 365
    phi_tables: tuple[str, ...] = ("public.patients",)
    escalation_tiers: tuple[EscalationTier, ...] = DEFAULT_ESCALATION
    notify_channels: tuple[str, ...] = TIER_CHANNELS
    notify_secret_name: str = DEFAULT_NOTIFY_SECRET
    status_page: StatusPage | None = None

    @property
    def region(self) -> str:
        """The region this stack deploys into."""
        return self.primary_region if self.site == "primary" else self.standby_region

    @property
    def is_primary(self) -> bool:
        """This stack is the primary *site* (stack prod, primaryRegion), whatever its role."""
        return self.site == "primary"

    @property
    def is_writer(self) -> bool:
        """This site's database is the writer and its app serves traffic (``activeSite``)."""
        return self.site == self.active_site

    @property
    def peer_site(self) -> Site:
        return "standby" if self.is_primary else "primary"

    @property
    def peer_stack(self) -> str | None:
        """The other site's stack (the reference this stack reads)."""
        return self.standby_stack if self.is_primary else self.primary_stack

    @property
    def db_born_as_writer(self) -> bool:
        """Whether this site's current database generation was created as a standalone writer.

        Only the primary site's generation 1 is (the bootstrap). Every later generation starts
        as a read replica of the writer of the day and may be promoted: RDS cannot turn an
        existing instance into a replica, so a site that must replicate again gets a new one.
        """
        return self.is_primary and self.db_generation == 1

    @property
    def engine_major(self) -> int:
        return int(self.db_engine_version.split(".")[0])

    @property
    def site_capacity(self) -> Capacity:
        """What this site runs day to day: full capacity where the writer is, warm elsewhere."""
        if self.is_writer:
            return self.app_capacity
        warm = self.standby_warm_capacity
        return Capacity(min=min(warm, self.app_capacity.min), desired=warm,
                        max=self.app_capacity.max)

    @property
    def replica_lag_detection_seconds(self) -> int:
        """How long lag stays above the paging threshold before the alarm fires."""
        return REPLICA_LAG_PERIOD_SECONDS * REPLICA_LAG_DATAPOINTS_TO_ALARM

    @property
    def replica_lag_alarm_seconds(self) -> int:
        """The paging threshold: threshold + detection delay stays within the RPO.

        0 when the RPO is shorter than the detection delay; no threshold can then keep the
        regional-outage exposure within the RPO, and the objectives report flags it.
        """
        return max(0, self.rpo_minutes * 60 - self.replica_lag_detection_seconds)

    @property
    def replica_lag_warning_seconds(self) -> int:
        """An earlier warning at a fifth of the RPO, so there is time to act before the breach."""
        return max(60, self.rpo_minutes * 12)


# --- coercion helpers -------------------------------------------------------------------------

def _parse_structured(key: str, raw: object) -> object:
    """Pulumi passes objects and lists as JSON strings; YAML passes them parsed."""
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise SettingsError(key, raw, "expected a JSON/YAML list or object") from exc
    return raw


def _as_int(key: str, raw: object, lo: int | None = None, hi: int | None = None,
            allowed: str | None = None) -> int:
    if isinstance(raw, bool):
        raise SettingsError(key, raw, "expected a whole number")
    try:
        value = int(raw) if isinstance(raw, int) else int(str(raw).strip())
    except ValueError as exc:
        raise SettingsError(key, raw, "expected a whole number") from exc
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        if allowed is None:
            allowed = (f"must be between {lo} and {hi}" if lo is not None and hi is not None
                       else f"must be at least {lo}" if lo is not None else f"must be at most {hi}")
        raise SettingsError(key, raw, allowed)
    return value


def _as_int_in(key: str, raw: object, choices: tuple[int, ...], allowed: str) -> int:
    value = _as_int(key, raw)
    if value not in choices:
        raise SettingsError(key, raw, allowed)
    return value


def _as_bool(key: str, raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("true", "yes", "1"):
        return True
    if text in ("false", "no", "0"):
        return False
    raise SettingsError(key, raw, "expected true or false")


def _as_choice(key: str, raw: object, choices: tuple[str, ...]) -> str:
    text = str(raw).strip()
    if text not in choices:
        raise SettingsError(key, raw, "must be one of " + ", ".join(choices))
    return text


_REGION_RE = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PROJECT_NAME = "caresync-dr"  # Pulumi.yaml's name
# The stack each site reference must name (Pulumi.prod.yaml is the primary, Pulumi.dr.yaml
# the standby; CI deploys exactly these two).
PEER_STACKS = {"primaryStack": "prod", "standbyStack": "dr"}
_STACK_REF_RE = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){0,2}$")


def _as_region(key: str, raw: object) -> str:
    text = str(raw).strip()
    if not _REGION_RE.match(text):
        raise SettingsError(key, raw, "expected an AWS region name such as us-east-1")
    return text


def _as_match(key: str, raw: object, pattern: str, allowed: str) -> str:
    text = str(raw).strip()
    if not re.fullmatch(pattern, text):
        raise SettingsError(key, raw, allowed)
    return text


def _as_capacity(key: str, raw: object) -> Capacity:
    data = _parse_structured(key, raw)
    if not isinstance(data, Mapping) or set(data) != {"min", "desired", "max"}:
        raise SettingsError(key, raw, "expected an object with exactly min, desired and max")
    cap = Capacity(min=_as_int(f"{key}.min", data["min"], 0),
                   desired=_as_int(f"{key}.desired", data["desired"], 0),
                   max=_as_int(f"{key}.max", data["max"], 1))
    if not cap.min <= cap.desired <= cap.max:
        raise SettingsError(key, raw, "must satisfy 0 <= min <= desired <= max and max >= 1")
    return cap


def _as_emails(key: str, raw: object) -> tuple[str, ...]:
    data = _parse_structured(key, raw)
    if not isinstance(data, list) or not data:
        raise SettingsError(key, raw, "expected a non-empty list of e-mail addresses")
    for item in data:
        if not isinstance(item, str) or not _EMAIL_RE.match(item):
            raise SettingsError(key, raw, f"{item!r} is not an e-mail address")
    return tuple(data)


def _as_severity(key: str, raw: object) -> float:
    lo, hi = GUARDDUTY_SEVERITY_RANGE
    try:
        value = float(str(raw).strip())
    except ValueError as exc:
        raise SettingsError(key, raw, "expected a GuardDuty severity such as 4.0") from exc
    if not lo <= value <= hi:
        raise SettingsError(key, raw, f"GuardDuty severities run from {lo:g} to {hi:g} (Low "
                            "1.0-3.9, Medium 4.0-6.9, High 7.0-8.9, Critical 9.0-10.0)")
    return value


_TABLE_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}\.[a-z_][a-z0-9_]{0,62}")


def _as_tables(key: str, raw: object) -> tuple[str, ...]:
    data = _parse_structured(key, raw)
    if not isinstance(data, list) or not data:
        raise SettingsError(key, raw, "expected a non-empty list of schema-qualified tables "
                            "such as public.patients")
    for item in data:
        if not isinstance(item, str) or not _TABLE_RE.fullmatch(item):
            raise SettingsError(key, raw, f"{item!r} is not a schema-qualified lowercase table "
                                "name such as public.patients")
    return tuple(data)


def _as_engine_version(key: str, raw: object) -> str:
    text = str(raw).strip()
    majors = ", ".join(map(str, POSTGRES_MAJORS))
    if not re.fullmatch(r"\d+", text):
        raise SettingsError(key, raw, f"expected a PostgreSQL major version only ({majors}): "
                            "auto_minor_version_upgrade is on, so RDS picks the minor version "
                            "and a pinned minor would later read as a downgrade (aws.rds.Instance "
                            "engine_version docstring: give a prefix such as '15')")
    if int(text) not in POSTGRES_MAJORS:
        raise SettingsError(key, raw, f"must be one of {majors}: read replicas keep automated "
                            "backups only from PostgreSQL 14.1 (RDS User Guide, read replicas "
                            "for RDS for PostgreSQL), and every replica here keeps them")
    return text


def _as_retiring(key: str, raw: object) -> RetiringGeneration:
    data = _parse_structured(key, raw)
    if not isinstance(data, Mapping) or set(data) != {"generation", "role"}:
        raise SettingsError(key, raw, "expected an object with exactly generation and role "
                            "(writer or replica)")
    generation = _as_int(f"{key}.generation", data["generation"], 1, MAX_GENERATION)
    role_text = _as_choice(f"{key}.role", data["role"], DB_ROLES)
    return RetiringGeneration(generation=generation,
                              role="writer" if role_text == "writer" else "replica")


_TIER_KEYS = {"name", "who", "afterMinutes", "channels", "chatMention", "emails"}
_STATUSPAGE_ID = r"[a-z0-9]{1,64}"
_SECRET_NAME = r"[A-Za-z0-9/_+=.@-]{1,512}"


def _as_printable(key: str, raw: object, limit: int) -> str:
    text = raw if isinstance(raw, str) else ""
    if not 1 <= len(text) <= limit or not text.isprintable() or text != text.strip():
        raise SettingsError(key, raw, f"expected 1 to {limit} printable characters without "
                            "surrounding spaces")
    return text


def _as_channel_list(key: str, raw: object, choices: tuple[str, ...]) -> tuple[str, ...]:
    data = _parse_structured(key, raw)
    if not isinstance(data, list) or not data or not all(isinstance(c, str) for c in data):
        raise SettingsError(key, raw, "expected a non-empty list of " + ", ".join(choices))
    for item in data:
        if item not in choices:
            raise SettingsError(key, raw, f"{item!r} is not a channel: one of "
                                + ", ".join(choices))
    if len(set(data)) != len(data):
        raise SettingsError(key, raw, "lists a channel twice")
    return tuple(data)


def _as_tier(key: str, raw: object) -> EscalationTier:
    if not isinstance(raw, Mapping) or not {"name", "who", "afterMinutes"} <= set(raw) \
            or not set(raw) <= _TIER_KEYS:
        raise SettingsError(key, raw, "expected an object with name, who, afterMinutes and "
                            "optionally channels, chatMention, emails")
    name = _as_match(f"{key}.name", raw["name"], r"[a-z][a-z0-9-]{0,31}",
                     "expected a short id such as technical-lead (lowercase letters, digits, -)")
    mention = raw.get("chatMention")
    emails = raw.get("emails")
    channels = _as_channel_list(f"{key}.channels", raw["channels"], TIER_CHANNELS) \
        if "channels" in raw else TIER_CHANNELS
    if mention is not None and "chat" not in channels:
        raise SettingsError(f"{key}.chatMention", mention, "the tier is not told by chat "
                            "(channels): a mention would never be posted")
    if emails is not None and "email" not in channels:
        raise SettingsError(f"{key}.emails", emails, "the tier is not told by email "
                            "(channels): these addresses would never be mailed")
    return EscalationTier(
        name=name, who=_as_printable(f"{key}.who", raw["who"], 64),
        after_minutes=_as_int(f"{key}.afterMinutes", raw["afterMinutes"], 0, 24 * 60),
        channels=channels,
        chat_mention=None if mention is None else _as_printable(f"{key}.chatMention", mention,
                                                                100),
        emails=() if emails is None else _as_emails(f"{key}.emails", emails))


def _as_tiers(key: str, raw: object, alert_emails: tuple[str, ...]) -> tuple[EscalationTier, ...]:
    data = _parse_structured(key, raw)
    if not isinstance(data, list) or not 1 <= len(data) <= MAX_TIERS:
        raise SettingsError(key, raw, f"expected a list of 1 to {MAX_TIERS} tiers")
    tiers = tuple(_as_tier(f"{key}[{i}]", item) for i, item in enumerate(data))
    if tiers[0].after_minutes != 0:
        raise SettingsError(f"{key}[0].afterMinutes", tiers[0].after_minutes,
                            "the first tier must be told at once (0): someone owns an incident "
                            "from its first minute (the seed plan: on-call engineer, 0-15 min)")
    for i, (before, after) in enumerate(itertools.pairwise(tiers), 1):
        if after.after_minutes <= before.after_minutes:
            raise SettingsError(f"{key}[{i}].afterMinutes", after.after_minutes,
                                f"must be later than the tier before ({before.name}, "
                                f"{before.after_minutes} min): escalation only moves up")
    names = [t.name for t in tiers]
    if len(set(names)) != len(names):
        raise SettingsError(key, names, "names a tier twice")
    seen: dict[str, str] = {e: "alertEmails" for e in alert_emails}
    for i, tier in enumerate(tiers):
        for email in tier.emails:
            if email in seen:
                raise SettingsError(f"{key}[{i}].emails", list(tier.emails),
                                    f"{email} is already in {seen[email]}: one address gets "
                                    "one subscription per alert topic (it would be told twice, "
                                    "or SNS keeps one of the two subscriptions)")
            seen[email] = f"tier {tier.name}"
    return tiers


def _as_status_page(key: str, raw: object) -> StatusPage:
    data = _parse_structured(key, raw)
    if not isinstance(data, Mapping) or not {"pageId", "componentIds"} <= set(data) \
            or not set(data) <= {"pageId", "componentIds", "apiUrl"}:
        raise SettingsError(key, raw, "expected an object with pageId, componentIds and "
                            "optionally apiUrl")
    allowed = ("expected a Statuspage id (lowercase letters and digits, as shown in the page's "
               "API info)")
    page_id = _as_match(f"{key}.pageId", data["pageId"], _STATUSPAGE_ID, allowed)
    ids = _parse_structured(f"{key}.componentIds", data["componentIds"])
    if not isinstance(ids, list) or not ids:
        raise SettingsError(f"{key}.componentIds", data["componentIds"],
                            "expected a non-empty list of the components an outage affects")
    components = tuple(_as_match(f"{key}.componentIds", c, _STATUSPAGE_ID, allowed) for c in ids)
    if len(set(components)) != len(components):
        raise SettingsError(f"{key}.componentIds", ids, "lists a component twice")
    api_url = STATUSPAGE_API_URL
    if data.get("apiUrl") is not None:
        api_url = str(data["apiUrl"]).rstrip("/")
        from caresync_dr.aws_names import url

        problem = url(api_url, https_only=True, loopback_http=True)
        if problem:
            raise SettingsError(f"{key}.apiUrl", data["apiUrl"],
                                f"{problem} (the Manage API is {STATUSPAGE_API_URL})")
    return StatusPage(page_id=page_id, component_ids=components, api_url=api_url)


def _as_cidr(key: str, raw: object) -> str:
    try:
        net = ipaddress.IPv4Network(str(raw).strip(), strict=True)
    except ValueError as exc:
        raise SettingsError(key, raw, "expected an IPv4 network such as 10.10.0.0/16") from exc
    if not net.is_private or not 16 <= net.prefixlen <= 20:
        raise SettingsError(key, raw, "must be a private network between /16 and /20")
    return str(net)


# --- the loader -----------------------------------------------------------------------------

KNOWN_KEYS = frozenset({
    "site", "primaryRegion", "standbyRegion", "primaryStack", "standbyStack",
    "rtoMinutes", "rpoMinutes", "backupIntervalHours", "backupRetentionDays",
    "vpcCidr", "azCount", "dbInstanceClass", "dbEngineVersion", "dbAllocatedStorageGb",
    "dbReadReplicas", "dbName", "dbUsername", "appCapacity", "standbyWarmCapacity",
    "appInstanceType", "appAmiId", "appPort", "certificateArn", "hostedZoneId", "domainName",
    "healthCheckPath", "healthCheckIntervalSeconds", "healthCheckFailureThreshold",
    "activeSite", "dbGeneration", "dbRetiring", "dbLogRetentionDays", "alertEmails",
    "vaultLockMode", "inventoryParameter", "securityEmails", "guardDutyMinSeverity",
    "trailLogRetentionDays", "phiTables", "escalationTiers", "notifyChannels",
    "notifySecretName", "statusPage",
})
# Keys that are no longer settings, and why (the message names what replaces them).
RETIRED_KEYS = {
    "webhookUrl": "a chat webhook URL is a credential and must not sit in a stack file in "
                  "clear: put it as chatWebhookUrl into the Secrets Manager secret named by "
                  "notifySecretName (docs/communication.md)",
}


def load_settings(stack: str, values: Mapping[str, object],
                  aws_region: str | None = None) -> Settings:
    """Validate raw settings (keys without the ``caresync-dr:`` prefix) into :class:`Settings`.

    ``aws_region`` is the stack's ``aws:region``, checked against the site's region when given.
    """
    for retired, why in RETIRED_KEYS.items():
        if retired in values:
            raise SettingsError(retired, "(hidden: it may be a credential)", why)
    unknown = sorted(set(values) - KNOWN_KEYS)
    if unknown:
        raise SettingsError(unknown[0], values[unknown[0]],
                            "unknown setting (a typo?); known settings are listed in "
                            "docs/reference.md")

    def get(key: str, convert: Callable[[str, object], T], default: T | None = None,
            required: bool = False) -> T:
        raw = values.get(key)
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            if required or default is None:
                raise SettingsError(key, None, "is required")
            return default
        return convert(key, raw)

    def opt(key: str, convert: Callable[[str, object], T]) -> T | None:
        raw = values.get(key)
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            return None
        return convert(key, raw)

    site_text = get("site", lambda k, v: _as_choice(k, v, SITES), required=True)
    site: Site = "primary" if site_text == "primary" else "standby"
    primary_region = get("primaryRegion", _as_region, required=True)
    standby_region = get("standbyRegion", _as_region, required=True)
    if primary_region == standby_region:
        raise SettingsError("standbyRegion", standby_region,
                            f"must differ from primaryRegion ({primary_region}): both sites in "
                            "one region do not survive a regional outage")
    region = primary_region if site == "primary" else standby_region
    if aws_region is not None and aws_region != region:
        raise SettingsError("site", site_text,
                            f"a {site} site deploys to {region}, but aws:region is {aws_region}")

    def stack_ref(key: str, value: object) -> str:
        ref = _as_match(key, value, _STACK_REF_RE.pattern,
                        "expected a stack name such as organization/caresync-dr/prod")
        # The reference names the *other* site's stack of this project, fully qualified
        # (CI deploys ${{ vars.PULUMI_ORG }}/caresync-dr/<stack>; docs/reference.md).
        peer = PEER_STACKS[key]
        parts = ref.split("/")
        if len(parts) != 3 or parts[1] != PROJECT_NAME or parts[2] != peer:
            raise SettingsError(key, ref, f"must be <org>/{PROJECT_NAME}/{peer}: the {key[:-5]} "
                                "site's stack of this project, with the Pulumi organization CI "
                                "deploys to (vars.PULUMI_ORG)")
        if parts[2] == stack:
            raise SettingsError(key, ref, f"names this stack ({stack}) itself")
        return ref

    primary_stack = opt("primaryStack", stack_ref)
    standby_stack = opt("standbyStack", stack_ref)
    if site == "standby" and primary_stack is None:
        raise SettingsError("primaryStack", None,
                            "a standby site needs the reference to the primary stack "
                            "(e.g. organization/caresync-dr/prod)")

    active_text = get("activeSite", lambda k, v: _as_choice(k, v, SITES), "primary")
    active_site: Site = "primary" if active_text == "primary" else "standby"
    generation = get("dbGeneration", lambda k, v: _as_int(k, v, 1, MAX_GENERATION), 1)
    if site == "primary" and active_site == "standby" and generation == 1:
        raise SettingsError("dbGeneration", generation,
                            "with activeSite standby the primary site's database is a replica "
                            "of the standby's writer; generation 1 was created as the bootstrap "
                            "writer and RDS cannot make an existing instance a replica "
                            "('cannot elect new source database for replication'): set "
                            "dbGeneration to 2 (a new replica) and retire generation 1 with "
                            "dbRetiring (docs/lifecycles.md, failback)")
    if site == "primary" and active_site == "standby" and standby_stack is None:
        raise SettingsError("standbyStack", None,
                            "with activeSite standby the primary site replicates from the "
                            "standby's writer and needs the reference to the dr stack")
    retiring = opt("dbRetiring", _as_retiring)
    if retiring is not None and retiring.generation >= generation:
        raise SettingsError("dbRetiring", f"{{generation: {retiring.generation}, role: "
                            f"{retiring.role}}}", f"must name an earlier generation than "
                            f"dbGeneration ({generation})")

    rto = get("rtoMinutes", lambda k, v: _as_int(k, v, 1, 24 * 60), 60)
    rpo = get("rpoMinutes", lambda k, v: _as_int(k, v, 1, 24 * 60), 15)
    interval = get("backupIntervalHours", lambda k, v: _as_int_in(
        k, v, BACKUP_INTERVALS, "must divide a day evenly: one of "
        + ", ".join(map(str, BACKUP_INTERVALS)) + " (the plan's cron restarts every midnight; "
        "5 would leave a 4-hour gap)"), 6)
    retention = get("backupRetentionDays", lambda k, v: _as_int(
        k, v, *RDS_RETENTION_RANGE,
        allowed="RDS keeps automated backups for 1 to 35 days"), 30)

    capacity = get("appCapacity", _as_capacity, Capacity(2, 2, 6))
    warm = get("standbyWarmCapacity", lambda k, v: _as_int(
        k, v, 0, capacity.max, f"must be between 0 (pilot light) and appCapacity.max "
        f"({capacity.max})"), 1)
    replicas = get("dbReadReplicas", lambda k, v: _as_int(k, v, 0, 5), 1)
    if site == active_site and replicas < 1:
        raise SettingsError("dbReadReplicas", replicas,
                            "the active site needs at least one in-region read replica "
                            "(the plan's 'switch to read replica')")

    certificate_arn = get("certificateArn", lambda k, v: _as_match(
        k, v, r"arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+",
        "expected an ACM certificate ARN"), required=True)
    cert_region = certificate_arn.split(":")[3]
    if cert_region != region:
        raise SettingsError("certificateArn", certificate_arn,
                            f"an ALB needs a certificate from its own region ({region}), "
                            f"this one is in {cert_region}")

    hosted_zone_id = opt("hostedZoneId", lambda k, v: _as_match(
        k, v, r"Z[A-Z0-9]{4,32}", "expected a Route 53 hosted zone id such as Z0123456789ABC"))
    domain_name = opt("domainName", lambda k, v: _as_match(
        k, v, r"([a-z0-9-]+\.)+[a-z]{2,}", "expected a DNS name such as app.caresync.health"))
    if site == "standby":
        if hosted_zone_id is None:
            raise SettingsError("hostedZoneId", None,
                                "the standby stack owns the failover records and needs the zone")
        if domain_name is None:
            raise SettingsError("domainName", None,
                                "the standby stack owns the failover records and needs the name")

    alert_emails = get("alertEmails", _as_emails, required=True)
    status_page = opt("statusPage", _as_status_page)
    channels = get("notifyChannels", lambda k, v: _as_channel_list(k, v, NOTIFY_CHANNELS),
                   (*TIER_CHANNELS, "statuspage") if status_page else TIER_CHANNELS)
    if "statuspage" in channels and status_page is None:
        raise SettingsError("statusPage", None, "notifyChannels lists statuspage: name the "
                            "page and its components ({pageId, componentIds})")

    return Settings(
        stack=stack,
        site=site,
        primary_region=primary_region,
        standby_region=standby_region,
        primary_stack=primary_stack,
        standby_stack=standby_stack,
        rto_minutes=rto,
        rpo_minutes=rpo,
        backup_interval_hours=interval,
        backup_retention_days=retention,
        vpc_cidr=get("vpcCidr", _as_cidr, "10.10.0.0/16"),
        az_count=get("azCount", lambda k, v: _as_int(k, v, 2, 6), 2),
        db_instance_class=get("dbInstanceClass", lambda k, v: _as_match(
            k, v, r"db\.[a-z0-9]+\.[a-z0-9]+", "expected an RDS class such as db.r6g.large"),
            "db.r6g.large"),
        db_engine_version=get("dbEngineVersion", _as_engine_version, "15"),
        db_allocated_storage_gb=get("dbAllocatedStorageGb", lambda k, v: _as_int(
            k, v, 20, 65536), 100),
        db_read_replicas=replicas,
        db_name=get("dbName", lambda k, v: _as_match(
            k, v, r"[a-z][a-z0-9_]{0,62}", "expected a lowercase PostgreSQL identifier"),
            "caresync"),
        db_username=get("dbUsername", lambda k, v: _as_match(
            k, v, r"[a-z][a-z0-9_]{0,15}", "expected a lowercase identifier of at most 16 chars"),
            "caresync_admin"),
        app_capacity=capacity,
        standby_warm_capacity=warm,
        app_instance_type=get("appInstanceType", lambda k, v: _as_match(
            k, v, r"[a-z][a-z0-9-]*\.[a-z0-9]+", "expected an EC2 instance type"), "t3.medium"),
        app_ami_id=get("appAmiId", lambda k, v: _as_match(
            k, v, r"ami-[0-9a-f]{8,17}", "expected an AMI id such as ami-0abc12345def67890"),
            required=True),
        app_port=get("appPort", lambda k, v: _as_int(k, v, 1024, 65535), 8080),
        certificate_arn=certificate_arn,
        hosted_zone_id=hosted_zone_id,
        domain_name=domain_name,
        health_check_path=get("healthCheckPath", lambda k, v: _as_match(
            k, v, r"/[A-Za-z0-9/_.-]*", "expected an absolute URL path"), "/api/health"),
        health_check_interval_seconds=get("healthCheckIntervalSeconds", lambda k, v: _as_int_in(
            k, v, ROUTE53_INTERVALS, "Route 53 allows only 10 or 30"), 10),
        health_check_failure_threshold=get("healthCheckFailureThreshold", lambda k, v: _as_int(
            k, v, 1, 10, "Route 53 allows 1 to 10"), 3),
        active_site=active_site,
        db_generation=generation,
        db_retiring=retiring,
        db_log_retention_days=get("dbLogRetentionDays", lambda k, v: _as_int_in(
            k, v, LOG_RETENTION_DAYS, "CloudWatch Logs keeps logs for one of "
            + ", ".join(map(str, LOG_RETENTION_DAYS)) + " days (PutRetentionPolicy)"), 365),
        alert_emails=alert_emails,
        vault_lock_mode=get("vaultLockMode", lambda k, v: _as_choice(k, v, VAULT_LOCK_MODES),
                            "governance"),
        inventory_parameter=get("inventoryParameter", lambda k, v: _as_match(
            k, v, r"(/[A-Za-z0-9_.-]+)+", "expected an SSM parameter path"),
            DEFAULT_INVENTORY_PARAMETER),
        security_emails=get("securityEmails", _as_emails, required=True),
        guardduty_min_severity=get("guardDutyMinSeverity", _as_severity,
                                   DEFAULT_GUARDDUTY_MIN_SEVERITY),
        trail_log_retention_days=get("trailLogRetentionDays", lambda k, v: _as_int_in(
            k, v, tuple(d for d in LOG_RETENTION_DAYS if d >= 365),
            "CloudTrail's CloudWatch Logs copy is kept at least a year (Security Hub "
            "[CloudWatch.16]) and in a CloudWatch Logs retention value: one of "
            + ", ".join(str(d) for d in LOG_RETENTION_DAYS if d >= 365)), 365),
        phi_tables=get("phiTables", _as_tables, ("public.patients",)),
        escalation_tiers=get("escalationTiers",
                             lambda k, v: _as_tiers(k, v, alert_emails), DEFAULT_ESCALATION),
        notify_channels=channels,
        notify_secret_name=get("notifySecretName", lambda k, v: _as_match(
            k, v, _SECRET_NAME, "expected a Secrets Manager secret name: letters, digits and "
            "/_+=.@- (CreateSecret, Name)"), DEFAULT_NOTIFY_SECRET),
        status_page=status_page,
    )


# --- sources --------------------------------------------------------------------------------

class StackFileError(ValueError):
    """``Pulumi.<stack>.yaml`` is missing or is not a Pulumi stack file."""


def stack_file(stack: str, project_dir: Path) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def read_stack_file(stack: str, project_dir: Path) -> tuple[dict[str, object], str | None]:
    """Read ``Pulumi.<stack>.yaml`` without the Pulumi CLI: (project settings, aws:region)."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", stack):
        raise StackFileError(f"stack name {stack!r} is not a valid Pulumi stack name")
    path = stack_file(stack, project_dir)
    if not path.is_file():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")]
                       for p in project_dir.glob("Pulumi.*.yaml"))
        raise StackFileError(f"unknown stack {stack!r}: {path} does not exist "
                             f"(stacks here: {', '.join(known) or 'none'})")
    try:
        # libyaml's parser when PyYAML was built with it (~10x faster: failover.py reads this
        # file on its way to the promotion request); the same safe subset of YAML either way.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        document: Any = yaml.load(path.read_text(), Loader=loader)
    except yaml.YAMLError as exc:
        raise StackFileError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("config"), dict):
        raise StackFileError(f"{path} has no 'config:' mapping")
    values: dict[str, object] = {}
    aws_region: str | None = None
    for full_key, value in document["config"].items():
        namespace, _, key = str(full_key).partition(":")
        if namespace == NAMESPACE:
            values[key] = value
        elif full_key == "aws:region":
            aws_region = str(value)
    return values, aws_region


def settings_from_stack_file(stack: str, project_dir: Path) -> Settings:
    values, aws_region = read_stack_file(stack, project_dir)
    return load_settings(stack, values, aws_region)


def settings_from_pulumi() -> Settings:
    """Read the current stack's settings through the Pulumi runtime (program and mocks)."""
    import pulumi

    config = pulumi.Config(NAMESPACE)
    values: dict[str, object] = {}
    for key in sorted(KNOWN_KEYS):
        raw = config.get(key)
        if raw is not None:
            values[key] = raw
    # Unknown keys are invisible through pulumi.Config; the runtime's table shows them, so a
    # typo such as "rtoMinuts" fails the preview instead of silently taking the default.
    from pulumi.runtime import config as runtime_config

    # runtime_config.CONFIG is a ContextVar holding the dict (pulumi >= 3.1xx), not the dict.
    all_config: Mapping[str, object] = runtime_config.CONFIG.get()
    for full_key in all_config:
        namespace, _, key = full_key.partition(":")
        if namespace == NAMESPACE and key not in KNOWN_KEYS:
            values[key] = all_config[full_key]
    aws_region = pulumi.Config("aws").get("region")
    return load_settings(pulumi.get_stack(), values, aws_region)
