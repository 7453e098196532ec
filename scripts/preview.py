"""Offline preview: the resources a stack would have, with the guardrails, without credentials.

Runs the real program under the mocks (caresync_dr.offline.runtime), each stack seeing the
other's outputs as in steady state, prints every resource (type, name, key properties), runs the
policy pack's rules on them, and compares with the committed snapshot
(tests/snapshots/preview-<stack>.json). This is the preview a pull request from a fork gets.

Exit codes:
  0  done (and, with --diff, identical to the snapshot)
  1  --diff: the resources differ from the committed snapshot (the diff is printed);
     run with --update if the change is intended, and commit the snapshot
  2  unknown stack, invalid settings, or the program failed under the mocks
  3  a guardrail rejects the resources, or AWS would refuse them (docs/aws-rules.md); the
     violations are printed
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import logging
from typing import Any

from caresync_dr.cli import ExitCode, setup_logging, write_json_report
from caresync_dr.emulation.aws_rules import AwsRulesError
from caresync_dr.offline.runtime import OfflineRunError
from caresync_dr.preview import render, snapshot
from caresync_dr.preview.program import STACKS, steady_run
from caresync_dr.settings import SettingsError, StackFileError
from policy.local import evaluate

log = logging.getLogger(__name__)
PROJECT_DIR = Path(__file__).resolve().parents[1]
SNAPSHOT_DIR = PROJECT_DIR / "tests" / "snapshots"


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="preview.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", required=True, choices=STACKS,
                        help="which stack's resources to render")
    parser.add_argument("--json", action="store_true", help="print the snapshot JSON")
    parser.add_argument("--diff", action="store_true",
                        help="compare with the committed snapshot; exit 1 when it differs")
    parser.add_argument("--update", action="store_true",
                        help="write the snapshot (after reviewing the change)")
    parser.add_argument("--no-policy", action="store_true", help="skip the guardrails")
    parser.add_argument("--snapshot-dir", type=Path, default=SNAPSHOT_DIR,
                        help="directory of the committed snapshots (default: tests/snapshots)")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR,
                        help="directory holding Pulumi.<stack>.yaml (default: the repository)")
    parser.add_argument("--report", type=Path, help="write a JSON report to this file")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    setup_logging(args.verbose)
    log.info("running stack %s under the offline mocks", args.stack)
    try:
        run = steady_run(args.stack, args.project_dir)
    except (SettingsError, StackFileError, OfflineRunError) as exc:
        log.error("%s", exc)
        return ExitCode.USAGE
    except AwsRulesError as exc:
        for refused in exc.violations:
            print(f"aws rule: {refused}")
        log.error("AWS would refuse %d resource(s) of stack %s", len(exc.violations), exc.stack)
        if args.report:
            write_json_report(args.report, {"stack": args.stack, "awsRules": [
                str(v) for v in exc.violations]})
        return ExitCode.REFUSED
    current = snapshot.build(args.stack, run.resources)
    print(snapshot.dumps(current) if args.json else render.table(current))

    report: dict[str, Any] = {"stack": args.stack, "resources": len(current["resources"])}
    code = ExitCode.OK
    if not args.no_policy:
        violations = evaluate(args.stack, run.resources)
        report["violations"] = [str(v) for v in violations]
        mandatory = [v for v in violations if not v.advisory]
        for violation in violations:
            print(f"guardrail: {violation}", file=sys.stderr if args.json else sys.stdout)
        if mandatory:
            log.error("%d guardrail violation(s)", len(mandatory))
            code = ExitCode.REFUSED
        else:
            log.info("every guardrail passes")

    path = snapshot.path_for(args.stack, args.snapshot_dir)
    if args.update:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(snapshot.dumps(current))
        log.info("wrote %s", path)
    elif args.diff:
        if not path.exists():
            log.error("no snapshot at %s: run with --update and commit it", path)
            return ExitCode.USAGE
        changes = snapshot.diff(snapshot.load(path), current)
        report["diff"] = changes
        for line in changes:
            print(line, file=sys.stderr if args.json else sys.stdout)
        if changes:
            log.error("%d change(s) against %s: if intended, run `python scripts/preview.py "
                      "--stack %s --update` and commit the snapshot", len(changes), path,
                      args.stack)
            code = code if code != ExitCode.OK else ExitCode.FAILED
        else:
            log.info("identical to %s", path)
    if args.report is not None:
        write_json_report(args.report, report)
    return code


if __name__ == "__main__":
    sys.exit(main())
