"""The README's reference tables cannot drift from the code (settings keys, stack outputs)."""

from __future__ import annotations

import re
from pathlib import Path

from caresync_dr.offline.runtime import ProgramRun
from caresync_dr.settings import KNOWN_KEYS

README = Path(__file__).resolve().parents[2] / "README.md"


def _table_names(section: str) -> set[str]:
    text = README.read_text()
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
