"""Rehearse a failover of the whole stack on an emulated AWS (moto on 127.0.0.1) with real
PostgreSQL: no AWS account, no network. See docs/drills.md and docs/runbooks/drills.md."""

from __future__ import annotations

import argparse
import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from caresync_dr import arguments
from caresync_dr.cli import CommandParser, ExitCode, Invocation, command_parser, run_main
from caresync_dr.cli.errors import UsageError
from caresync_dr.cli.signals import signals_held

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

reports:
  every run writes DIR/<scenario>.json and DIR/<scenario>.html (the timeline chart) and prints
  both paths; DIR is --report-dir, else $CARESYNC_DRILL_REPORTS, else drill-reports/ in the
  project (gitignored; kept after the drill's cleanup)
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
    parser.add_argument("--report-dir", type=Path, metavar="DIR",
                        help="where the JSON and HTML reports go (default: "
                             "$CARESYNC_DRILL_REPORTS, else drill-reports/ in the project)")
    parser.add_argument("--keep", action="store_true",
                        help="leave PostgreSQL servers and temp dirs for inspection")
    parser.add_argument("--sweep", action="store_true",
                        help="only stop and remove what killed drills left in the temp dir "
                             "(their PostgreSQL servers and directories; a live drill's are "
                             "never touched; every drill does this first) and exit")
    return parser


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def usable_reports_dir(args: argparse.Namespace) -> Path:
    """The reports directory, created and proven writable before the drill starts."""
    from caresync_dr.drill.report import reports_dir
    from caresync_dr.drill.runner import REPO_ROOT

    directory: Path = args.report_dir or reports_dir(REPO_ROOT)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe-"):
            pass
    except OSError as exc:
        raise UsageError(f"reports directory {directory} is not writable: "
                         f"{exc.strerror or exc}") from exc
    return directory


@contextlib.contextmanager
def quiet_details(verbose: bool) -> Iterator[None]:
    """One line per phase: the drill's inner workings (emulator, deploy, failover.py's own
    output) are shown only with -v. The loggers' levels are restored afterwards."""
    loggers = [logging.getLogger("caresync_dr"), logging.getLogger("caresync_dr.drill.phases")]
    before = [logger.level for logger in loggers]
    if not verbose:
        loggers[0].setLevel(logging.WARNING)
        loggers[1].setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger, level in zip(loggers, before, strict=True):
            logger.setLevel(level)


def write_reports(report: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    """The JSON and HTML reports at their fixed paths (replaced whole, never half-written)."""
    from caresync_dr.cli.reporting import write_json_report, write_text_atomic
    from caresync_dr.drill.html_report import render
    from caresync_dr.drill.report import report_paths

    json_path, html_path = report_paths(directory, str(report["scenario"]))
    write_json_report(json_path, report)
    write_text_atomic(html_path, render(report))
    return json_path, html_path


def body(args: argparse.Namespace, run: Invocation) -> int:
    from caresync_dr.drill.report import crash_report
    from caresync_dr.drill.runner import DrillAbortedError, DrillOptions, run_drill
    from caresync_dr.drill.scenarios import SCENARIOS
    from caresync_dr.pg.orphans import sweep

    if args.sweep:
        run.changing()
        swept = sweep()
        run.data["swept"] = swept
        if not swept:   # each sentence was logged by the sweep
            log.info("nothing left behind by a killed drill")
        return ExitCode.OK
    options = DrillOptions(scenario=SCENARIOS[args.scenario],
                           promote_seconds=args.promote_seconds,
                           scale_seconds=args.scale_seconds, keep=args.keep)
    directory = usable_reports_dir(args)
    run.changing()   # from here the drill starts servers; an interruption stops them all
    report = crash_report(args.scenario, "interrupted")
    try:
        try:
            with quiet_details(args.verbose):
                report = run_drill(options)
        except DrillAbortedError as exc:
            report = exc.report
            if isinstance(exc.__cause__, KeyboardInterrupt):
                report = interrupted(report)
                log.error("interrupted; everything the drill started was stopped")
            else:
                log.error("the drill could not finish: %s", exc)
            log.debug("details", exc_info=True)
        except Exception as exc:  # before the drill started (e.g. no scripts/failover.py)
            log.error("the drill could not start: %s", exc)
            log.debug("details", exc_info=True)
            report = crash_report(args.scenario, f"{type(exc).__name__}: {exc}")
        return publish(report, run, directory, args.report)
    except KeyboardInterrupt:
        # Between the drill's end and the last report written, a passing report may already
        # be on disk while the run ends interrupted (exit 1): every report is rewritten to
        # say so, with Ctrl-C held off for those few milliseconds.
        with signals_held():
            write_quietly(interrupted(report), run, directory)
        raise


def interrupted(report: dict[str, Any]) -> dict[str, Any]:
    """The report of a drill interrupted at any point: ok false, ``interrupted`` true, and
    ``error`` saying when (a drill that ran to its end keeps its verifications)."""
    error = report.get("error")
    if not error:
        error = ("interrupted while its reports were written (the drill itself had ended "
                 f"{'passing' if report.get('ok') else 'failing'}: see verifications)")
    elif "interrupted" not in str(error):
        error = f"{error}; then interrupted while its reports were written"
    return {**report, "ok": False, "interrupted": True, "error": error}


def publish(report: dict[str, Any], run: Invocation, directory: Path,
            report_path: Path | None) -> int:
    """Write every report, print the summary; the exit code the report's ``ok`` gives."""
    from caresync_dr.drill.report import summary

    run.write_report(report)
    try:
        paths: tuple[Path, Path] | None = write_reports(report, directory)
    except OSError as exc:
        log.error("could not write the reports to %s: %s", directory, exc)
        paths = None
    print(summary(report, paths))
    if report_path is not None:
        log.info("report written to %s", Path(report_path))
    return ExitCode.OK if report["ok"] else ExitCode.FAILED


def write_quietly(report: dict[str, Any], run: Invocation, directory: Path) -> None:
    """Every report rewritten; a failure is logged, never raised (the run is already ending)."""
    try:
        run.write_report(report)
    except OSError as exc:
        log.error("could not write the report: %s", exc)
    try:
        write_reports(report, directory)
    except OSError as exc:
        log.error("could not write the reports to %s: %s", directory, exc)


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), body, argv, command="drill")
