"""The round trip (issue 15 item 2, "Done when"): outage, failover, recovery of the old
region, re-protection, planned switchback, re-protection of the standby site, on real
PostgreSQL 15 and the emulator, the primary region refused during the outage. One run here;
``bench/round_trip.py`` runs several."""

from __future__ import annotations

import pytest

from tests.drill.test_scenarios import _drill

pytestmark = [pytest.mark.drill, pytest.mark.postgres]


def test_the_round_trip_ends_home_primary_and_protected() -> None:
    report = _drill("round-trip")
    verdicts = {v["name"]: (v["ok"], v["detail"]) for v in report["verifications"]}
    assert report["ok"], [v for v in report["verifications"] if not v["ok"]]
    # The outage phase: the primary region refused every request until its recovery.
    assert report["emulator"]["refused_requests"] > 0
    for stage in ("failover.py succeeded", "after recovery the standby still serves",
                  "failback.py re-protected the primary site",
                  "new generation holds every write acknowledged by the writer",
                  "planned switchback home", "no acknowledged write lost by the switchback",
                  "the original region serves again",
                  "failback.py re-protected the standby site",
                  "every write acknowledged in the round trip is on the writer",
                  "ends home: original region primary and protected"):
        assert verdicts[stage][0], (stage, verdicts[stage][1])
    trip = report["round_trip"]
    assert trip["switchback"]["write_unavailable_seconds"] is not None
    assert trip["writes"]["acknowledged"] > 0
    # Every emulated `pulumi up` passed the lifecycle model; the first re-protection built
    # prod's generation 2 and deleted generation 1 with its final snapshot.
    assert [p["stack"] for p in trip["plans"]][:3] == ["dr", "prod", "prod"]
    assert any("delete   aws:rds/instance:Instance primary-database-instance" in line
               for p in trip["plans"] for line in p["summary"])


def test_after_the_failback_the_standby_region_fails_and_the_primary_site_takes_over() -> None:
    """Issue 15, the reverse direction: after the re-protection the standby region (now the
    writer's) is lost; failover.py promotes the primary site's new generation with every
    us-west-2 endpoint refused, and the data is checked on the real databases."""
    report = _drill("reverse-outage")
    verdicts = {v["name"]: (v["ok"], v["detail"]) for v in report["verifications"]}
    assert report["ok"], [v for v in report["verifications"] if not v["ok"]]
    for stage in ("failback.py re-protected the primary site",
                  "new generation holds every write acknowledged by the writer",
                  "reverse failover.py succeeded with the standby region refused",
                  "the primary site serves writes again",
                  "reverse failover lost no acknowledged write older than the RPO",
                  "writes continue on the primary site's new writer",
                  "the recovered standby region does not take the traffic back",
                  "failback.py re-protected the standby site",
                  "every write acknowledged in the round trip is on the writer",
                  "ends home: original region primary and protected",
                  "the switch moves traffic again (the DNS pin is undone)"):
        assert verdicts[stage][0], (stage, verdicts[stage][1])
    reverse = report["round_trip"]["reverse_failover"]
    assert reverse["exit_code"] == 0 and reverse["refused_requests"] > 0
    steps = {s["name"]: s["outcome"] for s in reverse["report"]["steps"]}
    assert steps["promote-database"] == "done" and steps["verify"] == "done"
    assert "switchback" not in report["round_trip"]
