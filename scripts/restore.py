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
    UsageError,
    VerificationError,
)
from caresync_dr.backup.key_wraps import regional_kms
from caresync_dr.backup.keys import KEY_FILE_ENV, resolver
from caresync_dr.backup.leftovers import RestoreLockedError
from caresync_dr.backup.rollback import PreflightError, rollback
from caresync_dr.backup.tools import checked_conninfo, redact
from caresync_dr.cli import ExitCode, finish_report, setup_logging
from caresync_dr.cli.signals import Interrupted, signals_interrupt

log = logging.getLogger("restore")

EPILOG = f"""\
BACKUP is backup_YYYYMMDD_HHMMSS.dump.enc (its .manifest.json beside it), the manifest, a backup
directory (its newest complete backup), or a plain .sql.gz as in the seed. No prompt: nothing is
destroyed (the live database is kept as <db>_old_<ts> until you drop it), so runbooks can call
`./scripts/rollback.sh FILE`. Keys: a KMS-encrypted backup needs AWS credentials; its data key is
wrapped under both sites' keys, so KMS in either region can unwrap it (--region's first); a
key-file backup needs --key-file or ${KEY_FILE_ENV}.

--dry-run needs no database: it checks the whole backup (checksum, decryption, every table's
fingerprint). With DATABASE_URL it also checks that the connecting role can recreate everything
(on RDS it is not a superuser): each object or owner it cannot, with the GRANT that fixes it.

exit codes:
  0  restored, verified and swapped in (or, with --dry-run, the backup is intact, decrypts and
     the role can restore it)
  1  failed during load or swap (message says which; before the swap the live DB is untouched);
     or, with --continue-on-error, restored with failed objects (each listed in the report)
  2  usage: backup or manifest missing, no or malformed DATABASE_URL (never echoed: it may
     hold a password), the live database does not exist and no --create, no key available
  3  refused: the role lacks privileges the restore needs (preflight: each with its fix),
     backup corrupt, truncated, wrong key, renamed (its manifest names another
     backup), a plain SQL file with psql meta-commands or statements acting outside its
     database, a restored copy that does not match the manifest or holds no user tables or
     rows; the live database is untouched
  4  another restore or restore test of the same database is running; nothing was changed
Killed at any point (even SIGKILL), a restore leaves no plaintext on disk and the live database
as it was or fully swapped; the next run drops the scratch database it left, and says so.
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
    parser.add_argument("--report", type=Path, help="write a JSON report here")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    setup_logging(args.verbose)
    with signals_interrupt():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    report: dict[str, object] = {"command": "rollback", "backup": str(args.backup),
                                 "started_at": datetime.now(UTC)}
    clock = time.monotonic()
    code = ExitCode.OK
    try:
        if not args.database_url and not args.dry_run:
            raise KeyUnavailableError("no database: set DATABASE_URL or pass --database-url "
                                      "(--dry-run alone needs none)")
        if args.database_url:
            checked_conninfo(args.database_url)
        result = rollback(args.backup, args.database_url or "",
                          resolver(args.key_file, regional_kms(args.region), args.region),
                          jobs=args.jobs, dry_run_only=args.dry_run, swap_in=not args.no_swap,
                          work_dir=args.work_dir, allow_empty=args.allow_empty,
                          create=args.create, continue_on_error=args.continue_on_error)
        log.info("%s", result.summary())
        print(result.summary())
        report.update(result=result.__dict__)
        if not result.complete:
            code, message = ExitCode.FAILED, (
                f"{len(result.failed_objects)} object(s) did not restore, "
                f"{len(result.problems)} verification problem(s): "
                + "; ".join(result.failed_objects + result.problems))
    except (BackupNotFoundError, KeyUnavailableError, UsageError) as exc:
        code, message = ExitCode.USAGE, str(exc)
    except PreflightError as exc:
        code, message = ExitCode.REFUSED, f"{exc}; the live database was not touched"
        report["preflight"] = [str(f) for f in exc.findings]
        for finding in exc.findings:
            print(f"preflight: {finding}")
    except (IntegrityError, VerificationError) as exc:
        code, message = ExitCode.REFUSED, f"{exc}; the live database was not touched"
    except RestoreLockedError as exc:
        code, message = ExitCode.LOCKED, str(exc)
    except BackupError as exc:
        code, message = ExitCode.FAILED, str(exc)
    except psycopg.Error as exc:
        code, message = ExitCode.FAILED, f"database error: {str(exc).strip()}"
    except (Interrupted, KeyboardInterrupt) as exc:
        code, message = ExitCode.FAILED, (f"{exc or 'interrupted'}: the scratch database was "
                                          "dropped; the live database is as it was unless the "
                                          "report says it was swapped")
    if code != ExitCode.OK:
        message = redact(message, args.database_url)
        log.error("rollback refused/failed: %s", message)
        report["error"] = message
    return finish_report(report, code, clock, args.report)


if __name__ == "__main__":
    sys.exit(main())
