"""The drill's headline figures over several runs: RTO, critical path, ratio, RPO, wall time,
and in region-outage the restore test's time in the standby region.

    venv/bin/python bench/drill_figures.py [--runs N] [--scenario S]
                                           [--promote-seconds 8] [--scale-seconds 5]

Each run is a complete ``scripts/drill.py`` in a fresh process (cold imports included in the
wall time, as ``make drill`` has them). Prints one Markdown row per run, as in docs/drills.md's
"DR drills", with the 1-minute load average when the run ended (the machine is shared: a ratio
means little without it), and the median ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scenario", default="region-outage")
    parser.add_argument("--promote-seconds", default="8")
    parser.add_argument("--scale-seconds", default="5")
    args = parser.parse_args(argv)
    ratios = []
    failed = 0
    with tempfile.TemporaryDirectory() as work:
        for run in range(1, args.runs + 1):
            report_path = Path(work) / f"drill-{run}.json"
            started = time.perf_counter()
            code = subprocess.run(
                [sys.executable, str(ROOT / "scripts" / "drill.py"), "--scenario", args.scenario,
                 "--promote-seconds", args.promote_seconds, "--scale-seconds",
                 args.scale_seconds, "--report", str(report_path), "--report-dir", work],
                cwd=ROOT, capture_output=True, text=True, check=False).returncode
            wall = time.perf_counter() - started
            if not report_path.exists():
                print(f"| {run} | drill exited {code} without a report | | | | {wall:.1f} s |")
                failed += 1
                continue
            r = json.loads(report_path.read_text())
            failed += 0 if r["ok"] else 1
            if r["rto_to_critical_path_ratio"] is not None:
                ratios.append(r["rto_to_critical_path_ratio"])
            restore = (((r.get("standby_region") or {}).get("backup") or {})
                       .get("restore_test") or {}).get("seconds")
            # The public URL's first writable answer (the drill's probe) over the same critical
            # path: comparable with runs from before RTO became failover.py's verified figure.
            probe = r.get("public_url_writable_seconds")
            probe_ratio = (None if probe is None or not r["critical_path_seconds"]
                           else round(probe / r["critical_path_seconds"], 3))
            print(f"| {run} | {r['rto_seconds']} s | {r['critical_path_seconds']} s | "
                  f"{r['rto_to_critical_path_ratio']} (probe {probe_ratio}) | {r['rpo_seconds']} s "
                  f"({r['rpo_transactions']} writes) | {wall:.1f} s |"
                  + ("" if restore is None else f" {restore} s |")
                  + f" load {os.getloadavg()[0]:.1f} |"
                  + ("" if r["ok"] else " FAILED: " + "; ".join(
                      f"{v['name']}: {v['detail']}" for v in r.get("verifications", [])
                      if not v.get("ok"))))
    if ratios:
        print(f"median ratio {statistics.median(ratios):.3f} over {len(ratios)} runs")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
