"""The program run offline once per bootstrap state, shared by the stack tests.

The states follow docs/deploying.md: prod alone (dr not deployed), dr reading prod's
outputs, prod again reading dr's outputs, and dr after a failover (activeSite=standby).
Each fixture runs the real ``__main__.py`` with the committed ``Pulumi.<stack>.yaml``.
"""

from __future__ import annotations

import pytest

from caresync_dr.offline.runtime import ProgramRun
from tests import offline_runs

# The runs themselves are cached in tests/offline_runs.py, shared with the preview and policy
# tests: the program runs once per state per test session, not once per test package.


@pytest.fixture(scope="session")
def prod_bootstrap() -> ProgramRun:
    """Step 1: `pulumi up -s prod` before the dr stack exists."""
    return offline_runs.steady()["bootstrap"]


@pytest.fixture(scope="session")
def dr() -> ProgramRun:
    """Step 2: `pulumi up -s dr`, reading prod's outputs."""
    return offline_runs.steady()["dr"]


@pytest.fixture(scope="session")
def prod_linked() -> ProgramRun:
    """Step 3: `pulumi up -s prod` again, now reading dr's outputs."""
    return offline_runs.steady()["prod"]


@pytest.fixture(scope="session")
def dr_promoted() -> ProgramRun:
    """After a failover promoted the standby: activeSite=standby."""
    return offline_runs.dr_promoted()


@pytest.fixture(scope="session", params=["prod_bootstrap", "prod_linked", "dr", "dr_promoted"])
def any_stack(request: pytest.FixtureRequest) -> ProgramRun:
    run: ProgramRun = request.getfixturevalue(request.param)
    return run
