"""Security scan: Checkov over both stacks' Terraform plan exports, in every bootstrap state.

Exports the four plans (prod before dr exists, prod and dr in steady state, dr after a
failover) from the offline run the preview uses (scripts/preview.py --format terraform-plan),
runs Checkov on them offline from its own virtualenv (`make checkov-setup`), and judges every
failed check against the reviewed skip file (policy/checkov-skips.toml: check, resources,
reason). Prints the summary (passed, failed, skipped with reasons) per state and in total.

Exit codes:
  0  no finding is left unexplained, and every skip still covers a finding
  1  a finding is neither fixed nor skipped, or a skip covers nothing any more
     (fix it, or add/remove the skip with its one-sentence reason)
  2  Checkov missing or failing, malformed skip file, invalid settings, or a resource type
     the export cannot name (it would escape the scan)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import collections
import logging
import time
from typing import Any

from caresync_dr.cli import ExitCode, finish_report, setup_logging
from caresync_dr.offline.runtime import OfflineRunError
from caresync_dr.scan import skips as skip_file
from caresync_dr.scan.checkov import CheckovError, checkov_binary, export_all, run_checkov
from caresync_dr.scan.findings import Report, ReportError
from caresync_dr.settings import SettingsError, StackFileError

log = logging.getLogger(__name__)
PROJECT_DIR = Path(__file__).resolve().parents[1]
SKIP_FILE = PROJECT_DIR / "policy" / "checkov-skips.toml"
PLANS_DIR = PROJECT_DIR / "reports" / "checkov"


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="security_scan.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkov", type=Path,
                        help="the checkov executable (default: $CHECKOV_BIN, else "
                             ".venv-checkov/bin/checkov)")
    parser.add_argument("--skips", type=Path, default=SKIP_FILE,
                        help="the reviewed skip file (default: policy/checkov-skips.toml)")
    parser.add_argument("--plans-dir", type=Path, default=PLANS_DIR,
                        help="where the plan exports are written (default: reports/checkov)")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR,
                        help="directory holding Pulumi.<stack>.yaml (default: the repository)")
    parser.add_argument("--report", type=Path, help="write a JSON report to this file")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser.parse_args(argv)


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


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    setup_logging(args.verbose)
    started = time.monotonic()
    report_doc: dict[str, Any] = {"skipFile": str(args.skips)}
    try:
        skips = skip_file.load(args.skips)
        binary = checkov_binary(args.checkov)
        plans = export_all(args.plans_dir, args.project_dir)
    except (skip_file.SkipFileError, CheckovError, SettingsError, StackFileError,
            OfflineRunError) as exc:
        log.error("%s", exc)
        report_doc["error"] = str(exc)
        return finish_report(report_doc, ExitCode.USAGE, started, args.report)
    report_doc["plans"] = {p.state: {"path": str(p.path), "resources": p.resources,
                                     "unmappedProperties": list(p.unmapped_properties)}
                           for p in plans}
    unmapped = sorted({t for p in plans for t in p.unmapped_types})
    if unmapped:
        log.error("resource types the export cannot name (they would escape the scan): %s; "
                  "add them to caresync_dr/preview/terraform_types.json", ", ".join(unmapped))
        report_doc["unmappedTypes"] = unmapped
        return finish_report(report_doc, ExitCode.USAGE, started, args.report)
    try:
        report = run_checkov(binary, [p.path for p in plans])
    except (CheckovError, ReportError) as exc:
        log.error("%s", exc)
        report_doc["error"] = str(exc)
        return finish_report(report_doc, ExitCode.USAGE, started, args.report)
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
        return finish_report(report_doc, ExitCode.OK, started, args.report)
    log.error("%d unexplained finding(s), %d stale skip(s)", len(verdict.unexplained),
              len(verdict.stale))
    return finish_report(report_doc, ExitCode.FAILED, started, args.report)


if __name__ == "__main__":
    sys.exit(main())
