"""The planned-switchover drill once, end to end: the real program deployed into the emulator,
real PostgreSQL 15 primary and streaming standby, a steady write load, the real
``scripts/switchover.py`` as a subprocess. Several runs: bench/switchover_drill.py."""

from __future__ import annotations

import pytest

from caresync_dr.drill.report import summary
from caresync_dr.drill.runner import DrillOptions, run_drill
from caresync_dr.drill.scenarios import SCENARIOS
from tests.switchover.pg import require_postgres

pytestmark = [pytest.mark.drill, pytest.mark.postgres]


def test_planned_switchover_loses_no_acknowledged_write() -> None:
    require_postgres()
    report = run_drill(DrillOptions(scenario=SCENARIOS["planned-switchover"],
                                    promote_seconds=1.0, scale_seconds=1.0,
                                    steady_seconds=0.5))
    verdicts = {v["name"]: v for v in report["verifications"]}
    assert report["ok"], report["verifications"]
    writes = report["writes"]
    assert writes["acknowledged_lost"] == 0
    assert writes["acknowledged_by_old_writer"] > 0 and writes["acknowledged_by_new_writer"] > 0
    # the load kept writing through the fence: those writes were refused, never acknowledged
    assert writes["refused"] > 0
    assert verdicts["the old writer holds nothing the new writer lacks"]["ok"]
    section = report["switchover"]
    # the window can be no shorter than the emulated promotion it contains
    assert section["write_unavailable_seconds"] >= 1.0
    assert section["command_write_unavailable_seconds"] >= 1.0
    assert section["report"]["switchover"]["acknowledgedWritesLost"] == 0
    assert "planned-switchover" in summary(report)
