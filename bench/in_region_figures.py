"""The in-region drills' figures over several runs (issue 14): time to writable service in the
primary region, and what each scenario measures besides.

    venv/bin/python bench/in_region_figures.py [--runs N] [--scale-seconds 5]
        [--scenario app-crash|bad-release|corruption|breach|all]

Each run is a complete ``scripts/drill.py`` in a fresh process. Prints one Markdown row per run:
the time to writable service, the command's own exit and seconds, and per scenario the seconds
served read-only by the standby (app-crash), the seconds the broken release served
(bad-release), the data lost between T and the damage (corruption), or the time to
containment and the longest gap in the app's writes (breach; its "writable service" column is
that gap).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("app-crash", "bad-release", "corruption", "breach")


def extra(report: dict[str, Any]) -> str:
    section = report.get("in_region") or {}
    if "time_to_containment_seconds" in section:
        return (f"contained {section['time_to_containment_seconds']} s after launch "
                f"(breach.py's own {section['breach_time_to_containment_seconds']} s); "
                f"{report['writes']['failed']} failed writes, "
                f"{section['degraded_read_only_seconds']} s read-only standby, "
                f"{section['no_service_seconds']} s no answer")
    if "degraded_read_only_seconds" in section:
        return (f"{section['degraded_read_only_seconds']} s read-only standby, "
                f"{section['no_service_seconds']} s no answer")
    if "broken_serving_seconds" in section:
        return f"broken release served {section['broken_serving_seconds']} s"
    lost = section.get("lost_between_t_and_damage") or {}
    return (f"RPO {lost.get('seconds')} s ({lost.get('transactions')} writes), "
            f"{section.get('rows_destroyed')} rows restored")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenario", default="all", choices=(*SCENARIOS, "all"))
    parser.add_argument("--scale-seconds", default="5")
    args = parser.parse_args(argv)
    scenarios = SCENARIOS if args.scenario == "all" else (args.scenario,)
    failed = 0
    print("| scenario | run | writable service | command | besides | wall |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        for scenario in scenarios:
            for run in range(1, args.runs + 1):
                path = Path(work) / f"{scenario}-{run}.json"
                started = time.perf_counter()
                subprocess.run(
                    [sys.executable, str(ROOT / "scripts" / "drill.py"), "--scenario",
                     scenario, "--scale-seconds", args.scale_seconds, "--report", str(path)],
                    cwd=ROOT, capture_output=True, text=True, check=False)
                wall = time.perf_counter() - started
                if not path.exists():
                    print(f"| {scenario} | {run} | no report | | | {wall:.1f} s |")
                    failed += 1
                    continue
                report = json.loads(path.read_text())
                failed += 0 if report["ok"] else 1
                section = report.get("in_region") or {}
                print(f"| {scenario} | {run} | {report['rto_seconds']} s | exit "
                      f"{section.get('exit_code')} after {section.get('command_seconds', '?')} s"
                      f" | {extra(report)} | {wall:.1f} s |" + ("" if report["ok"] else " FAILED"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
