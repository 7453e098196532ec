#!/usr/bin/env python3
"""Check the site's /api/health and the database (SELECT 1, the patients count)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# Re-runs this script under ./venv/bin/python when this Python lacks the dependencies.
import caresync_dr.venv_guard  # noqa: F401

# isort: split

import argparse
import logging
import os

from caresync_dr.backup.health import Check, check_app, check_database
from caresync_dr.cli import ExitCode, setup_logging, write_json_report

log = logging.getLogger("health_check")
EPILOG = """\
exit codes:
  0  every check passed
  1  at least one check failed (each failure is printed: app, database, patients)
  2  usage: nothing to check (no --url/APP_URL and no DATABASE_URL)
"""


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="health-check.sh", description=__doc__, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("APP_URL", "http://localhost:5173"),
                        help="the site (default: $APP_URL or http://localhost:5173, the seed's)")
    parser.add_argument("--skip-app", action="store_true", help="check the database only")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="database to check (default: $DATABASE_URL; none: skipped)")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="seconds each check may take (default 5; whole seconds for the "
                             "database connect)")
    parser.add_argument("--report", type=Path, help="write a JSON report here")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    setup_logging(args.verbose)
    checks: list[Check] = []
    skipped: dict[str, str] = {}
    if not args.skip_app:
        checks.append(check_app(args.url, args.timeout))
    if args.database_url:
        checks += check_database(args.database_url, int(args.timeout))
    else:
        skipped["database"] = ("not checked: DATABASE_URL is not set and no --database-url "
                               "was given")
    if not checks:
        log.error("nothing to check: set DATABASE_URL or drop --skip-app")
        return int(ExitCode.USAGE)
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    for name, why in skipped.items():
        print(f"skip {name}: {why}")
    failed = [c.name for c in checks if not c.ok]
    code = ExitCode.FAILED if failed else ExitCode.OK
    if failed:
        log.error("health check failed: %s", ", ".join(failed))
    if args.report:
        write_json_report(args.report, {"command": "health_check", "exit_code": int(code),
                                        "failed": failed, "skipped": skipped,
                                        "checks": [c.__dict__ for c in checks]})
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
