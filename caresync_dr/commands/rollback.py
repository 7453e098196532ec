"""Restore a backup beside the live database, verify it, then swap it in (rollback.sh)."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import psycopg

from caresync_dr import arguments
from caresync_dr.backup.errors import (
    IntegrityError,
    KeyUnavailableError,
    VerificationError,
)
from caresync_dr.backup.key_wraps import regional_kms
from caresync_dr.backup.keys import KEY_FILE_ENV, resolver
from caresync_dr.backup.rollback import PreflightError, rollback
from caresync_dr.backup.tools import checked_conninfo, redact
from caresync_dr.cli import (
    CommandError,
    CommandParser,
    ExitCode,
    FailedError,
    Invocation,
    RefusedError,
    command_parser,
    run_main,
    writable_directory,
)

log = logging.getLogger("restore")

NOTES = f"""\
BACKUP is backup_YYYYMMDD_HHMMSS.dump.enc (its .manifest.json beside it), the manifest, a backup
directory (its newest complete backup), or a plain .sql.gz as in the seed. No prompt: nothing is
destroyed (the live database is kept as <db>_old_<ts> until you drop it), so runbooks can call
`./scripts/rollback.sh FILE`. Keys: a KMS-encrypted backup needs AWS credentials; its data key is
wrapped under both sites' keys, so KMS in either region can unwrap it (--region's first); a
key-file backup needs --key-file or ${KEY_FILE_ENV}. Runbook: docs/runbooks/backup-restore.md.

--dry-run needs no database: it checks the whole backup (checksum, decryption, every table's
fingerprint). With DATABASE_URL it also checks that the connecting role can recreate everything
(on RDS it is not a superuser): each object or owner it cannot, with the GRANT that fixes it.
Killed at any point (even SIGKILL), a restore leaves no plaintext on disk and the live database
as it was or fully swapped; the next run drops the scratch database it left, and says so.
"""
EXIT_CODES = [
    (ExitCode.OK, "restored, verified and swapped in (or, with --dry-run, the backup is intact,\n"
                  "decrypts and the role can restore it)"),
    (ExitCode.FAILED, "failed during load or swap (message says which; before the swap the live\n"
                      "DB is untouched); or, with --continue-on-error, restored with failed\n"
                      "objects (each listed in the report); or stopped by a signal"),
    (ExitCode.USAGE, "usage: backup or manifest missing, no or a malformed DATABASE_URL (never\n"
                     "echoed: it may hold a password), the live database does not exist and no\n"
                     "--create, no key available, bad arguments"),
    (ExitCode.REFUSED, "refused: the role lacks privileges the restore needs (preflight: each\n"
                       "with its fix), backup corrupt, truncated, wrong key, renamed (its\n"
                       "manifest names another backup), a plain SQL file with psql meta-commands\n"
                       "or statements acting outside its database, a restored copy that does not\n"
                       "match the manifest or holds no user tables or rows; or no AWS\n"
                       "credentials, or AWS did not answer; the live database is untouched"),
    (ExitCode.LOCKED, "another restore or restore test of the same database is running;\n"
                      "nothing was changed"),
]


def build_parser() -> CommandParser:
    parser = command_parser("rollback.sh", __doc__ or "", EXIT_CODES, notes=NOTES)
    parser.add_argument("backup", type=Path, help="backup file, manifest or .sql.gz")
    parser.add_argument("--database-url", type=arguments.database_url,
                        default=os.environ.get("DATABASE_URL"),
                        help="the live database (default: $DATABASE_URL)")
    parser.add_argument("--key-file", type=Path, default=None,
                        help=f"key file for key-file backups (default: ${KEY_FILE_ENV})")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION"),
                        help="this host's AWS region: a KMS-encrypted backup's data key is "
                             "unwrapped there first, then in any other region holding a wrap "
                             "(default: $AWS_REGION)")
    parser.add_argument("--jobs", type=arguments.integer(minimum=1, maximum=64), default=2,
                        help="parallel restore jobs, 1-64 (default 2)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where the decrypted archive is staged (default: $TMPDIR)")
    parser.add_argument("--no-swap", action="store_true",
                        help="restore and verify beside the live database, do not swap")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the whole backup (checksum, decryption, every table's "
                             "fingerprint; a plain SQL file's statements) without any database")
    parser.add_argument("--create", action="store_true",
                        help="the live database does not exist and that is expected: restore "
                             "into a new database of that name (without it a misspelled name "
                             "is refused)")
    parser.add_argument("--continue-on-error", action="store_true",
                        help="restore every object that can be: list each one that fails in "
                             "the report, swap only if all the data verified, exit 1")
    parser.add_argument("--allow-empty", action="store_true",
                        help="restore even when the result holds no user tables or no rows "
                             "(refused by default: an empty or truncated backup)")
    return parser


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def body(args: argparse.Namespace, run: Invocation) -> int:
    report = run.data
    report["backup"] = str(args.backup)
    try:
        return _restore(args, run, report)
    except CommandError as exc:
        report["error"] = redact(str(exc), args.database_url)
        if report["error"] != str(exc):  # the message held the password: never repeat it
            raise CommandError(str(report["error"]), exit_code=exc.exit_code) from None
        raise
    except psycopg.Error as exc:
        report["error"] = redact(f"database error: {str(exc).strip()}", args.database_url)
        raise FailedError(str(report["error"])) from exc
    except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM, SIGHUP: the restore unwound first
        report["error"] = (f"{exc or 'interrupted'}: the scratch database was dropped; the "
                           "live database is as it was unless the report says it was swapped")
        raise


def _restore(args: argparse.Namespace, run: Invocation, report: dict[str, object]) -> int:
    if not args.database_url and not args.dry_run:
        raise KeyUnavailableError("no database: set DATABASE_URL or pass --database-url "
                                  "(--dry-run alone needs none)")
    if args.database_url:
        checked_conninfo(args.database_url)
    if args.work_dir is not None:
        writable_directory("--work-dir", args.work_dir)
    if not args.dry_run:
        run.changing()  # a scratch database is created; the live one is swapped last
    try:
        result = rollback(args.backup, args.database_url or "",
                          resolver(args.key_file, regional_kms(args.region), args.region),
                          jobs=args.jobs, dry_run_only=args.dry_run, swap_in=not args.no_swap,
                          work_dir=args.work_dir, allow_empty=args.allow_empty,
                          create=args.create, continue_on_error=args.continue_on_error)
    except PreflightError as exc:
        report["preflight"] = [str(f) for f in exc.findings]
        for finding in exc.findings:
            print(f"preflight: {finding}")
        raise RefusedError(f"{exc}; the live database was not touched") from exc
    except (IntegrityError, VerificationError) as exc:
        raise RefusedError(f"{exc}; the live database was not touched") from exc
    log.info("%s", result.summary())
    print(result.summary())
    report["result"] = result.__dict__
    if not result.complete:
        report["error"] = run.message = redact(
            f"{len(result.failed_objects)} object(s) did not restore, {len(result.problems)} "
            "verification problem(s): " + "; ".join(result.failed_objects + result.problems),
            args.database_url)
        log.error("%s", report["error"])
        return ExitCode.FAILED
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), body, argv, command="rollback")
