"""Print the RTO budget and RPO exposure of a stack's configuration; fail if it cannot meet them.

Reads ``Pulumi.<stack>.yaml`` only (no Pulumi CLI, no AWS).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from caresync_dr.cli import (
    CommandParser,
    ExitCode,
    Invocation,
    UsageError,
    command_parser,
    run_main,
)
from caresync_dr.objectives import compute, render_table
from caresync_dr.settings import SettingsError, StackFileError, settings_from_stack_file

log = logging.getLogger(__name__)
PROJECT_DIR = Path(__file__).resolve().parents[2]
EXIT_CODES = [
    (ExitCode.OK, "the configuration can meet rtoMinutes and rpoMinutes"),
    (ExitCode.USAGE, "unknown stack, invalid settings or bad arguments"),
    (ExitCode.NOT_READY, "the configuration cannot meet rtoMinutes or rpoMinutes (the problems\n"
                         "are printed)"),
]


def build_parser() -> CommandParser:
    parser = command_parser("objectives.py", __doc__ or "", EXIT_CODES,
                            report_help="also write the JSON report to PATH")
    parser.add_argument("--stack", required=True, help="stack name, e.g. prod or dr")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR,
                        help="directory holding Pulumi.<stack>.yaml (default: the repository)")
    return parser


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def body(args: argparse.Namespace, run: Invocation) -> int:
    try:
        settings = settings_from_stack_file(args.stack, args.project_dir)
    except (SettingsError, StackFileError) as exc:
        raise UsageError(str(exc)) from exc
    objectives = compute(settings)
    report = objectives.to_json()
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(render_table(objectives))
    run.write_report(report)
    if not objectives.feasible:
        for problem in objectives.problems():
            log.error("%s", problem)
        return ExitCode.NOT_READY
    return ExitCode.OK


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), body, argv, command="objectives")
