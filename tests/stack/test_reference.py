"""The reference tables in docs/ cannot drift from the code: settings keys and stack outputs
(docs/reference.md), the URNs the failover reference tells the operator to target."""

from __future__ import annotations

import re
from pathlib import Path

from caresync_dr.offline.runtime import ProgramRun
from caresync_dr.settings import KNOWN_KEYS

DOCS = Path(__file__).resolve().parents[2] / "docs"
REFERENCE = DOCS / "reference.md"
FAILOVER_REFERENCE = DOCS / "failover-reference.md"


def _table_names(section: str) -> set[str]:
    text = REFERENCE.read_text()
    body = text.split(f"<!-- section: {section} (issue 2) -->", 1)[1].split("<!-- section:", 1)[0]
    names: set[str] = set()
    for line in body.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([^`]+)`", first_cell))
    return names


def test_configuration_reference_lists_every_setting() -> None:
    assert _table_names("configuration") == set(KNOWN_KEYS)


def test_outputs_table_lists_every_stack_output(prod_linked: ProgramRun,
                                                dr: ProgramRun) -> None:
    assert _table_names("outputs") == set(prod_linked.outputs) | set(dr.outputs)


def test_outage_section_targets_urns_the_dr_program_creates(dr_promoted: ProgramRun) -> None:
    """docs/failover-reference.md, 'After the failover', tells the operator to `pulumi up -s dr
    --target <urn>` while us-east-1 is down: each URN quoted there must be one the promoted dr
    stack has."""
    body = FAILOVER_REFERENCE.read_text()
    quoted = set(re.findall(r"--target '(urn:pulumi:[^']+)'", body))
    assert len(quoted) == 2, quoted
    urns = {r.urn for r in dr_promoted.resources}
    assert quoted <= urns, quoted - urns
