"""Take an encrypted, verified logical backup of DATABASE_URL; keep 30 days locally."""

from __future__ import annotations

import argparse
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from caresync_dr import arguments
from caresync_dr.aws import AwsClients
from caresync_dr.backup.create import BackupOptions, take_backup
from caresync_dr.backup.errors import KeyUnavailableError
from caresync_dr.backup.key_wraps import SiteKey, regional_kms, site_keys
from caresync_dr.backup.keys import KEY_FILE_ENV, DataKey, key_from_file, key_from_kms
from caresync_dr.backup.prune import prune
from caresync_dr.backup.storage import DEFAULT_PREFIX, upload
from caresync_dr.backup.tools import checked_conninfo, redact
from caresync_dr.cli import (
    CommandError,
    CommandParser,
    ExitCode,
    FailedError,
    Invocation,
    UsageError,
    command_parser,
    run_main,
    writable_directory,
)
from caresync_dr.settings import Settings, SettingsError, StackFileError, settings_from_stack_file

log = logging.getLogger("backup")
PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_RETENTION_DAYS = 30  # the stack setting backupRetentionDays; --stack reads it

NOTES = """\
keys: with KMS, a fresh data key per backup is wrapped under BOTH sites' keys, so a restore works
with either region down: --kms-key-id in --region, plus the other site's key, which --stack
derives from the settings (alias/caresync-primary in primaryRegion, alias/caresync-standby in
standbyRegion), or --wrap-key REGION=KEY. A KMS backup with a single region's key is refused.
locks: pg_dump takes one AccessShareLock per table, all in one transaction, and this backup
adds none (its fingerprints come from pg_dump's own output). The server's lock table holds
max_locks_per_transaction x (max_connections + background processes + prepared transactions)
locks for all sessions together, roughly 8,000 with the defaults (a little more fits in shared
memory's slack): a database with more tables than that, less what other sessions hold, needs
max_locks_per_transaction raised, for plain pg_dump as for this backup.
output: <local-dir>/backup_YYYYMMDD_HHMMSS.dump.enc and .manifest.json (docs/backups.md).
"""
EXIT_CODES = [
    (ExitCode.OK, "backup written (and uploaded with --bucket), old local copies pruned"),
    (ExitCode.FAILED, "the backup failed (pg_dump, fingerprinting, upload); no partial backup is\n"
                      "left behind; or (report result \"degraded\") it was written but a\n"
                      "region's KMS did not answer, so its data key lacks that region's wrap\n"
                      "(report: missing_wraps); the next backup tries again"),
    (ExitCode.USAGE, "usage: no or a malformed database URL, no key (--key-file or\n"
                     "--kms-key-id), one KMS region only, unknown --stack, bad arguments;\n"
                     "nothing was written"),
    (ExitCode.REFUSED, "no AWS credentials (the message names the role to assume), or AWS did\n"
                       "not answer, before the backup started; nothing was written"),
]


def build_parser() -> CommandParser:
    parser = command_parser("backup.py", __doc__ or "", EXIT_CODES, notes=NOTES)
    parser.add_argument("--database-url", type=arguments.database_url,
                        default=os.environ.get("DATABASE_URL"),
                        help="database to back up (default: $DATABASE_URL)")
    parser.add_argument("--local-dir", type=Path, default=Path("/backups"),
                        help="local backup directory (default: /backups)")
    keys = parser.add_mutually_exclusive_group()
    keys.add_argument("--key-file", type=Path, default=None,
                      help=f"local AES-256 key file (default: ${KEY_FILE_ENV})")
    keys.add_argument("--kms-key-id", help="this site's KMS key (id, ARN or alias) for a "
                      "fresh data key per backup; with --stack, default alias/caresync-<site> "
                      "of --region's site")
    parser.add_argument("--wrap-key", action="append", default=[], metavar="REGION=KEY",
                        help="also wrap the data key under KEY in REGION (repeatable); --stack "
                             "adds the other site's key itself")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION"),
                        help="AWS region of --kms-key-id and the bucket "
                             "(default: $AWS_REGION, else the --stack's site region)")
    parser.add_argument("--bucket", help="also upload to this S3 bucket (SSE-KMS)")
    parser.add_argument("--bucket-kms-key-id", help="SSE-KMS key for the upload "
                        "(default: the bucket's default key)")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="S3 key prefix")
    parser.add_argument("--retention-days", type=arguments.integer(minimum=1, maximum=3650),
                        default=DEFAULT_RETENTION_DAYS,
                        help="prune local backups older than this (default: 30)")
    parser.add_argument("--stack", help="read backupRetentionDays and both sites' regions (for "
                        "the KMS key wraps) from Pulumi.<stack>.yaml")
    parser.add_argument("--compress-level", type=arguments.integer(minimum=1, maximum=22),
                        default=3, help="zstd level, 1-22 (default 3)")
    return parser


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def _wrap_keys(args: argparse.Namespace, settings: Settings | None) -> list[SiteKey]:
    """This site's key first (it generates the data key), then every other region's."""
    region = args.region or (settings.region if settings else None)
    if not region:
        raise KeyUnavailableError("KMS keys need --region (or AWS_REGION, or --stack)")
    own_id = args.kms_key_id
    if own_id is None and settings is not None:
        own_id = next((k.key_id for k in site_keys(settings.primary_region,
                                                    settings.standby_region)
                       if k.region == region), None)
    if own_id is None:
        raise KeyUnavailableError(f"no KMS key for {region}: pass --kms-key-id")
    keys = [SiteKey(region, own_id)]
    for item in args.wrap_key:
        other_region, sep, key_id = str(item).partition("=")
        if not sep or not other_region or not key_id:
            raise KeyUnavailableError(f"--wrap-key {item!r}: expected REGION=KEY")
        keys.append(SiteKey(other_region, key_id))
    if settings is not None:
        keys += site_keys(settings.primary_region, settings.standby_region)
    unique: dict[str, SiteKey] = {}
    for key in keys:  # the first key named for a region wins
        unique.setdefault(key.region, key)
    if len(unique) < 2:
        raise KeyUnavailableError(
            f"a KMS backup's data key must be wrapped under both sites' keys, or a regional "
            f"outage makes it unreadable; only {region} was given: pass --stack (prod or dr) "
            "or --wrap-key REGION=KEY")
    return list(unique.values())


