"""The program run offline once per bootstrap state, shared by the stack tests.

The states follow README "Bootstrap order": prod alone (dr not deployed), dr reading prod's
outputs, prod again reading dr's outputs, and dr after a failover (standbyPromoted=true).
Each fixture runs the real ``__main__.py`` with the committed ``Pulumi.<stack>.yaml``.
"""

from __future__ import annotations

import pytest

from caresync_dr.offline.runtime import ProgramRun, run_program

PRIMARY_STACK = "organization/caresync-dr/prod"
STANDBY_STACK = "organization/caresync-dr/dr"


@pytest.fixture(scope="session")
def prod_bootstrap() -> ProgramRun:
    """Step 1: `pulumi up -s prod` before the dr stack exists."""
    return run_program("prod")


@pytest.fixture(scope="session")
def dr(prod_bootstrap: ProgramRun) -> ProgramRun:
    """Step 2: `pulumi up -s dr`, reading prod's outputs."""
    return run_program("dr", stack_references={PRIMARY_STACK: prod_bootstrap.outputs})


@pytest.fixture(scope="session")
def prod_linked(dr: ProgramRun) -> ProgramRun:
    """Step 3: `pulumi up -s prod` again, now reading dr's outputs."""
    return run_program("prod", stack_references={STANDBY_STACK: dr.outputs})


@pytest.fixture(scope="session")
def dr_promoted(prod_bootstrap: ProgramRun) -> ProgramRun:
    """After a failover promoted the standby: standbyPromoted=true."""
    return run_program("dr", config_overrides={"standbyPromoted": "true"},
                       stack_references={PRIMARY_STACK: prod_bootstrap.outputs})


@pytest.fixture(scope="session", params=["prod_bootstrap", "prod_linked", "dr", "dr_promoted"])
def any_stack(request: pytest.FixtureRequest) -> ProgramRun:
    run: ProgramRun = request.getfixturevalue(request.param)
    return run
