"""Reproduce the CPython 3.11 ``sys._current_frames()`` deadlock that hung the official CI.

    venv/bin/python bench/current_frames_deadlock.py [--seconds 120] [--no-local-cycles]

Until session 8 the tests' IAM call recorder (tests/iam_calls.py) named the command behind a
worker thread's AWS call by walking ``sys._current_frames()``. In CPython 3.11.7 (this
machine's; PR #117332, merged into 3.11 in March 2024, turns the collector off there),
``_PyThread_CurrentFrames`` holds the runtime's HEAD_LOCK while it makes frame objects; an
allocation there can run the cyclic collector, and a ``threading.local`` it frees takes
HEAD_LOCK again (python/cpython#106883, #116969; gdb: ``local_clear`` < ``delete_garbage`` <
``gc_collect_main`` < ``_PyFrame_MakeAndSetFrameObject`` < ``_PyThread_CurrentFrames``): the
interpreter stops for good, holding the GIL, so no signal handler (pytest-timeout's SIGALRM)
ever runs.

The child runs the recorder's pattern: a "command" with a heartbeat thread, a prewarm thread
and a fresh thread pool, each "AWS call" making a little cyclic garbage (a thread-local in a
cycle, as request-scoped state is) and walking every thread's frames. The parent watches the
child's progress lines; after 20 s without one it prints the child's native stacks
(``venv/bin/py-spy dump --native``), kills it and exits 1. Exit 0: no hang in ``--seconds``.
Seen here on 3.11.7 (session 8): a hang in the first or second command in 4 of 4 runs, the
stuck thread's native stack ``_PyThread_CurrentFrames`` > ``gc_collect_main`` >
``PyThread_acquire_lock_timed``; none in 45 s (52,224 commands) with ``--no-local-cycles``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import FrameType

PY_SPY = Path(__file__).resolve().parents[1] / "venv" / "bin" / "py-spy"
SILENT_SECONDS = 20.0


class _Node:
    def __init__(self) -> None:
        self.other: object = None


def _garbage(local_cycles: bool) -> None:
    first, second = _Node(), _Node()
    first.other, second.other = second, first
    if local_cycles:
        state = threading.local()
        state.holder = [state]               # a thread-local only the collector frees


def _walk_all_frames() -> int:
    frames = 0
    for top in sys._current_frames().values():
        frame: FrameType | None = top
        while frame is not None:
            frames += 1
            frame = frame.f_back
    return frames


def _aws_call(local_cycles: bool) -> None:
    _garbage(local_cycles)
    _walk_all_frames()


def _calls(local_cycles: bool, count: int) -> None:
    for _ in range(count):
        _aws_call(local_cycles)


def _command(local_cycles: bool) -> None:
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(0.01):
            _aws_call(local_cycles)

    beating = threading.Thread(target=heartbeat, daemon=True)
    prewarm = threading.Thread(target=_calls, args=(local_cycles, 3))
    beating.start()
    prewarm.start()
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for future in [pool.submit(_calls, local_cycles, 20) for _ in range(8)]:
            future.result()
    prewarm.join()
    stop.set()
    beating.join()


def child(local_cycles: bool) -> None:
    started = time.monotonic()
    for run in range(1, 10**9):
        _command(local_cycles)
        print(f"run {run} {time.monotonic() - started:.1f} s", flush=True)


def parent(seconds: float, local_cycles: bool) -> int:
    argv = [sys.executable, __file__, "--child"] + ([] if local_cycles else ["--no-local-cycles"])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    started = last = time.monotonic()
    runs = "0"
    try:
        # A child silent at the end is watched on until it answers or SILENT_SECONDS pass.
        while time.monotonic() - started < seconds or time.monotonic() - last > 2.0:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                line = proc.stdout.readline()
                if not line:
                    print(f"the child ended by itself (exit {proc.wait()})")
                    return 2
                runs, last = line.split()[1], time.monotonic()
            elif time.monotonic() - last > SILENT_SECONDS:
                print(f"HANG: the child stopped after {runs} commands, "
                      f"{last - started:.1f} s in; its stacks:", flush=True)
                if PY_SPY.exists():
                    subprocess.run([str(PY_SPY), "dump", "--native", "--pid", str(proc.pid)],
                                   check=False, timeout=60)
                return 1
        print(f"no hang in {seconds:.0f} s ({runs} commands)")
        return 0
    finally:
        proc.kill()
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--seconds", type=float, default=120.0,
                        help="how long to try before saying there was no hang")
    parser.add_argument("--no-local-cycles", dest="local_cycles", action="store_false",
                        help="make no thread-local garbage (then it does not hang)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.local_cycles)
        return 0
    print(f"python {sys.version.split()[0]}, pid {os.getpid()}", flush=True)
    return parent(args.seconds, args.local_cycles)


if __name__ == "__main__":
    sys.exit(main())
