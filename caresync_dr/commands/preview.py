"""Offline preview: the resources a stack would have, with the guardrails, without credentials.

Runs the real program under the mocks (caresync_dr.offline.runtime), each stack seeing the
other's outputs as in steady state, prints every resource (type, name, key properties), runs the
policy pack's rules on them, and compares with the committed snapshot
(tests/snapshots/preview-<stack>.json). This is the preview a pull request from a fork gets.

--format terraform-plan writes the same run as a Terraform plan JSON (terraform show -json of
a plan creating every resource; caresync_dr/preview/terraform_plan.py), for scanners that read
Terraform plans (scripts/security_scan.py runs Checkov on it). --state picks the bootstrap
state: prod bootstrap (before dr exists), steady (default), dr promoted (after a failover).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from caresync_dr.cli import (
    CommandParser,
    ExitCode,
    Invocation,
    UsageError,
    command_parser,
    run_main,
    writable_file,
    write_text_atomic,
)
from caresync_dr.emulation.aws_rules import AwsRulesError
from caresync_dr.offline.runtime import OfflineRunError
from caresync_dr.preview import render, snapshot, terraform_plan
from caresync_dr.preview.program import PROMOTED_OVERRIDES, STACKS, STATES, state_run
from caresync_dr.settings import (
    Settings,
    SettingsError,
    StackFileError,
    load_settings,
    read_stack_file,
)
from policy.local import evaluate

log = logging.getLogger(__name__)
PROJECT_DIR = Path(__file__).resolve().parents[2]
SNAPSHOT_DIR = PROJECT_DIR / "tests" / "snapshots"
EXIT_CODES = [
    (ExitCode.OK, "done (and, with --diff, identical to the snapshot)"),
    (ExitCode.FAILED, "--diff: the resources differ from the committed snapshot (the diff is\n"
                      "printed); run with --update if the change is intended, and commit the\n"
                      "snapshot"),
    (ExitCode.USAGE, "unknown stack or state, invalid settings, bad arguments, or the program\n"
                     "failed under the mocks"),
    (ExitCode.REFUSED, "a guardrail rejects the resources, or AWS would refuse them\n"
                       "(docs/aws-rules.md); the violations are printed"),
]

# The first `pulumi up -s prod` runs with policy/bootstrap-config.json (docs/deploying.md).
BOOTSTRAP_ADVISORY = frozenset(
    name for name, level in json.loads(
        (PROJECT_DIR / "policy" / "bootstrap-config.json").read_text()).items()
    if level == "advisory")


def _settings(args: argparse.Namespace) -> Settings | None:
    """The settings a run in another state was made with (the rules read the stack file)."""
    if args.state != "promoted":
        return None
    values, region = read_stack_file(args.stack, args.project_dir)
    return load_settings(args.stack, {**values, **PROMOTED_OVERRIDES}, region)


def build_parser() -> CommandParser:
    parser = command_parser("preview.py", __doc__ or "", EXIT_CODES)
    parser.add_argument("--stack", required=True, choices=STACKS,
                        help="which stack's resources to render")
    parser.add_argument("--state", default="steady",
                        choices=sorted({s for states in STATES.values() for s in states}),
                        help="bootstrap state: steady (default), bootstrap (prod before dr "
                             "exists), promoted (dr after a failover)")
    parser.add_argument("--format", choices=("table", "json", "terraform-plan"), default=None,
                        help="table (default), json (the snapshot), or terraform-plan")
    parser.add_argument("--json", action="store_true", help="same as --format json")
    parser.add_argument("--output", type=Path,
                        help="write the json / terraform-plan document here instead of stdout")
    parser.add_argument("--diff", action="store_true",
                        help="compare with the committed snapshot; exit 1 when it differs")
    parser.add_argument("--update", action="store_true",
                        help="write the snapshot (after reviewing the change)")
    parser.add_argument("--no-policy", action="store_true", help="skip the guardrails")
    parser.add_argument("--snapshot-dir", type=Path, default=SNAPSHOT_DIR,
                        help="directory of the committed snapshots (default: tests/snapshots)")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR,
                        help="directory holding Pulumi.<stack>.yaml (default: the repository)")
    return parser


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def body(args: argparse.Namespace, invocation: Invocation) -> int:
    output_format = args.format or ("json" if args.json else "table")
    if args.state != "steady" and (args.diff or args.update):
        raise UsageError(f"--diff and --update compare the steady state's snapshot; drop "
                         f"--state {args.state}")
    if args.output is not None:
        if output_format == "table":   # it was silently ignored: the table went to stdout
            raise UsageError("--output writes the json or terraform-plan document: add --json "
                             "or --format terraform-plan (the table goes to stdout)")
        writable_file("--output", args.output)
    log.info("running stack %s (%s) under the offline mocks", args.stack, args.state)
    try:
        run = state_run(args.stack, args.state, args.project_dir)
    except (SettingsError, StackFileError, OfflineRunError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    except AwsRulesError as exc:
        for refused in exc.violations:
            print(f"aws rule: {refused}")
        log.error("AWS would refuse %d resource(s) of stack %s", len(exc.violations), exc.stack)
        invocation.write_report({"stack": args.stack, "awsRules": [str(v) for v in exc.violations]})
        return ExitCode.REFUSED
    current = snapshot.build(args.stack, run.resources)
    report: dict[str, Any] = {"stack": args.stack, "state": args.state,
                              "resources": len(current["resources"])}
    machine = output_format != "table"
    if output_format == "terraform-plan":
        exported = terraform_plan.export(run.resources, str(run.outputs.get("region", "")))
        for token in exported.unmapped_types:
            log.warning("left out of the plan, no Terraform type known: %s", token)
        for name in exported.unmapped_properties:
            log.warning("property under a guessed Terraform name: %s", name)
        report["unmappedTypes"] = list(exported.unmapped_types)
        report["unmappedProperties"] = list(exported.unmapped_properties)
        document = json.dumps(exported.plan, indent=2, sort_keys=True) + "\n"
    else:
        document = snapshot.dumps(current) if machine else render.table(current)
    if args.output is not None and machine:
        write_text_atomic(args.output, document)
        log.info("wrote %s", args.output)
    else:
        print(document, end="" if machine else "\n")

    code = ExitCode.OK
    if not args.no_policy:
        violations = evaluate(args.stack, run.resources, settings=_settings(args))
        if args.state == "bootstrap":  # as the pack runs with policy/bootstrap-config.json
            violations = [replace(v, advisory=True) if v.policy in BOOTSTRAP_ADVISORY else v
                          for v in violations]
        report["violations"] = [str(v) for v in violations]
        mandatory = [v for v in violations if not v.advisory]
        for violation in violations:
            print(f"guardrail: {violation}", file=sys.stderr if machine else sys.stdout)
        if mandatory:
            log.error("%d guardrail violation(s)", len(mandatory))
            code = ExitCode.REFUSED
        else:
            log.info("every mandatory guardrail passes")

    path = snapshot.path_for(args.stack, args.snapshot_dir)
    if args.update:
        write_text_atomic(path, snapshot.dumps(current))
        log.info("wrote %s", path)
    elif args.diff:
        if not path.exists():
            raise UsageError(f"no snapshot at {path}: run with --update and commit it")
        changes = snapshot.diff(snapshot.load(path), current)
        report["diff"] = changes
        for line in changes:
            print(line, file=sys.stderr if machine else sys.stdout)
        if changes:
            log.error("%d change(s) against %s: if intended, run `python scripts/preview.py "
                      "--stack %s --update` and commit the snapshot", len(changes), path,
                      args.stack)
            code = code if code != ExitCode.OK else ExitCode.FAILED
        else:
            log.info("identical to %s", path)
    invocation.write_report(report)
    return code


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), body, argv, command="preview")
