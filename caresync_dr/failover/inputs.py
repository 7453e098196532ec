"""Everything the operator hands the failover, checked before anything is read from AWS.

Flags and environment become :class:`RunOptions`; the stack file and the inventory (SSM or
``--inventory FILE``) become an :class:`Inventory`. Every problem is a :class:`UsageError` (exit
2) naming the flag or field, the value and what is allowed, and nothing has been changed.
"""

from __future__ import annotations

import argparse
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr import aws_names
from caresync_dr.aws import STANDBY, AwsClients
from caresync_dr.cli.aws_problems import aws_problem
from caresync_dr.cli.reporting import writable_file
from caresync_dr.failover import probes
from caresync_dr.failover.errors import RefusedError, UsageError
from caresync_dr.failover.options import ENV_HEALTH_URL, RunOptions, timing_from
from caresync_dr.instants import BadTimeError, utc_instant
from caresync_dr.inventory import (
    MAX_INVENTORY_BYTES,
    Inventory,
    InventoryError,
    parse_inventory,
)
from caresync_dr.settings import (
    Settings,
    SettingsError,
    StackFileError,
    settings_from_stack_file,
)

if TYPE_CHECKING:
    from caresync_dr.aws import AwsSession

log = logging.getLogger(__name__)
DEFAULT_JOURNAL_FILE = Path("reports") / "failover-journal.json"


def health_url(flag: str, value: str | None) -> str | None:
    """The verification URL override: an absolute http(s) URL with a host."""
    if value is None or value == "":
        return None
    problem = aws_names.url(value, https_only=False)
    if problem:
        raise UsageError(f"{flag} {value!r} is invalid: {problem}")
    return value


# How far the stated outage start may lie ahead of this machine's clock (clock skew), and how
# far back it may lie: ReplicaLag is read with one request of at most 1,440 one-minute points.
OUTAGE_FUTURE_SKEW = timedelta(minutes=5)
OUTAGE_MAX_AGE = timedelta(hours=23)


def outage_started(flag: str, value: str | None, now: datetime | None = None) -> datetime | None:
    """``--outage-started``: an ISO 8601 time with a time zone ("Z" or an offset), not in the
    future (beyond clock skew) and at most 23 h ago. Returned in UTC."""
    if value is None or value == "":
        return None
    try:
        when = utc_instant(value)
    except BadTimeError as exc:
        raise UsageError(f"{flag} {value!r} {exc}") from None
    current = now or datetime.now(UTC)
    if when > current + OUTAGE_FUTURE_SKEW:
        raise UsageError(f"{flag} {value!r} is in the future (now {current:%Y-%m-%dT%H:%M:%SZ})")
    if when < current - OUTAGE_MAX_AGE:
        raise UsageError(f"{flag} {value!r} is more than 23 h ago: CloudWatch's ReplicaLag "
                         "history read here does not reach it; use --force and judge the "
                         "exposure from the report")
    return when


def adopt_promoted(flag: str, value: str | None, *, check: bool, resume: bool) -> str | None:
    """``--adopt-promoted``: an RDS instance identifier, for a new run only. ``--check`` judges
    whether a failover would succeed (a promoted target is not ready); ``--resume`` continues a
    journaled run, which already knows what it promoted."""
    if value is None:
        return None
    if check:
        raise UsageError(f"{flag} is not allowed with --check: the readiness check judges the "
                         "replica as it is; a run (or --dry-run) adopts a hand promotion")
    if resume:
        raise UsageError(f"{flag} is not allowed with --resume: a resumed run continues its "
                         f"journal, which knows what it promoted; run {flag} without --resume")
    problem = aws_names.rds_identifier(value)
    if problem:
        raise UsageError(f"{flag} {value!r} is invalid: {problem}")
    return value


def options_from(args: argparse.Namespace, environ: dict[str, str] | None = None) -> RunOptions:
    env = dict(os.environ) if environ is None else environ
    report = writable_file("--report", args.report) if args.report is not None else None
    journal_file = args.journal_file or (report.with_suffix(".journal.json") if report
                                         else DEFAULT_JOURNAL_FILE)
    if not (args.check or args.dry_run):     # only a real run writes the journal
        journal_file = writable_file("--journal-file", journal_file)
    if args.health_url:
        url = health_url("--health-url", args.health_url)
    else:
        url = health_url(f"--health-url (from {ENV_HEALTH_URL})", env.get(ENV_HEALTH_URL))
    adopt = adopt_promoted("--adopt-promoted", args.adopt_promoted, check=args.check,
                           resume=args.resume)
    return RunOptions(
        stack=args.stack, scope=args.scope,
        mode="check" if args.check else "dry-run" if args.dry_run else "run",
        yes=args.yes, resume=args.resume, force=args.force, inventory_file=args.inventory,
        report=report, journal_file=journal_file, health_url=url,
        outage_started=outage_started("--outage-started", args.outage_started),
        adopt_promoted=adopt,
        timing=timing_from(args.poll_seconds, args.poll_max_seconds, args.wait_timeout,
                           args.verify_timeout, env, heartbeat=args.lock_heartbeat_seconds))


