"""How much time does scripts/failover.py add to the promotion it waits for?

Runs the real script as a subprocess (as the drill does) against a moto server with an emulated
promotion of ``--promote-seconds`` and instant scale-up, several times, and prints per run:
wall time from process start to the first healthy verification ("serving"), and the overhead
= serving - promotion. Usage::

    venv/bin/python bench/failover_overhead.py [--promote-seconds 3] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests
from moto.rds.models import RDSBackend
from moto.server import ThreadedMotoServer

from caresync_dr.pg.cluster import free_port
from tests.failover import world as w

ROOT = Path(__file__).resolve().parents[1]


def one_run(promote_seconds: float, workdir: Path) -> tuple[float, float]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    health = w.start_health_server(w.standby_health)
    try:
        w.seed()
        finished: list[float] = []
        patched = w.slow_promotion(promote_seconds, finished)
        RDSBackend.promote_read_replica = patched  # type: ignore[method-assign]
        report_path = workdir / f"run-{port}.json"
        started = time.time()
        done = w.run_script(ROOT, endpoint,
                            f"http://127.0.0.1:{health.server_address[1]}/api/health",
                            report_path)
        if done.returncode != 0:
            raise SystemExit(f"failover exited {done.returncode}:\n{done.stderr}")
        report = json.loads(report_path.read_text())
        serving = datetime.fromisoformat(report["facts"]["serving_at"]).timestamp()
        return serving - started, report["rtoSeconds"]
    finally:
        health.shutdown()
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--promote-seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    print("run  process->serving  tool RTO  overhead vs promotion  ratio")
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            wall, rto = one_run(args.promote_seconds, Path(tmp))
            print(f"{i + 1:>3}  {wall:>14.2f}s  {rto:>7.2f}s  {wall - args.promote_seconds:>19.2f}s"
                  f"  {wall / args.promote_seconds:>5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
