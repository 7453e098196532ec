"""The drill's scenarios as data: what breaks, which failover runs, what must hold afterwards.

RTO always means *writable* service: the public health URL answered by ``serving_site`` with a
database that accepts writes. A healthy answer from a read-only replica before that is degraded
service, measured and reported on its own (``degraded_seconds``), never counted as recovery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ScenarioName = Literal["region-outage", "db-failure", "app-crash", "bad-release", "corruption",
                       "planned-switchover", "round-trip", "reverse-outage", "breach",
                       "credential-rotation"]


@dataclass(frozen=True)
class Scenario:
    name: ScenarioName
    summary: str
    region_down: bool        # primary region API endpoints and Route 53 control plane unreachable
    kill_primary_db: bool    # SIGKILL the primary PostgreSQL (postmaster and backends)
    kill_primary_app: bool   # the primary site app stops answering
    failover_scope: str | None  # `failover.py --scope`, None: no failover is run
    serving_site: Literal["primary", "standby"]  # which site must serve afterwards
    promotes: Literal["standby", "local_replica"] | None  # which real database gets promoted
    needs_local_replica: bool
    # Prove the standby region alone suffices (issue 9): with the primary region refused, a new
    # standby app instance boots and logs in with standby-region services only, and the backup
    # taken before the outage restores from the standby bucket.
    standby_alone: bool = False
    # After the failover: the old region recovers, the failback re-protects it, the planned
    # switchover returns home and the standby site is re-protected (caresync_dr/drill/
    # round_trip.py), with the data checked at each stage.
    round_trip: bool = False
    # What the round trip does after re-protecting the primary site: return home with the
    # planned switchover ("switchback"), or lose the standby region -- where the writer now
    # is -- and fail over in the reverse direction to the primary site ("reverse-outage").
    after_reprotection: Literal["switchback", "reverse-outage"] = "switchback"
    # Which operator command the scenario runs: the failover (by ``failover_scope``) or the
    # planned switchover (``caresync_dr/drill/switchover.py``: nothing breaks, both sites are
    # healthy, switchover.py moves the writer under a steady write load).
    operation: Literal["failover", "switchover"] = "failover"
    # Recovered inside the primary region by app.py or pitr.py (caresync_dr.drill.in_region),
    # not by failover.py; the flags above describe the breakage for the report only.
    in_region: bool = False
    # What the seed plan requires for this disaster to count as recovered (the verdict's basis).
    seed_requires: str = ""


SCENARIOS: dict[str, Scenario] = {
    "region-outage": Scenario(
        name="region-outage",
        summary="the primary region is gone: its APIs and Route 53's control plane are "
                "unreachable, its database and app are killed hard",
        region_down=True, kill_primary_db=True, kill_primary_app=True,
        failover_scope="region", serving_site="standby", promotes="standby",
        needs_local_replica=False, standby_alone=True,
        seed_requires="complete system failure: activate the DR site, its database writable, "
                      "DNS updated, services verified, within the 1 h RTO and 15 min RPO"),
    "db-failure": Scenario(
        name="db-failure",
        summary="only the primary database dies; failover --scope database promotes the "
                "in-region replica and repoints the primary app",
        region_down=False, kill_primary_db=True, kill_primary_app=False,
        failover_scope="database", serving_site="primary", promotes="local_replica",
        needs_local_replica=True,
        seed_requires="database failure: switch to the read replica, verify data integrity, "
                      "resume normal (writable) operations within the RTO and RPO"),
    "app-crash": Scenario(
        name="app-crash",
        summary="the primary app crashes; app.py restart (an instance refresh keeping capacity) "
                "brings writable service back in the primary region; the read-only standby "
                "that Route 53 answers meanwhile is degraded service, not recovery",
        region_down=False, kill_primary_db=False, kill_primary_app=True,
        failover_scope=None, serving_site="primary", promotes=None,
        needs_local_replica=False, in_region=True,
        seed_requires="application crash: restart the application and serve writes again "
                      "within the RTO; the read-only standby meanwhile is degraded service, "
                      "not recovery"),
    "bad-release": Scenario(
        name="bad-release",
        summary="a broken release ships (pulumi up with a new AMI, then app.py deploy); the "
                "5xx and unhealthy-host alarms fire and Auto Scaling rolls it back by itself",
        region_down=False, kill_primary_db=False, kill_primary_app=False,
        failover_scope=None, serving_site="primary", promotes=None,
        needs_local_replica=False, in_region=True,
        seed_requires="application crash, step 3: if the restart does not help, roll back to "
                      "the previous version, and monitor error rates"),
    "corruption": Scenario(
        name="corruption",
        summary="rows are destroyed on the primary database; pitr.py restores the writer to "
                "just before the damage, fences the damaged one and moves the app",
        region_down=False, kill_primary_db=False, kill_primary_app=False,
        failover_scope=None, serving_site="primary", promotes=None,
        needs_local_replica=False, in_region=True,
        seed_requires="database failure (corruption): restore, verify data integrity, resume "
                      "normal operations within the RTO and RPO"),
    "round-trip": Scenario(
        name="round-trip",
        summary="the primary region is lost and failed over, then recovers: re-protection "
                "from the promoted writer, the planned switchback home, the standby "
                "re-protected",
        region_down=True, kill_primary_db=True, kill_primary_app=True,
        failover_scope="region", serving_site="standby", promotes="standby",
        needs_local_replica=False, round_trip=True,
        seed_requires="annual full DR simulation: fail over, recover the original region, "
                      "return home with no acknowledged write lost, protected again"),
    "reverse-outage": Scenario(
        name="reverse-outage",
        summary="the round trip's first half (outage, failover, recovery, re-protection of the "
                "primary site), then the standby region -- where the writer now is -- is lost: "
                "failover.py promotes the primary site's new generation with every standby-"
                "region endpoint refused",
        region_down=True, kill_primary_db=True, kill_primary_app=True,
        failover_scope="region", serving_site="standby", promotes="standby",
        needs_local_replica=False, round_trip=True, after_reprotection="reverse-outage",
        seed_requires="complete system failure in either direction: after a failback the "
                      "primary site takes over from the standby within the RTO and RPO, with "
                      "nothing from the failed standby region"),
    "planned-switchover": Scenario(
        name="planned-switchover",
        summary="nothing breaks: switchover.py fences the primary database, waits until the "
                "standby has replayed its final WAL position, promotes it and moves traffic, "
                "under a steady write load",
        region_down=False, kill_primary_db=False, kill_primary_app=False,
        failover_scope=None, serving_site="standby", promotes="standby",
        needs_local_replica=False, operation="switchover",
        seed_requires="a planned move (annual full DR simulation): no acknowledged write lost "
                      "(RPO 0), writes unavailable only for the reported window"),
    "breach": Scenario(
        name="breach",
        summary="an attacker holds the app's database password with an open session, an IAM "
                "access key and a primary app instance; breach.py isolates, revokes and "
                "rotates while the app keeps serving",
        region_down=False, kill_primary_db=False, kill_primary_app=False,
        failover_scope=None, serving_site="primary", promotes=None,
        needs_local_replica=False, in_region=True,
        seed_requires="data breach: immediately isolate affected systems, revoke compromised "
                      "credentials, enable additional logging, notify the security team, "
                      "document the incident; the app keeps serving writes"),
    "credential-rotation": Scenario(
        name="credential-rotation",
        summary="nothing breaks: the monthly rotate_db_credentials.py rotates the database "
                "passwords and replaces the app instances while the app serves and keeps "
                "opening connections with the credentials it booted with",
        region_down=False, kill_primary_db=False, kill_primary_app=False,
        failover_scope=None, serving_site="primary", promotes=None,
        needs_local_replica=False, in_region=True,
        seed_requires="regular credential rotation without downtime: no app connection "
                      "refused, no write failed or lost"),
}
