"""How soon does scripts/failover.py ask RDS for the promotion, and how much CPU does it spend
before it does?

Runs the real script as a subprocess, as the drill does (``--yes``, ``--outage-started``, 0.1 s
polls), against a moto server seeded like the failover tests (both regions answer, replication
reported healthy; the promotion takes 1 s), and records inside the child, for every AWS
operation the first time it is sent: the wall time since the parent started the process and
the process's CPU seconds (``time.process_time``, every thread) at that moment. The headline is
the promotion request (``PromoteReadReplica``): CPU-seconds before it are what a loaded machine
stretches, so they compare trees better than wall time on a shared machine.

    venv/bin/python bench/failover_startup.py [--runs 5] [--tree DIR ...] [--calls]

``--tree`` (repeatable) runs ``DIR/scripts/failover.py`` with ``DIR``'s package (the script puts
its own tree first on ``sys.path``), e.g. an export of main (``git archive main | tar -x -C
/tmp/main-tree``) beside this one; the trees alternate run by run, so load drifts hit both.
Prints the 1-minute load average with each run.
"""

from __future__ import annotations

import argparse
import compileall
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests
from moto.rds.models import RDSBackend
from moto.server import ThreadedMotoServer

from caresync_dr.aws import warm_model_cache
from caresync_dr.emulation.warmup import prime_moto
from caresync_dr.failover.context import CLIENT_SERVICES, client_operations
from caresync_dr.pg.cluster import free_port
from tests.failover import world as w

ROOT = Path(__file__).resolve().parents[1]

# Runs inside the child before the script: records each operation's first send (wall, CPU).
PROBE = """
import json, os, runpy, sys, time
import botocore.client
_out, _t0 = os.environ["STARTUP_PROBE_OUT"], float(os.environ["STARTUP_PROBE_T0"])
_profile_out = os.environ.get("STARTUP_PROFILE_OUT")
_profiles = []
if _profile_out:   # cProfile every thread until the promotion request
    import cProfile, io, pstats, threading
    _main = cProfile.Profile()
    _profiles.append(_main)
    _run = threading.Thread.run
    def _profiled_run(self):
        p = cProfile.Profile()
        _profiles.append(p)
        p.enable()
        try:
            _run(self)
        finally:
            p.disable()
    threading.Thread.run = _profiled_run

def _dump_profiles():
    merged = pstats.Stats(*_profiles)
    buf = io.StringIO()
    merged.stream = buf
    merged.sort_stats("cumulative").print_stats(70)
    merged.sort_stats("tottime").print_stats(30)
    with open(_profile_out, "w") as f:
        f.write(f"CPU at the promotion request: {time.process_time():.3f} s\\n" + buf.getvalue())
    os._exit(0)   # the profilers are stopped: the rest of the run is not measured

def _thread_cpu():
    # CPU seconds per live thread (Linux /proc, 10 ms ticks), by thread name.
    import threading
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick, found = os.sysconf("SC_CLK_TCK"), {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(tid), f"tid {tid} (gone from threading)")
        found[name] = round((int(fields[11]) + int(fields[12])) / tick, 3)
    return found

_seen = []
_send = botocore.client.BaseClient._make_api_call
def _probe(self, operation_name, api_params):
    _seen.append((operation_name, self.meta.region_name, time.time() - _t0,
                  time.process_time()))
    if operation_name == "PromoteReadReplica" and not os.path.exists(_out):
        with open(_out, "w") as f:
            json.dump({"calls": _seen, "threads": _thread_cpu()}, f)
        if _profile_out:
            _dump_profiles()
    return _send(self, operation_name, api_params)
botocore.client.BaseClient._make_api_call = _probe
sys.argv = sys.argv[1:]
if _profile_out:
    _main.enable()
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    if not os.path.exists(_out):
        with open(_out, "w") as f:
            json.dump({"calls": _seen, "threads": {}}, f)
"""


