"""Security scan: Checkov over both stacks' Terraform plan exports, in every bootstrap state.

Exports the four plans (prod before dr exists, prod and dr in steady state, dr after a
failover) from the offline run the preview uses (scripts/preview.py --format terraform-plan),
runs Checkov on them offline from its own virtualenv (`make checkov-setup`), and judges every
failed check against the reviewed skip file (policy/checkov-skips.toml: check, resources,
reason). Prints the summary (passed, failed, skipped with reasons) per state and in total.
"""

from __future__ import annotations

import argparse
import collections
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
from caresync_dr.offline.runtime import OfflineRunError
from caresync_dr.scan import skips as skip_file
from caresync_dr.scan.checkov import CheckovError, checkov_binary, export_all, run_checkov
from caresync_dr.scan.findings import Report, ReportError
from caresync_dr.settings import SettingsError, StackFileError

log = logging.getLogger(__name__)
PROJECT_DIR = Path(__file__).resolve().parents[2]
SKIP_FILE = PROJECT_DIR / "policy" / "checkov-skips.toml"
PLANS_DIR = PROJECT_DIR / "reports" / "checkov"
EXIT_CODES = [
    (ExitCode.OK, "no finding is left unexplained, and every skip still covers a finding"),
    (ExitCode.FAILED, "a finding is neither fixed nor skipped, or a skip covers nothing any more\n"
                      "(fix it, or add/remove the skip with its one-sentence reason)"),
    (ExitCode.USAGE, "Checkov missing or failing, malformed skip file, invalid settings, bad\n"
                     "arguments, or a resource type the export cannot name (it would escape\n"
                     "the scan)"),
]


def build_parser() -> CommandParser:
    parser = command_parser("security_scan.py", __doc__ or "", EXIT_CODES)
    parser.add_argument("--checkov", type=Path,
                        help="the checkov executable (default: $CHECKOV_BIN, else "
                             ".venv-checkov/bin/checkov)")
    parser.add_argument("--skips", type=Path, default=SKIP_FILE,
                        help="the reviewed skip file (default: policy/checkov-skips.toml)")
    parser.add_argument("--plans-dir", type=Path, default=PLANS_DIR,
                        help="where the plan exports are written (default: reports/checkov)")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR,
                        help="directory holding Pulumi.<stack>.yaml (default: the repository)")
    return parser


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def summary(report: Report, verdict: skip_file.Verdict) -> dict[str, dict[str, int]]:
    """state -> {passed, failed, skipped}; "failed" counts only the unexplained findings."""
    counts: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for result in report.results:
        if result.passed:
            counts[result.state]["passed"] += 1
    for result, _ in verdict.skipped:
        counts[result.state]["skipped"] += 1
    for result in verdict.unexplained:
        counts[result.state]["failed"] += 1
    table = {state: {k: c[k] for k in ("passed", "failed", "skipped")}
             for state, c in sorted(counts.items())}
    table["total"] = {k: sum(row[k] for row in table.values())
                      for k in ("passed", "failed", "skipped")}
    return table


def print_summary(report: Report, verdict: skip_file.Verdict,
                  table: dict[str, dict[str, int]]) -> None:
    print(f"Checkov {report.version} over the Terraform plan export "
          "(scripts/preview.py --format terraform-plan)")
    print(f"  {'state':<16} {'passed':>7} {'failed':>7} {'skipped':>8}")
    for state, row in table.items():
        print(f"  {state:<16} {row['passed']:>7} {row['failed']:>7} {row['skipped']:>8}")
    by_skip: dict[skip_file.Skip, set[str]] = collections.defaultdict(set)
    for result, skip in verdict.skipped:
        by_skip[skip].add(result.state)
    if by_skip:
        print("skipped after review (policy/checkov-skips.toml):")
        for skip, states in by_skip.items():
            print(f"  {skip.check} on {', '.join(skip.resources)} ({len(states)} state(s)): "
                  f"{skip.reason}")
    for result in verdict.unexplained:
        print(f"FAILED {result.check_id} {result.resource} [{result.state}]: "
              f"{result.check_name}")
    for check, resource in verdict.stale:
        print(f"STALE SKIP {check} on {resource}: it fails in no state any more; remove it "
              "from the skip file")


def body(args: argparse.Namespace, run: Invocation) -> int:
    report_doc = run.data
    report_doc["skipFile"] = str(args.skips)
    try:
        skips = skip_file.load(args.skips)
        binary = checkov_binary(args.checkov)
        plans = export_all(args.plans_dir, args.project_dir)
    except (skip_file.SkipFileError, CheckovError, SettingsError, StackFileError,
            OfflineRunError) as exc:
        report_doc["error"] = str(exc)
        raise UsageError(str(exc)) from exc
    report_doc["plans"] = {p.state: {"path": str(p.path), "resources": p.resources,
                                     "unmappedProperties": list(p.unmapped_properties)}
                           for p in plans}
    unmapped = sorted({t for p in plans for t in p.unmapped_types})
    if unmapped:
        report_doc["unmappedTypes"] = unmapped
        raise UsageError(f"resource types the export cannot name (they would escape the scan): "
                         f"{', '.join(unmapped)}; add them to "
                         "caresync_dr/preview/terraform_types.json")
    try:
        report = run_checkov(binary, [p.path for p in plans])
    except (CheckovError, ReportError) as exc:
        report_doc["error"] = str(exc)
        raise UsageError(str(exc)) from exc
    verdict = skip_file.judge(report.results, skips)
    table = summary(report, verdict)
    print_summary(report, verdict, table)
    report_doc.update(
        checkovVersion=report.version, summary=table,
        skipped=[{"check": r.check_id, "resource": r.resource, "state": r.state,
                  "reason": s.reason} for r, s in verdict.skipped],
        unexplained=[{"check": r.check_id, "resource": r.resource, "state": r.state,
                      "name": r.check_name} for r in verdict.unexplained],
        staleSkips=[{"check": c, "resource": r} for c, r in verdict.stale])
    if verdict.ok:
        log.info("no unexplained finding: %d passed, %d skipped after review",
                 table["total"]["passed"], table["total"]["skipped"])
        return ExitCode.OK
    log.error("%d unexplained finding(s), %d stale skip(s)", len(verdict.unexplained),
              len(verdict.stale))
    return ExitCode.FAILED


def main(argv: list[str] | None = None) -> int:
    return run_main(build_parser(), body, argv, command="security_scan")