def _key(args: argparse.Namespace, settings: Settings | None) -> DataKey:
    if args.kms_key_id or args.wrap_key:
        keys = _wrap_keys(args, settings)
        return key_from_kms(keys, regional_kms(keys[0].region))
    path = args.key_file or (Path(os.environ[KEY_FILE_ENV]) if KEY_FILE_ENV in os.environ
                             else None)
    if path is None:
        raise KeyUnavailableError(f"no key: pass --kms-key-id or --key-file (or {KEY_FILE_ENV})")
    return key_from_file(path)


def body(args: argparse.Namespace, run: Invocation) -> int:
    report = run.data
    try:
        return _backup(args, run, report)
    except CommandError as exc:
        message = redact(str(exc), args.database_url)
        report.update(error=message, result="failed")
        if message != str(exc):  # the message held the password: never repeat it
            raise CommandError(message, exit_code=exc.exit_code) from None
        raise
    except psycopg.Error as exc:
        message = redact(str(exc).strip(), args.database_url)
        report.update(error=message, result="failed")
        raise FailedError(f"backup failed: {message}") from None


def _backup(args: argparse.Namespace, run: Invocation, report: dict[str, Any]) -> int:
    if not args.database_url:
        raise KeyUnavailableError("no database: set DATABASE_URL or pass --database-url")
    checked_conninfo(args.database_url)
    if args.bucket and not args.region:
        raise UsageError("--bucket needs --region (or AWS_REGION)")
    writable_directory("--local-dir", args.local_dir)
    retention = args.retention_days
    settings = None
    if args.stack:
        try:
            settings = settings_from_stack_file(args.stack, PROJECT_DIR)
        except (SettingsError, StackFileError) as exc:
            raise UsageError(f"--stack {args.stack}: {exc}") from None
        retention = settings.backup_retention_days
    key = _key(args, settings)
    run.changing()
    manifest, data = take_backup(BackupOptions(
        database_url=args.database_url, local_dir=args.local_dir, key=key,
        compress_level=args.compress_level))
    report.update(backup=manifest.name, data_file=str(data), size_bytes=manifest.size_bytes,
                  tables={n: t.rows for n, t in manifest.tables.items()})
    if key.info.get("source") == "kms":
        report["key_wraps"] = [{"region": w["region"], "key_arn": w["key_arn"]}
                               for w in key.info["wraps"]]
        report["missing_wraps"] = list(key.missing)
    if args.bucket:
        s3 = AwsClients(args.region).s3()
        report["uploaded"] = upload(
            s3, args.bucket, args.bucket_kms_key_id,
            [data, args.local_dir / f"{manifest.name}.manifest.json"], args.prefix)
    plan = prune(args.local_dir, datetime.now(UTC), retention)
    report["pruned"] = plan.delete
    log.info("backup %s done; %d local backups kept, %d pruned", manifest.name,
             len(plan.keep), len(plan.delete))
    if key.missing:
        report["result"] = "degraded"
        report["error"] = (f"backup {manifest.name} was written, but its data key could "
                           "not be wrapped under " + "; ".join(key.missing) +
                           ": it cannot be restored while the other region is down")
        log.error("%s", report["error"])
        run.message = str(report["error"])
        return ExitCode.FAILED
    report["result"] = "ok"
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), body, argv, command="backup")
