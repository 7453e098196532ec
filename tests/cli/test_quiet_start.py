"""Ctrl-C while a command is still importing is one line and exit 3 (caresync_dr.quiet_start).

Before, it printed Python's KeyboardInterrupt traceback through the import machinery (failover.py
spends about half a second importing before run_main starts)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from caresync_dr import quiet_start
from caresync_dr.cli import ExitCode

ROOT = Path(__file__).resolve().parents[2]

# A command's process as pip's entry point starts it: argv[0] is caresync-*, then the package
# is imported; the Ctrl-C arrives while it imports the rest. Ctrl-C is first made Python's
# default, as in a process a terminal starts: a process started in the background by a
# non-interactive shell (nohup, `cmd &`, some CI runners) inherits SIGINT ignored, and Python
# then leaves it ignored, which is not what this test is about.
STARTING = """
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.argv[0] = {argv0!r}
import caresync_dr
os.kill(os.getpid(), signal.SIGINT)
time.sleep(5)
print("not interrupted")
"""


@pytest.mark.parametrize("argv0", ["/usr/local/bin/caresync-failover",
                                   str(ROOT / "scripts" / "failover.py")])
def test_ctrl_c_while_starting_is_one_line_and_exit_3(argv0: str) -> None:
    done = subprocess.run([sys.executable, "-c", STARTING.format(argv0=argv0)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == ExitCode.REFUSED, (done.returncode, done.stderr)
    assert done.stderr == quiet_start.LINE.decode()
    assert done.stdout == ""


def test_another_program_importing_the_package_keeps_python_s_ctrl_c() -> None:
    done = subprocess.run([sys.executable, "-c", STARTING.format(argv0="pulumi-language")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != ExitCode.REFUSED
    assert "KeyboardInterrupt" in done.stderr


def test_run_main_gives_ctrl_c_back_to_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["caresync-objectives"])
    previous = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        quiet_start.begin()
        assert signal.getsignal(signal.SIGINT) is quiet_start._stop
        quiet_start.end()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)
    assert os.environ.get("PYTEST_CURRENT_TEST")      # this process: pytest, untouched
