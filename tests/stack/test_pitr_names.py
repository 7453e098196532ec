"""pitr.py finds the site's Database component by URN: it must be the one the stack creates."""

from __future__ import annotations

from caresync_dr.offline.runtime import ProgramRun
from caresync_dr.pitr.names import database_urn


def test_the_database_components_urn(any_stack: ProgramRun) -> None:
    site = "primary" if any_stack.stack == "prod" else "standby"
    components = [r for r in any_stack.resources if r.type == "caresync:dr:Database"]
    # The mocks keep the root stack in the type chain; the engine does not (README's URNs).
    assert [r.urn.replace("pulumi:pulumi:Stack$", "") for r in components] == [
        database_urn(any_stack.stack, site)]
