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
from caresync_dr.backup.keys import KEY_FILE_ENV, DataKey, key_from_file, key_from_kms
from caresync_dr.backup.prune import prune
from caresync_dr.backup.storage import DEFAULT_PREFIX, upload
from caresync_dr.cli import ExitCode, finish_report, setup_logging

log = logging.getLogger("backup")
DEFAULT_RETENTION_DAYS = 30  # the stack setting backupRetentionDays; --stack reads it

EPILOG = """\
exit codes:
  0  backup written (and uploaded with --bucket), old local copies pruned
  1  the backup failed (pg_dump, fingerprinting, upload); no partial backup is left behind
  2  usage: no database URL, no key (--key-file or --kms-key-id), bad arguments
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
    keys.add_argument("--kms-key-id", help="KMS key for a fresh data key per backup")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION"),
                        help="AWS region of the KMS key and bucket (default: $AWS_REGION)")
    parser.add_argument("--bucket", help="also upload to this S3 bucket (SSE-KMS)")
    parser.add_argument("--bucket-kms-key-id", help="SSE-KMS key for the upload "
                        "(default: the bucket's default key)")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="S3 key prefix")
    parser.add_argument("--retention-days", type=int, default=DEFAULT_RETENTION_DAYS,
                        help="prune local backups older than this (default: 30)")
    parser.add_argument("--stack", help="read backupRetentionDays from Pulumi.<stack>.yaml")
    parser.add_argument("--compress-level", type=int, default=3, help="zstd level (default 3)")
    parser.add_argument("--report", type=Path, help="write a JSON report here")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def _key(args: argparse.Namespace) -> DataKey:
    if args.kms_key_id:
        if not args.region:
            raise KeyUnavailableError("--kms-key-id needs --region (or AWS_REGION)")
        return key_from_kms(AwsClients(args.region).kms(), args.kms_key_id, args.region)
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
        if args.stack:
            from caresync_dr.settings import settings_from_stack_file
            retention = settings_from_stack_file(
                args.stack, Path(__file__).resolve().parents[1]).backup_retention_days
        if retention < 1:
            raise KeyUnavailableError("--retention-days must be at least 1")
        key = _key(args)
        manifest, data = take_backup(BackupOptions(
            database_url=args.database_url, local_dir=args.local_dir, key=key,
            compress_level=args.compress_level))
        report.update(backup=manifest.name, data_file=str(data), size_bytes=manifest.size_bytes,
                      tables={n: t.rows for n, t in manifest.tables.items()})
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
    except KeyUnavailableError as exc:
        log.error("%s", exc)
        code = ExitCode.USAGE
        report["error"] = str(exc)
    except (BackupError, psycopg.Error) as exc:
        log.error("backup failed: %s", str(exc).strip())
        code = ExitCode.FAILED
        report["error"] = str(exc).strip()
    report["result"] = "ok" if code == ExitCode.OK else "failed"
    return finish_report(report, code, clock, args.report)


if __name__ == "__main__":
    sys.exit(main())
