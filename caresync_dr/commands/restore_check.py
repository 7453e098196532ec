"""The daily automated restore test: prove the latest backup restores and verifies.

Local side: the newest backup in --local-dir (or --bucket) is restored into a throwaway database
on the server at --target-url, verified against its manifest, and dropped. RDS side (with
--rds-instance): the newest automated snapshot or AWS Backup recovery point is restored into a
temporary instance in the site's own network (its DB subnet group, --db-security-group-id and
parameter group; never the default VPC, never public), checked (available, engine, encryption,
placement), and deleted.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from caresync_dr import arguments
from caresync_dr.aws import AwsClients
from caresync_dr.backup.errors import BackupNotFoundError
from caresync_dr.backup.key_wraps import regional_kms
from caresync_dr.backup.keys import KEY_FILE_ENV, resolver
from caresync_dr.backup.rds_restore_testing import Expectations, Placement, run_rds_restore_test
from caresync_dr.backup.restore_testing import find_latest, run_local_restore_test, scratch_dir
from caresync_dr.backup.storage import DEFAULT_PREFIX
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
)
from caresync_dr.names import STACK_OF_SITE
from caresync_dr.settings import SettingsError, StackFileError, settings_from_stack_file

log = logging.getLogger("restore_check")
PROJECT_DIR = Path(__file__).resolve().parents[2]

NOTES = f"""\
The JSON report (--report) holds result, exit_code, duration_seconds and each part's details.
Keys: key-file backups need --key-file or ${KEY_FILE_ENV}; KMS backups need AWS credentials.
"""
EXIT_CODES = [
    (ExitCode.OK, "passed: every requested part restored and verified; scratch resources removed"),
    (ExitCode.FAILED, "failed: a backup did not restore or verify, is older than --max-age-hours,\n"
                      "or an RDS restore did not come up as expected (the report lists each\n"
                      "problem)"),
    (ExitCode.USAGE, "usage: no backup found, no or a malformed target database URL, no key,\n"
                     "bad arguments"),
    (ExitCode.REFUSED, "no AWS credentials (the message names the role to assume), or AWS did\n"
                       "not answer, before anything was restored; nothing was created"),
    (ExitCode.LOCKED, "a restore of the same database is running (rollback.sh): nothing was\n"
                      "tested or created; run again when it ends"),
]


def build_parser() -> CommandParser:
    parser = command_parser("restore_check.py", __doc__ or "", EXIT_CODES, notes=NOTES)
    parser.add_argument("--local-dir", type=Path, default=Path("/backups"),
                        help="where backups are (default: /backups)")
    parser.add_argument("--bucket", help="take the latest backup from this S3 bucket instead")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX,
                        help=f"S3 key prefix of the backups (default: {DEFAULT_PREFIX})")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION"),
                        help="AWS region of the bucket, KMS key and RDS instance "
                             "(default: $AWS_REGION)")
    parser.add_argument("--target-url", type=arguments.database_url,
                        default=os.environ.get("DATABASE_URL"),
                        help="server to restore into; the scratch database is named after its "
                             "database (default: $DATABASE_URL)")
    parser.add_argument("--key-file", type=Path, default=None,
                        help=f"key file for key-file backups (default: ${KEY_FILE_ENV})")
    parser.add_argument("--max-age-hours", type=arguments.number(above=0, maximum=24 * 35),
                        default=12.0,
                        help="fail if the newest backup is older (default 12: two 6-h cycles)")
    parser.add_argument("--skip-local", action="store_true", help="only the RDS side")
    parser.add_argument("--rds-instance", help="also test restoring this RDS instance")
    parser.add_argument("--backup-vault", help="also consider AWS Backup recovery points")
    parser.add_argument("--restore-role-arn", help="IAM role AWS Backup restores with")
    parser.add_argument("--site", choices=("primary", "standby"),
                        help="whose network the temporary instance goes into (names the "
                             "defaults below; required with --rds-instance)")
    parser.add_argument("--db-subnet-group",
                        help="DB subnet group for the temporary instance "
                             "(default: caresync-<site>-db, the stack's)")
    parser.add_argument("--db-security-group-id", action="append", default=[], metavar="SG_ID",
                        help="VPC security group for the temporary instance (the site's "
                             "database security group; repeatable; required with "
                             "--rds-instance)")
    parser.add_argument("--db-parameter-group",
                        help="DB parameter group for the temporary instance (default: "
                             "caresync-<site>-postgres<major>, the stack's, with the major "
                             "version of dbEngineVersion in the site's Pulumi.<stack>.yaml)")
    parser.add_argument("--instance-class", default="db.t4g.medium",
                        help="class of the scratch RDS instance (default: db.t4g.medium)")
    parser.add_argument("--expect-kms-key-id", help="restored storage must use this KMS key")
    parser.add_argument("--wait-seconds", type=arguments.seconds(), default=3600,
                        help="how long the RDS restore may take (default 3600)")
    parser.add_argument("--poll-seconds", type=arguments.seconds(maximum=3600), default=30,
                        help="interval between RDS status reads (default 30)")
    return parser


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    return _with_placement(build_parser().parse_args(argv))


def _with_placement(args: argparse.Namespace) -> argparse.Namespace:
    """Where the RDS side's temporary instance goes, from --site and the site's stack file
    (its dbEngineVersion names the parameter group). Raises UsageError."""
    args.engine_major = None
    args.placement = None
    if not args.rds_instance:
        return args
    if args.site is None:
        raise UsageError("--rds-instance needs --site (primary or standby): the temporary "
                         "instance goes into that site's network, never the default VPC")
    if not args.db_security_group_id:
        raise UsageError("--rds-instance needs --db-security-group-id (the site's database "
                         "security group)")
    try:
        args.engine_major = str(settings_from_stack_file(
            STACK_OF_SITE[args.site], PROJECT_DIR).engine_major)
        args.placement = Placement.for_site(
            args.site, tuple(args.db_security_group_id), engine_major=args.engine_major,
            subnet_group=args.db_subnet_group, parameter_group=args.db_parameter_group)
    except (ValueError, SettingsError, StackFileError) as exc:
        raise UsageError(str(exc)) from exc
    return args


def body(args: argparse.Namespace, run: Invocation) -> int:
    args = _with_placement(args)
    report = run.data
    now = datetime.now(UTC)
    code = ExitCode.OK
    downloads = scratch_dir()
    try:
        if not args.skip_local:
            if not args.target_url:
                raise BackupNotFoundError("no target server: set DATABASE_URL or --target-url")
            checked_conninfo(args.target_url, "--target-url/DATABASE_URL")
            if args.bucket and not args.region:
                raise BackupNotFoundError("--bucket needs --region (or AWS_REGION)")
            s3 = AwsClients(args.region).s3() if args.bucket else None
            latest = find_latest(None if args.bucket else args.local_dir, s3, args.bucket,
                                 args.prefix, downloads)
            run.changing()    # a scratch database is created (and always dropped)
            local = run_local_restore_test(
                latest, args.target_url,
                resolver(args.key_file, regional_kms(args.region), args.region),
                max_age=timedelta(hours=args.max_age_hours), now=now)
            local.problems = [redact(p, args.target_url) for p in local.problems]
            report["local"] = local.to_dict()
            if not local.passed:
                code = ExitCode.FAILED
        if args.rds_instance:
            if not args.region:
                raise BackupNotFoundError("--rds-instance needs --region (or AWS_REGION)")
            clients = AwsClients(args.region)
            rds = run_rds_restore_test(
                clients.rds(), args.rds_instance,
                f"{args.rds_instance}-restoretest-{now:%Y%m%d%H%M}",
                expected=Expectations(engine_major=args.engine_major,
                                      kms_key_id=args.expect_kms_key_id),
                placement=args.placement, instance_class=args.instance_class,
                backup=clients.backup() if args.backup_vault else None,
                vault=args.backup_vault, restore_role_arn=args.restore_role_arn,
                wait_seconds=args.wait_seconds, poll_seconds=args.poll_seconds)
            report["rds"] = rds.to_dict()
            if not rds.passed:
                code = ExitCode.FAILED
    except CommandError as exc:
        message = redact(str(exc), args.target_url)
        report.update(error=message, result="failed")
        if message != str(exc):  # the message held the password: never repeat it
            raise CommandError(message, exit_code=exc.exit_code) from None
        raise
    except psycopg.Error as exc:
        message = redact(str(exc).strip(), args.target_url)
        report.update(error=message, result="failed")
        raise FailedError(f"restore test: {message}") from None
    finally:
        shutil.rmtree(downloads, ignore_errors=True)
    for part in ("local", "rds"):
        for problem in report.get(part, {}).get("problems", []):
            log.error("%s restore test: %s", part, problem)
    report["result"] = "passed" if code == ExitCode.OK else "failed"
    log.info("restore test %s", report["result"])
    return code


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), body, argv, command="restore_check")
