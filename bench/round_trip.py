"""The round-trip drill (issue 15 item 2) over several runs: outage and failover, recovery,
re-protection, planned switchback, re-protection of the standby site.

    venv/bin/python bench/round_trip.py [--runs N] [--promote-seconds 1] [--scale-seconds 1]

Each run is a complete ``scripts/drill.py --scenario round-trip`` in a fresh process. Prints
one Markdown row per run: whether every check held, the failover's RTO and RPO, each
re-protection's and the switchback's duration, the switchback's write-unavailability window,
the writes acknowledged over the whole round trip and how many are missing at the end (always
0 when the run passes), and the wall time.
"""

from __future__ import annotations

import argparse
import json
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
    parser.add_argument("--promote-seconds", default="1")
    parser.add_argument("--scale-seconds", default="1")
    args = parser.parse_args(argv)
    failed = 0
    print("| run | ok | RTO | RPO | re-protect | switchback | writes unavailable | "
          "re-protect standby | writes acked | missing | wall |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        for run in range(1, args.runs + 1):
            report_path = Path(work) / f"round-trip-{run}.json"
            started = time.perf_counter()
            code = subprocess.run(
                [sys.executable, str(ROOT / "scripts" / "drill.py"), "--scenario",
                 "round-trip", "--promote-seconds", args.promote_seconds,
                 "--scale-seconds", args.scale_seconds, "--report", str(report_path)],
                cwd=ROOT, capture_output=True, text=True, check=False).returncode
            wall = time.perf_counter() - started
            if not report_path.exists():
                print(f"| {run} | drill exited {code} without a report | | | | | | | | | "
                      f"{wall:.1f} s |")
                failed += 1
                continue
            r = json.loads(report_path.read_text())
            if "rto_seconds" not in r:   # the drill could not finish: its crash report
                print(f"| {run} | NO: {r.get('error')} | | | | | | | | | {wall:.1f} s |")
                failed += 1
                continue
            trip = r.get("round_trip") or {}
            lost = [v for v in r["verifications"] if "lost" in v["name"] or "holds every"
                    in v["name"] or "is on the writer" in v["name"]]
            missing = sum(int(w.split(" missing")[0].rsplit(" ", 1)[-1])
                          for v in lost for w in [v["detail"]] if " missing" in w
                          and w.split(" missing")[0].rsplit(" ", 1)[-1].isdigit())
            failed += 0 if r["ok"] else 1

            def seconds(key: str, trip: dict[str, object] = trip) -> str:
                part = trip.get(key)
                return f"{part['seconds']} s" if isinstance(part, dict) else "-"

            switchback = trip.get("switchback") or {}
            print(f"| {run} | {'yes' if r['ok'] else 'NO'} | {r['rto_seconds']} s | "
                  f"{r['rpo_seconds']} s | {seconds('reprotect')} | {seconds('switchback')} | "
                  f"{switchback.get('write_unavailable_seconds')} s | "
                  f"{seconds('reprotect_standby')} | "
                  f"{(trip.get('writes') or {}).get('acknowledged')} | {missing} | "
                  f"{wall:.1f} s |")
    print(f"\n{args.runs - failed} of {args.runs} runs passed every check")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