def read_inventory_file(path: Path) -> str:
    """The file's text: at most :data:`MAX_INVENTORY_BYTES`, UTF-8 (a BOM is allowed)."""
    try:
        size = path.stat().st_size
        if size > MAX_INVENTORY_BYTES:
            raise UsageError(f"--inventory {path} is {size} bytes; an inventory is at most "
                             f"{MAX_INVENTORY_BYTES} (SSM holds 8 KB)")
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read --inventory {path}: {exc.strerror or exc}") from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"--inventory {path} is not UTF-8 text (byte {raw[exc.start]:#04x} at "
                         f"offset {exc.start}); save it as UTF-8") from exc


def load_inventory(options: RunOptions, project_dir: Path, session: AwsSession | None,
                   created: dict[str, Any] | None = None) -> tuple[Inventory, Settings]:
    """(inventory, the stack's settings). Every problem is a UsageError naming it.
    ``created``, when given, receives the SSM client it read with (``(region, client)`` under
    ``"ssm"``), so the run reuses it instead of building another."""
    try:
        settings = settings_from_stack_file(options.stack, project_dir)
    except (StackFileError, SettingsError) as exc:
        raise UsageError(str(exc)) from exc
    if options.inventory_file is not None:
        text = read_inventory_file(options.inventory_file)
        where = str(options.inventory_file)
    else:
        text, where = _read_inventory_parameter(settings, session, created)
    try:
        inventory = parse_inventory(text)
    except InventoryError as exc:
        raise UsageError(f"{where}: {exc}") from exc
    if inventory.standby.region != settings.standby_region:
        raise UsageError(f"{where} describes standby region {inventory.standby.region}, but "
                         f"Pulumi.{options.stack}.yaml says {settings.standby_region}")
    for field_name, name in (("lockParameter", inventory.lock_parameter),
                             ("journalParameter", inventory.journal_parameter)):
        if name == settings.inventory_parameter:
            raise UsageError(f"{where}: inventory field {field_name} = {name!r} is the "
                             "inventory's own parameter: the run would overwrite it")
    if (where.startswith(f"ssm:{settings.primary_region}:")
            and inventory.active_site != "standby"):
        raise UsageError(f"{where} says activeSite {inventory.active_site}: the copy in the "
                         "primary region exists only while the standby site writes (a stale "
                         "copy); read the standby region's, or pass --inventory FILE")
    log.info("inventory from %s: %s -> %s", where, inventory.primary.region,
             inventory.standby.region)
    return inventory, settings


def inventory_regions(settings: Settings) -> tuple[str, str]:
    """Where to look for the inventory, in order. The dr stack writes it into the standby
    region, and while the standby site writes (``activeSite`` standby) also into the primary
    region: a regional failover then promotes the primary site, and the standby region is the
    one that may have failed. The stack file's ``activeSite`` picks the first; the other is
    tried when the first does not answer or has none (the stack file may lag behind)."""
    first, second = settings.standby_region, settings.primary_region
    if settings.active_site == "standby":
        first, second = second, first
    return first, second


def _read_inventory_parameter(settings: Settings, session: AwsSession | None,
                              created: dict[str, Any] | None) -> tuple[str, str]:
    """(document text, where it was read). :class:`RefusedError` when no region answered,
    :class:`UsageError` when the regions answered but none holds it."""
    name = settings.inventory_parameter
    unreachable: list[str] = []
    missing: list[str] = []
    first: BaseException | None = None
    for region in inventory_regions(settings):
        ssm = AwsClients(region, STANDBY, session).ssm()
        try:
            found = probes.read_parameter(ssm, name)
        except (ClientError, BotoCoreError) as exc:
            problem = aws_problem(exc)
            if problem is not None and problem.kind == "credentials":
                # The other region would say the same; the CLI names the operator role.
                raise RefusedError(f"cannot read the inventory {name} in {region}: {exc}. "
                                   "Nothing was changed") from exc
            log.warning("cannot read the inventory %s in %s: %s", name, region, exc)
            unreachable.append(f"{region}: {exc}")
            first = first or exc
            continue
        if found is None:
            missing.append(region)
            continue
        if created is not None:
            created["ssm"] = (region, ssm)
        return found, f"ssm:{region}:{name}"
    if unreachable:
        # Not the operator's input that is wrong: SSM did not answer. Nothing was changed.
        absent = f"; not found in {', '.join(missing)}" if missing else ""
        raise RefusedError(f"cannot read the inventory {name} in "
                           f"{'; '.join(unreachable)}{absent}. Nothing was changed") from first
    raise UsageError(f"inventory parameter {name} not found in {' or '.join(missing)}: "
                     "is the dr stack deployed? (or pass --inventory FILE)")
