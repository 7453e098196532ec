#!/usr/bin/env python3
"""Run one CI stage with a deadline; past it, print what every process of the stage is doing.

    python3 .ci/bounded.py SECONDS COMMAND [ARG ...]

Exit status: the command's own (128 + N, with a line naming the signal, when signal N ended
it); 124 when the deadline ended it (as GNU timeout); 127 when the command cannot be started;
2 for bad usage.

Twice (stops 21 and 22) the test suite hung until CI's 90-minute limit, which printed nothing
but the last dots. Here the stage runs in a session of its own, with no controlling terminal
and stdin from /dev/null. Past its deadline this prints each process of the group (state:
``T`` is stopped, ``D`` waits on the disk), its kernel wait channel, and the Python and native
stacks of each Python process (``venv/bin/py-spy dump --native``, when it is installed and
ptrace is allowed); then it ends the group (SIGTERM, SIGKILL 30 s later). A SIGTERM or SIGINT
sent to this script (CI's own limit) is passed on to the group. When the command ends,
whatever it left running in its group is ended too (a server a stage started in a session of
its own, such as a PostgreSQL postmaster, is not in the group: the tests sweep those
themselves).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PY_SPY = Path(__file__).resolve().parents[1] / "venv" / "bin" / "py-spy"
GRACE_SECONDS = 30


def _stamp() -> str:
    return time.strftime("%H:%M:%S")


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:       # fields: state, ppid, pgrp, ...
            pids.append(int(entry.name))
    return sorted(pids)


def _describe(pgid: int) -> None:
    print(f"ci: {_stamp()} the stage's processes (pid, ppid, state, wait channel, elapsed, "
          "command):", flush=True)
    subprocess.run(["ps", "-o", "pid,ppid,stat,wchan:32,etime,args", "--forest", "-g",
                    str(pgid)], check=False)
    if not PY_SPY.exists():
        print(f"ci: {PY_SPY} is not installed: no stacks", flush=True)
        return
    for pid in _group_pids(pgid):
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue
        if "python" not in Path(exe).name:
            continue
        print(f"ci: {_stamp()} stacks of {pid}:", flush=True)
        subprocess.run([str(PY_SPY), "dump", "--native", "--pid", str(pid)], check=False,
                       timeout=60)


def _end(pgid: int, proc: subprocess.Popen[bytes]) -> None:
    with_signal(pgid, signal.SIGCONT)        # a stopped process cannot act on SIGTERM
    with_signal(pgid, signal.SIGTERM)
    try:
        proc.wait(GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        with_signal(pgid, signal.SIGKILL)
        proc.wait()
    _end_leftovers(pgid)


def _end_leftovers(pgid: int) -> None:
    """End what the command left running in its group (a background job of a recipe)."""
    if not _group_pids(pgid):
        return
    with_signal(pgid, signal.SIGCONT)
    with_signal(pgid, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_SECONDS
    while _group_pids(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    with_signal(pgid, signal.SIGKILL)


def _exit_status(command: list[str], returncode: int) -> int:
    if returncode >= 0:
        return returncode
    name = signal.Signals(-returncode).name
    print(f"ci: {_stamp()} `{' '.join(command)}` was ended by {name}", flush=True)
    return 128 - returncode


def with_signal(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or not argv[0].isdigit():
        print("usage: bounded.py SECONDS COMMAND [ARG ...]", file=sys.stderr)
        return 2
    limit, command = int(argv[0]), argv[1:]
    # A session of its own: no controlling terminal for any of the stage's processes (none
    # can be stopped by reading or writing one), and one process group to end.
    try:
        proc = subprocess.Popen(command, start_new_session=True, stdin=subprocess.DEVNULL)
    except OSError as exc:
        print(f"ci: cannot start `{' '.join(command)}`: {exc}", file=sys.stderr)
        return 127

    def pass_on(signum: int, frame: object) -> None:
        with_signal(proc.pid, signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, pass_on)
    try:
        returncode = proc.wait(limit)
    except subprocess.TimeoutExpired:
        print(f"\nci: {_stamp()} `{' '.join(command)}` still runs after its {limit} s "
              "deadline", flush=True)
        try:
            _describe(proc.pid)
        except Exception as exc:  # what is printed only helps; the stage is ended regardless
            print(f"ci: could not describe the stage's processes: {exc!r}", flush=True)
        finally:
            _end(proc.pid, proc)
        print(f"ci: {_stamp()} `{' '.join(command)}` ended at its deadline (exit 124)",
              flush=True)
        return 124
    _end_leftovers(proc.pid)
    return _exit_status(command, returncode)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
