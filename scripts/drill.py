"""Run a DR drill on an emulated AWS: deploy both stacks, break the primary, fail over, measure.

Thin front over :mod:`caresync_dr.drill`; see README.md, "DR drills".
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import logging

from caresync_dr.cli import ExitCode, setup_logging, write_json_report

log = logging.getLogger("drill")

EPILOG = """\
exit codes:
  0  the drill passed: every verification held (RTO/RPO figures are in the report)
  1  the drill ran and a verification failed, or the drill could not finish (the --report
     is written either way: ok false, the error and the steps recorded until then)
  2  usage error (bad arguments)

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
"""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from exc
    if not 0 <= value <= 600:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and 600 seconds")
    return value


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    from caresync_dr.drill.scenarios import SCENARIOS

    parser = argparse.ArgumentParser(
        prog="drill.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Rehearse a failover of the whole stack on an emulated AWS (moto on "
                    "127.0.0.1) with real PostgreSQL: no AWS account, no network.",
        epilog=EPILOG)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="region-outage",
                        help="what breaks (default: region-outage)")
    parser.add_argument("--promote-seconds", type=_seconds, default=8.0, metavar="S",
                        help="how long the emulated replica promotion takes (default 8)")
    parser.add_argument("--scale-seconds", type=_seconds, default=5.0, metavar="S",
                        help="how long new app instances take to pass target health "
                             "(default 5)")
    parser.add_argument("--report", type=Path, metavar="PATH",
                        help="write the drill report (JSON) here")
    parser.add_argument("--keep", action="store_true",
                        help="leave PostgreSQL servers and temp dirs for inspection")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    setup_logging(args.verbose)
    from caresync_dr.drill.report import crash_report, summary
    from caresync_dr.drill.runner import DrillAbortedError, DrillOptions, run_drill
    from caresync_dr.drill.scenarios import SCENARIOS

    options = DrillOptions(scenario=SCENARIOS[args.scenario],
                           promote_seconds=args.promote_seconds,
                           scale_seconds=args.scale_seconds, keep=args.keep)
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
    if args.report is not None:
        write_json_report(args.report, report)
        log.info("report written to %s", args.report)
    return ExitCode.OK if report["ok"] else ExitCode.FAILED


if __name__ == "__main__":
    sys.exit(main())
