#!/usr/bin/env python3
"""Take an encrypted, verified logical backup of DATABASE_URL; keep 30 days locally."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import logging
import os
import time
from datetime import UTC, datetime

import psycopg

from caresync_dr.aws import AwsClients
from caresync_dr.backup.create import BackupOptions, take_backup
from caresync_dr.backup.errors import BackupError, KeyUnavailableError
from caresync_dr.backup.key_wraps import SiteKey, regional_kms, site_keys
from caresync_dr.backup.keys import KEY_FILE_ENV, DataKey, key_from_file, key_from_kms
from caresync_dr.backup.prune import prune
from caresync_dr.backup.storage import DEFAULT_PREFIX, upload
from caresync_dr.cli import ExitCode, finish_report, setup_logging
from caresync_dr.settings import Settings, SettingsError, StackFileError, settings_from_stack_file

log = logging.getLogger("backup")
DEFAULT_RETENTION_DAYS = 30  # the stack setting backupRetentionDays; --stack reads it

EPILOG = """\
keys: with KMS, a fresh data key per backup is wrapped under BOTH sites' keys, so a restore works
with either region down: --kms-key-id in --region, plus the other site's key, which --stack
derives from the settings (alias/caresync-primary in primaryRegion, alias/caresync-standby in
standbyRegion), or --wrap-key REGION=KEY. A KMS backup with a single region's key is refused.

exit codes:
  0  backup written (and uploaded with --bucket), old local copies pruned
  1  the backup failed (pg_dump, fingerprinting, upload); no partial backup is left behind;
     or (report result "degraded") it was written but a region's KMS did not answer, so its
     data key lacks that region's wrap (report: missing_wraps); the next backup tries again
  2  usage: no database URL, no key (--key-file or --kms-key-id), one KMS region only,
     unknown --stack, bad arguments
output: <local-dir>/backup_YYYYMMDD_HHMMSS.dump.enc and .manifest.json (see README
"Backups and restore").
"""


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="backup.py", description=__doc__, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
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
    parser.add_argument("--retention-days", type=int, default=DEFAULT_RETENTION_DAYS,
                        help="prune local backups older than this (default: 30)")
    parser.add_argument("--stack", help="read backupRetentionDays and both sites' regions (for "
                        "the KMS key wraps) from Pulumi.<stack>.yaml")
    parser.add_argument("--compress-level", type=int, default=3, help="zstd level (default 3)")
    parser.add_argument("--report", type=Path, help="write a JSON report here")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


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


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    setup_logging(args.verbose)
    report: dict[str, object] = {"command": "backup", "started_at": datetime.now(UTC)}
    clock = time.monotonic()
    code = ExitCode.OK
    try:
        if not args.database_url:
            raise KeyUnavailableError("no database: set DATABASE_URL or pass --database-url")
        retention = args.retention_days
        settings = None
        if args.stack:
            try:
                settings = settings_from_stack_file(args.stack,
                                                    Path(__file__).resolve().parents[1])
            except (SettingsError, StackFileError) as exc:
                raise KeyUnavailableError(f"--stack {args.stack}: {exc}") from None
            retention = settings.backup_retention_days
        if retention < 1:
            raise KeyUnavailableError("--retention-days must be at least 1")
        key = _key(args, settings)
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
            if not args.region:
                raise KeyUnavailableError("--bucket needs --region (or AWS_REGION)")
            s3 = AwsClients(args.region).s3()
            report["uploaded"] = upload(
                s3, args.bucket, args.bucket_kms_key_id,
                [data, args.local_dir / f"{manifest.name}.manifest.json"], args.prefix)
        plan = prune(args.local_dir, datetime.now(UTC), retention)
        report["pruned"] = plan.delete
        log.info("backup %s done; %d local backups kept, %d pruned", manifest.name,
                 len(plan.keep), len(plan.delete))
        if key.missing:
            code = ExitCode.FAILED
            report["error"] = (f"backup {manifest.name} was written, but its data key could "
                               "not be wrapped under " + "; ".join(key.missing) +
                               ": it cannot be restored while the other region is down")
            log.error("%s", report["error"])
    except KeyUnavailableError as exc:
        log.error("%s", exc)
        code = ExitCode.USAGE
        report["error"] = str(exc)
    except (BackupError, psycopg.Error) as exc:
        log.error("backup failed: %s", str(exc).strip())
        code = ExitCode.FAILED
        report["error"] = str(exc).strip()
    report["result"] = ("ok" if code == ExitCode.OK else
                        "degraded" if report.get("missing_wraps") else "failed")
    return finish_report(report, code, clock, args.report)


if __name__ == "__main__":
    sys.exit(main())
