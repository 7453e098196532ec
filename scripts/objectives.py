#!/usr/bin/env python3
"""Print the RTO budget and RPO exposure of a stack's configuration; fail if it cannot meet them.

Reads ``Pulumi.<stack>.yaml`` only (no Pulumi CLI, no AWS). Exit codes:
  0  the configuration can meet rtoMinutes and rpoMinutes
  2  unknown stack or invalid settings
  5  the configuration cannot meet rtoMinutes or rpoMinutes (the problems are printed)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# Re-runs this script under ./venv/bin/python when this Python lacks the dependencies.
import caresync_dr.venv_guard  # noqa: F401

# isort: split

import argparse
import json
import logging

from caresync_dr.cli import ExitCode, setup_logging, write_json_report
from caresync_dr.objectives import compute, render_table
from caresync_dr.settings import SettingsError, StackFileError, settings_from_stack_file

log = logging.getLogger(__name__)
PROJECT_DIR = Path(__file__).resolve().parents[1]


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="objectives.py", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", required=True, help="stack name, e.g. prod or dr")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--report", type=Path, help="also write the JSON report to this file")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR,
                        help="directory holding Pulumi.<stack>.yaml (default: the repository)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    setup_logging(args.verbose)
    try:
        settings = settings_from_stack_file(args.stack, args.project_dir)
    except (SettingsError, StackFileError) as exc:
        log.error("%s", exc)
        return ExitCode.USAGE
    objectives = compute(settings)
    report = objectives.to_json()
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print(render_table(objectives))
    if args.report is not None:
        write_json_report(args.report, report)
    if not objectives.feasible:
        for problem in objectives.problems():
            log.error("%s", problem)
        return ExitCode.NOT_READY
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
