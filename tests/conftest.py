"""Every test: each AWS call an operator command makes is granted to the command's IAM role.

tests/iam_calls.py says which calls count (the project's runtime code, while a command runs)
and how each is named as an IAM action; caresync_dr/operator_permissions.py holds the roles.
A call its role does not grant fails the test that made it, naming the command, the action
and the line that called: at 3 a.m. it would be an AccessDenied half-way through the run.
Commands only tests define (toys of tests/cli, tests/operations) have no role and are not
checked; tests/operator/test_roles.py makes sure every real command has one.

Also: the botocore model cache (caresync_dr/model_cache.py) of every process the tests start,
this one and its subprocesses, is a directory of this test session's own, never the user's
home (``~/.cache/caresync-dr``), unless CARESYNC_DR_MODEL_CACHE is set already.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from caresync_dr.model_cache import ENV_CACHE_DIR
from caresync_dr.operator_permissions import role_of
from tests.iam_calls import FREE, CallLog, record_command_calls

_SESSION_MODEL_CACHE: list[str] = []     # the directory this session made, removed at its end


def pytest_configure(config: pytest.Config) -> None:
    """Before collection (a test module may build a client at import)."""
    if ENV_CACHE_DIR not in os.environ:
        made = tempfile.mkdtemp(prefix="caresync-dr-test-models-")
        _SESSION_MODEL_CACHE.append(made)
        os.environ[ENV_CACHE_DIR] = made


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The PostgreSQL servers and temp dirs of test processes that died are stopped and
    removed: a test worker ended by the hang guard (pyproject: faulthandler_timeout) ran no
    fixture teardown. Only in the process that ran the session (xdist's controller, or a run
    without xdist); a live process's dirs are never touched (caresync_dr.pg.orphans)."""
    if hasattr(session.config, "workerinput"):
        return
    from caresync_dr.pg.orphans import sweep

    sweep(prefix="caresync-")


def pytest_unconfigure(config: pytest.Config) -> None:
    while _SESSION_MODEL_CACHE:
        made = _SESSION_MODEL_CACHE.pop()
        if os.environ.get(ENV_CACHE_DIR) == made:
            del os.environ[ENV_CACHE_DIR]
        shutil.rmtree(made, ignore_errors=True)


def not_granted(log: CallLog) -> list[str]:
    """One line per (command, action) its role lacks."""
    problems: dict[tuple[str, str], str] = {}
    for call in log.calls:
        if call.action in FREE:
            continue
        try:
            role = role_of(call.command)
        except KeyError:
            continue
        if role is None:
            problems.setdefault((call.command, call.action),
                                f"{call.command} is listed as a command without AWS but "
                                f"called {call.action} ({call.caller})")
        elif call.action not in role.actions():
            problems.setdefault((call.command, call.action),
                                f"{call.command} called {call.action} in {call.region} "
                                f"({call.caller}), which its role {role.name} does not grant")
    return sorted(problems.values())


@pytest.fixture(autouse=True)
def _command_calls_are_granted(request: pytest.FixtureRequest) -> Iterator[None]:
    with record_command_calls() as log:
        yield
    dump = os.environ.get("CARESYNC_IAM_CALLS_DUMP")   # to survey a run's calls
    if dump:
        with open(dump, "a") as out:
            for call in log.calls:
                out.write(json.dumps({"test": request.node.nodeid, **call.__dict__}) + "\n")
    problems = not_granted(log)
    if problems:
        pytest.fail("AccessDenied at 3 a.m.: " + "; ".join(problems), pytrace=False)
