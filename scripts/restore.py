#!/usr/bin/env python3
"""Restore a backup beside the live database, verify it, then swap it in (rollback.sh)."""

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

from caresync_dr.backup.errors import (
    BackupError,
    BackupNotFoundError,
    IntegrityError,
    KeyUnavailableError,
    VerificationError,
)
from caresync_dr.backup.key_wraps import regional_kms
from caresync_dr.backup.keys import KEY_FILE_ENV, resolver
from caresync_dr.backup.rollback import rollback
from caresync_dr.cli import ExitCode, finish_report, setup_logging

log = logging.getLogger("restore")

EPILOG = f"""\
BACKUP is backup_YYYYMMDD_HHMMSS.dump.enc (its .manifest.json beside it), the manifest, a backup
directory (its newest complete backup), or a plain .sql.gz as in the seed. No prompt: nothing is
destroyed (the live database is kept as <db>_old_<ts> until you drop it), so runbooks can call
`./scripts/rollback.sh FILE`. Keys: a KMS-encrypted backup needs AWS credentials; its data key is
wrapped under both sites' keys, so KMS in either region can unwrap it (--region's first); a
key-file backup needs --key-file or ${KEY_FILE_ENV}.

exit codes:
  0  restored, verified and swapped in (or, with --dry-run, the backup is intact and decrypts)
  1  failed during load or swap (message says which; before the swap the live DB is untouched)
  2  usage: backup or manifest missing, no DATABASE_URL, no key available
  3  refused: backup corrupt, truncated, wrong key, or the restored copy does not match the
     manifest; the live database is untouched
"""


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rollback.sh", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("backup", type=Path, help="backup file, manifest or .sql.gz")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="the live database (default: $DATABASE_URL)")
    parser.add_argument("--key-file", type=Path, default=None,
                        help=f"key file for key-file backups (default: ${KEY_FILE_ENV})")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION"),
                        help="this host's AWS region: a KMS-encrypted backup's data key is "
                             "unwrapped there first, then in any other region holding a wrap "
                             "(default: $AWS_REGION)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel restore jobs (default 2)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="where the decrypted archive is staged (default: $TMPDIR)")
    parser.add_argument("--no-swap", action="store_true",
                        help="restore and verify beside the live database, do not swap")
    parser.add_argument("--dry-run", action="store_true",
                        help="verify checksum and decryption only; change nothing")
    parser.add_argument("--report", type=Path, help="write a JSON report here")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    setup_logging(args.verbose)
    report: dict[str, object] = {"command": "rollback", "backup": str(args.backup),
                                 "started_at": datetime.now(UTC)}
    clock = time.monotonic()
    code = ExitCode.OK
    try:
        if not args.database_url:
            raise KeyUnavailableError("no database: set DATABASE_URL or pass --database-url")
        result = rollback(args.backup, args.database_url,
                          resolver(args.key_file, regional_kms(args.region), args.region),
                          jobs=args.jobs, dry_run=args.dry_run, swap_in=not args.no_swap,
                          work_dir=args.work_dir)
        log.info("%s", result.summary())
        print(result.summary())
        report.update(result=result.__dict__)
    except (BackupNotFoundError, KeyUnavailableError) as exc:
        code, message = ExitCode.USAGE, str(exc)
    except (IntegrityError, VerificationError) as exc:
        code, message = ExitCode.REFUSED, f"{exc}; the live database was not touched"
    except BackupError as exc:
        code, message = ExitCode.FAILED, str(exc)
    except psycopg.Error as exc:
        code, message = ExitCode.FAILED, f"database error: {str(exc).strip()}"
    if code != ExitCode.OK:
        log.error("rollback refused/failed: %s", message)
        report["error"] = message
    return finish_report(report, code, clock, args.report)


if __name__ == "__main__":
    sys.exit(main())
