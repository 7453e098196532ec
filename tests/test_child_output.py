"""tests/child_output.py: waiting for a child's marker is bounded, and the pipe keeps draining."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.child_output import drain


def test_a_child_that_never_says_the_marker_is_waited_for_only_until_the_deadline() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"],
                             stderr=subprocess.PIPE, text=True)
    assert child.stderr is not None
    try:
        started = time.monotonic()
        assert not drain(child.stderr).wait_for("PAUSED", timeout=0.5)
        assert time.monotonic() - started < 5
    finally:
        child.kill()
        child.wait(timeout=10)


def test_a_child_writing_more_than_a_pipe_holds_after_the_marker_still_exits() -> None:
    script = ("import sys; print('PAUSED', file=sys.stderr, flush=True); "
              "sys.stderr.write('x' * 1_000_000); sys.stderr.flush()")
    child = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE, text=True)
    assert child.stderr is not None
    said = drain(child.stderr)
    assert said.wait_for("PAUSED", timeout=30)
    assert child.wait(timeout=30) == 0
