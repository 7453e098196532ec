"""Check the site's /api/health and the database (SELECT 1, the patients count)."""

from __future__ import annotations

import argparse
import logging
import os

from caresync_dr import arguments
from caresync_dr.backup.health import Check, check_app, check_database
from caresync_dr.cli import (
    CommandParser,
    ExitCode,
    Invocation,
    UsageError,
    command_parser,
    run_main,
)

log = logging.getLogger(__name__)
EXIT_CODES = [
    (ExitCode.OK, "every check passed (a database without DATABASE_URL is reported as skipped)"),
    (ExitCode.FAILED, "at least one check failed (each failure is printed: app, database,\n"
                      "patients); an app answering from a read-only database (degraded\n"
                      "service) fails"),
    (ExitCode.USAGE, "usage: nothing to check (--skip-app and no DATABASE_URL), a bad URL,\n"
                     "database URL or timeout"),
]


def build_parser() -> CommandParser:
    parser = command_parser("health-check.sh", __doc__ or "", EXIT_CODES)
    parser.add_argument("--url", type=arguments.http_url,
                        default=os.environ.get("APP_URL", "http://localhost:5173"),
                        help="the site, or its /api/health URL (default: $APP_URL or "
                             "http://localhost:5173, the seed's); healthy means the /api/health "
                             "contract: HTTP 200, status ok, a writable database")
    parser.add_argument("--skip-app", action="store_true", help="check the database only")
    parser.add_argument("--database-url", type=arguments.database_url,
                        default=os.environ.get("DATABASE_URL"),
                        help="database to check (default: $DATABASE_URL; none: skipped, "
                             "and the output says so)")
    parser.add_argument("--timeout", type=arguments.seconds(maximum=600), default=5.0,
                        help="seconds each check may take (default 5; whole seconds, at least "
                             "1, for the database connect)")
    return parser


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def body(args: argparse.Namespace, run: Invocation) -> int:
    checks: list[Check] = []
    skipped: dict[str, str] = {}
    if not args.skip_app:
        checks.append(check_app(args.url, args.timeout))
    if args.database_url:
        checks += check_database(args.database_url, max(1, round(args.timeout)))
    else:
        skipped["database"] = ("not checked: DATABASE_URL is not set and no --database-url "
                               "was given")
    if not checks:
        raise UsageError("nothing to check: set DATABASE_URL or drop --skip-app")
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    for name, why in skipped.items():
        print(f"skip {name}: {why}")
    failed = [c.name for c in checks if not c.ok]
    run.data.update(failed=failed, skipped=skipped, checks=[c.__dict__ for c in checks])
    if failed:
        log.error("health check failed: %s", ", ".join(failed))
        return ExitCode.FAILED
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), body, argv, command="health_check")
