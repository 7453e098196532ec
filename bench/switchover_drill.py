"""The planned-switchover drill over several runs: acknowledged writes lost (must be 0 in every
run), writes refused during the fence, and the write-unavailability window as the client saw it
and as switchover.py reported it.

    venv/bin/python bench/switchover_drill.py [--runs N] [--promote-seconds 8]
                                              [--scale-seconds 5] [--json FILE]

Each run is a complete ``scripts/drill.py --scenario planned-switchover`` in a fresh process:
both stacks deployed into the emulator, a real PostgreSQL 15 primary and streaming standby, a
steady write load (one write every 25 ms), the real ``scripts/switchover.py``. The window
contains the emulated RDS promotion (``--promote-seconds``), so it is reported beside it.
Exit 0 only when every run passed and lost nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def one_run(work: Path, run: int, promote: str, scale: str) -> tuple[dict[str, Any] | None,
                                                                     float, int]:
    report_path = work / f"switchover-drill-{run}.json"
    started = time.perf_counter()
    code = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "drill.py"), "--scenario", "planned-switchover",
         "--promote-seconds", promote, "--scale-seconds", scale, "--report", str(report_path)],
        cwd=ROOT, capture_output=True, text=True, check=False).returncode
    wall = time.perf_counter() - started
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return report, wall, code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--promote-seconds", default="8")
    parser.add_argument("--scale-seconds", default="5")
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    print("| run | acknowledged (old + new writer) | refused during fence | acknowledged "
          "lost | window, client | window, switchover.py | fence -> new writer open | wall |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as work:
        for run in range(1, args.runs + 1):
            report, wall, code = one_run(Path(work), run, args.promote_seconds,
                                         args.scale_seconds)
            if report is None or "writes" not in report:
                error = (report or {}).get("error", f"drill exited {code} without a report")
                print(f"| {run} | {error} | | | | | | {wall:.1f} s |")
                rows.append({"run": run, "ok": False, "error": error})
                continue
            w, sw = report["writes"], report["switchover"]
            row = {"run": run, "ok": report["ok"], "acknowledged": w["acknowledged"],
                   "old": w["acknowledged_by_old_writer"], "new": w["acknowledged_by_new_writer"],
                   "refused": w["refused"], "lost": w["acknowledged_lost"],
                   "window": sw["write_unavailable_seconds"],
                   "command_window": sw["command_write_unavailable_seconds"],
                   "opened": sw["fence_to_promoted_seconds"], "wall": round(wall, 1)}
            rows.append(row)
            print(f"| {run} | {row['acknowledged']} ({row['old']} + {row['new']}) | "
                  f"{row['refused']} | {row['lost']} | {row['window']} s | "
                  f"{row['command_window']} s | {row['opened']} s | {row['wall']} s |"
                  + ("" if report["ok"] else " FAILED"))
    done = [r for r in rows if "lost" in r]
    lost = sum(r["lost"] for r in done)
    windows = [r["window"] for r in done if r["window"] is not None]
    print(f"\n{len(done)} of {args.runs} runs measured (promotion emulated at "
          f"{args.promote_seconds} s); acknowledged writes lost in total: {lost}; "
          f"writes acknowledged in total: {sum(r['acknowledged'] for r in done)}; "
          "window (client) median "
          f"{statistics.median(windows) if windows else None} s, max "
          f"{max(windows) if windows else None} s")
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    ok = len(done) == args.runs and lost == 0 and all(r["ok"] for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