def one_run(tree: Path, workdir: Path, tag: str) -> dict[str, Any]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    health = w.start_health_server(w.standby_health)
    try:
        w.seed()
        prime_moto(CLIENT_SERVICES)   # moto's first-use costs are not the command's
        finished: list[float] = []
        RDSBackend.promote_read_replica = w.slow_promotion(1.0, finished)  # type: ignore
        outage = time.time()
        probe_out = workdir / f"calls-{tag}-{port}.json"
        report = workdir / f"report-{tag}-{port}.json"
        env = {**os.environ, "AWS_ENDPOINT_URL": endpoint,
               "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "CARESYNC_DR_HEALTH_URL":
                   f"http://127.0.0.1:{health.server_address[1]}/api/health",
               "STARTUP_PROBE_OUT": str(probe_out)}
        argv = [sys.executable, "-c", PROBE, str(tree / "scripts" / "failover.py"), "--yes",
                "--report", str(report), "--poll-seconds", "0.1", "--poll-max-seconds", "0.1",
                "--wait-timeout", "30", "--verify-timeout", "30",
                "--outage-started", datetime.fromtimestamp(outage, UTC).isoformat()]
        env["STARTUP_PROBE_T0"] = repr(time.time())
        done = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True,
                              timeout=120, check=False)
        if done.returncode != 0 and "STARTUP_PROFILE_OUT" not in os.environ:
            raise SystemExit(f"failover ({tree}) exited {done.returncode}:\n{done.stdout}\n"
                             f"{done.stderr}")
        return json.loads(probe_out.read_text())  # type: ignore[no-any-return]
    finally:
        health.shutdown()
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tree", type=Path, action="append",
                        help="a source tree to run (repeatable; default: this one)")
    parser.add_argument("--profile", type=Path, metavar="FILE",
                        help="cProfile every thread of the (last) run until the promotion "
                             "request and write the merged statistics to FILE")
    parser.add_argument("--calls", action="store_true",
                        help="print every operation's first send, not only the promotion")
    args = parser.parse_args(argv)
    trees = [t.resolve() for t in (args.tree or [ROOT])]
    for tree in trees:
        # As on an operator's host that has run the tool before: the package's bytecode is
        # current (PYTHONDONTWRITEBYTECODE would otherwise make every start compile it).
        compileall.compile_dir(str(tree / "caresync_dr"), quiet=1)
    # ... and its botocore model cache is warm (a tree without caresync_dr.model_cache does
    # not read it).
    warm_model_cache(CLIENT_SERVICES, client_operations())
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
    if args.profile is not None:
        os.environ["STARTUP_PROFILE_OUT"] = str(args.profile.resolve())
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    figures: dict[Path, list[tuple[float, float]]] = {t: [] for t in trees}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(1, args.runs + 1):
            for i, tree in enumerate(trees):
                found = one_run(tree, Path(tmp), f"{run}-{i}")
                calls = found["calls"]
                promote = next((c for c in calls if c[0] == "PromoteReadReplica"), None)
                if promote is None:
                    print(f"{tree}: run {run}: no PromoteReadReplica sent")
                    continue
                figures[tree].append((promote[2], promote[3]))
                print(f"run {run} {tree}: PromoteReadReplica sent {promote[2]:.3f} s after "
                      f"start, {promote[3]:.3f} CPU-s; {sum(1 for c in calls if c is not promote)}"
                      f" calls before it; load {os.getloadavg()[0]:.2f}")
                if args.calls:
                    print("    CPU by thread at the promotion request: " + ", ".join(
                        f"{name} {cpu:.2f}" for name, cpu in sorted(
                            found["threads"].items(), key=lambda kv: -kv[1]) if cpu))
                    for name, region, wall, cpu in calls:
                        print(f"    {wall:7.3f} s  {cpu:6.3f} cpu  {region:<10} {name}")
    for tree, values in figures.items():
        if values:
            print(f"{tree}: median {statistics.median(v[0] for v in values):.3f} s wall, "
                  f"{statistics.median(v[1] for v in values):.3f} CPU-s to the promotion "
                  f"request over {len(values)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
