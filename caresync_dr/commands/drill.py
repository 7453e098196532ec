"""Rehearse a failover of the whole stack on an emulated AWS (moto on 127.0.0.1) with real
PostgreSQL: no AWS account, no network. See docs/drills.md and docs/runbooks/drills.md."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from caresync_dr import arguments
from caresync_dr.cli import CommandParser, ExitCode, Invocation, command_parser, run_main

log = logging.getLogger("drill")

NOTES = """\
scenarios:
  region-outage  the primary region's APIs and Route 53's control plane become unreachable,
                 the primary database and app are killed hard; failover --scope region
  db-failure     only the primary database dies; failover --scope database promotes the
                 in-region replica and repoints the app
  app-crash      the primary app crashes; app.py restart brings writable service back in the
                 primary region (the read-only standby meanwhile is degraded service)
  bad-release    a broken release ships (pulumi up, app.py deploy); Auto Scaling's alarms roll
                 it back by itself
  corruption     rows are deleted on the primary; pitr.py restores the writer to just before
                 the damage and cuts over; reports the data lost between T and the damage
  planned-switchover
                 nothing breaks: switchover.py --to standby moves the writer under a steady
                 write load; every acknowledged write must survive (RPO 0)
  round-trip     region-outage, then the region recovers: failback.py re-protects it,
                 switchover.py --to primary returns home, failback.py re-protects the standby
"""
EXIT_CODES = [
    (ExitCode.OK, "the drill passed: every verification held (RTO/RPO figures are in the report)"),
    (ExitCode.FAILED, "the drill ran and a verification failed, or the drill could not finish\n"
                      "(the --report is written either way: ok false, the error and the steps\n"
                      "recorded until then)"),
    (ExitCode.USAGE, "usage error (bad arguments, an unwritable --report); nothing was run"),
]


def build_parser() -> CommandParser:
    from caresync_dr.drill.scenarios import SCENARIOS

    parser = command_parser("drill.py", __doc__ or "", EXIT_CODES, notes=NOTES,
                            report_help="write the drill report (JSON) to PATH")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="region-outage",
                        help="what breaks (default: region-outage)")
    parser.add_argument("--promote-seconds", type=arguments.number(minimum=0, maximum=600),
                        default=8.0, metavar="S",
                        help="how long the emulated replica promotion takes, 0-600 (default 8)")
    parser.add_argument("--scale-seconds", type=arguments.number(minimum=0, maximum=600),
                        default=5.0, metavar="S",
                        help="how long new app instances take to pass target health, 0-600 "
                             "(default 5)")
    parser.add_argument("--keep", action="store_true",
                        help="leave PostgreSQL servers and temp dirs for inspection")
    return parser


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def body(args: argparse.Namespace, run: Invocation) -> int:
    from caresync_dr.drill.report import crash_report, summary
    from caresync_dr.drill.runner import DrillAbortedError, DrillOptions, run_drill
    from caresync_dr.drill.scenarios import SCENARIOS

    options = DrillOptions(scenario=SCENARIOS[args.scenario],
                           promote_seconds=args.promote_seconds,
                           scale_seconds=args.scale_seconds, keep=args.keep)
    run.changing()   # from here the drill starts servers; an interruption stops them all
    try:
        report = run_drill(options)
        print(summary(report))
    except DrillAbortedError as exc:
        report = exc.report
        if isinstance(exc.__cause__, KeyboardInterrupt):
            log.error("interrupted; everything the drill started was stopped")
        else:
            log.error("the drill could not finish: %s", exc)
        log.debug("details", exc_info=True)
    except Exception as exc:  # before the drill started (e.g. no scripts/failover.py)
        log.error("the drill could not start: %s", exc)
        log.debug("details", exc_info=True)
        report = crash_report(args.scenario, f"{type(exc).__name__}: {exc}")
    run.write_report(report)
    if args.report is not None:
        log.info("report written to %s", Path(args.report))
    return ExitCode.OK if report["ok"] else ExitCode.FAILED


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), body, argv, command="drill")
