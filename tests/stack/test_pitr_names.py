"""pitr.py derives names from the site; they must be the ones the stack creates."""

from __future__ import annotations

from caresync_dr.offline.runtime import ProgramRun, of_type
from caresync_dr.pitr import names
from components import database


def test_names_match_the_stack(any_stack: ProgramRun) -> None:
    site = "primary" if any_stack.stack == "prod" else "standby"
    for generation in (1, 2, 7):
        assert names.db_identifier(site, generation) == database.db_identifier(site, generation)
    assert names.endpoint_parameter_name(site) == database.endpoint_parameter_name(site)
    components = [r for r in any_stack.resources if r.type == "caresync:dr:Database"]
    # The mocks keep the root stack in the type chain; the engine does not (README's URNs).
    assert [r.urn.replace("pulumi:pulumi:Stack$", "") for r in components] == [
        names.database_urn(any_stack.stack, site)]
    groups = {r.inputs.get("name") for r in of_type(any_stack.resources,
                                                     "aws:ec2/securityGroup:SecurityGroup")}
    if any_stack.outputs.get("activeSite") == site:  # the writer's site has the no-access group
        assert names.no_access_group_name(site) in groups
