"""The IAM call recorder (tests/iam_calls.py) itself: a call a command's worker thread makes is
the command's, found without reading any other thread's frames.

``sys._current_frames()`` can deadlock CPython 3.11 for good (python/cpython#106883), with no
signal handler ever running again: the official CI's suite hung twice on it. No code of this
project or its tests calls it.
"""

from __future__ import annotations

import argparse
import ast
import threading
from pathlib import Path

import boto3
from moto import mock_aws

from caresync_dr.cli import ExitCode, Invocation, command_parser, run_command
from caresync_dr.operations.ssm import read_parameter_version
from tests.iam_calls import record_command_calls

ROOT = Path(__file__).resolve().parents[1]


def test_a_call_from_a_thread_of_a_thread_of_a_command_is_the_commands() -> None:
    with mock_aws():
        ssm = boto3.client("ssm", region_name="us-west-2", aws_access_key_id="testing",
                           aws_secret_access_key="testing")

        def probe() -> None:
            read_parameter_version(ssm, "/caresync-dr/failover/lock")

        def body(args: argparse.Namespace, invocation: Invocation) -> int:
            def worker() -> None:          # a pool's worker starts another thread
                inner = threading.Thread(target=probe)
                inner.start()
                inner.join()

            outer = threading.Thread(target=worker)
            outer.start()
            outer.join()
            return ExitCode.OK

        parser = command_parser("failover.py", "toy", [(ExitCode.OK, "done")])
        with record_command_calls() as log:
            assert run_command(parser, body, [], command="failover") == ExitCode.OK
            before_any_command = threading.Thread(target=probe)
        before_any_command.start()        # started outside a command: its calls are nobody's
        before_any_command.join()
    assert [(c.command, c.action) for c in log.calls] == [("failover", "ssm:GetParameter")]
    assert log.calls[0].caller.startswith("caresync_dr/operations/ssm.py:")


def test_nothing_reads_other_threads_frames() -> None:
    """``sys._current_frames()`` holds CPython 3.11's runtime lock while it makes frame
    objects; a garbage collection then can deadlock the interpreter (python/cpython#106883)."""
    # The one deliberate user: the reproduction of the deadlock, run by hand in a child.
    reproduction = "bench/current_frames_deadlock.py"
    users = [str(path.relative_to(ROOT))
             for folder in ("caresync_dr", "tests", "scripts", "bench", "components", "policy")
             for path in (ROOT / folder).rglob("*.py")
             if any(isinstance(node, ast.Attribute) and node.attr == "_current_frames"
                    for node in ast.walk(ast.parse(path.read_text())))]
    assert users == [reproduction]
