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
from caresync_dr.backup.rollback import rollback
from caresync_dr.cli import (
    CommandError,
    CommandParser,
    ExitCode,
    FailedError,
    Invocation,
    RefusedError,
    command_parser,
    run_main,
)

log = logging.getLogger("restore")

NOTES = f"""\
BACKUP is backup_YYYYMMDD_HHMMSS.dump.enc (its .manifest.json beside it), the manifest, a backup
directory (its newest complete backup), or a plain .sql.gz as in the seed. No prompt: nothing is
destroyed (the live database is kept as <db>_old_<ts> until you drop it), so runbooks can call
`./scripts/rollback.sh FILE`. Keys: a KMS-encrypted backup needs AWS credentials; its data key is
wrapped under both sites' keys, so KMS in either region can unwrap it (--region's first); a
key-file backup needs --key-file or ${KEY_FILE_ENV}. Runbook: docs/runbooks/backup-restore.md.
"""
EXIT_CODES = [
    (ExitCode.OK, "restored, verified and swapped in (or, with --dry-run, the backup is intact\n"
                  "and decrypts)"),
    (ExitCode.FAILED, "failed during load or swap (message says which; before the swap the live\n"
                      "DB is untouched)"),
    (ExitCode.USAGE, "usage: backup or manifest missing, no or a malformed DATABASE_URL, no key\n"
                     "available, bad arguments"),
    (ExitCode.REFUSED, "refused: backup corrupt, truncated, wrong key, or the restored copy does\n"
                       "not match the manifest; or no AWS credentials, or AWS did not answer,\n"
                       "before anything was touched; the live database is untouched"),
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
                        help="verify checksum and decryption only; change nothing")
    return parser


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def body(args: argparse.Namespace, run: Invocation) -> int:
    report = run.data
    report["backup"] = str(args.backup)
    try:
        if not args.database_url:
            raise KeyUnavailableError("no database: set DATABASE_URL or pass --database-url")
        result = rollback(args.backup, args.database_url,
                          resolver(args.key_file, regional_kms(args.region), args.region),
                          jobs=args.jobs, dry_run=args.dry_run, swap_in=not args.no_swap,
                          work_dir=args.work_dir)
    except (IntegrityError, VerificationError) as exc:
        report["error"] = f"{exc}; the live database was not touched"
        raise RefusedError(str(report["error"])) from exc
    except CommandError as exc:
        report["error"] = str(exc)
        raise
    except psycopg.Error as exc:
        report["error"] = f"database error: {str(exc).strip()}"
        raise FailedError(str(report["error"])) from exc
    log.info("%s", result.summary())
    print(result.summary())
    report["result"] = result.__dict__
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), body, argv, command="rollback")
