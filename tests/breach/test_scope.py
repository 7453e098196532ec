"""The scope: what a principal did, from the trail's log group and CloudTrail's event history,
and what a database role did to the PHI tables, from pgAudit's lines on a real server."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from caresync_dr.breach.scope import (
    Principal,
    TrailSource,
    database_scope,
    parse_audit_line,
    principal_scope,
)
from caresync_dr.db.pgaudit import ensure_audit
from caresync_dr.emulation.cloudtrail import TrailDelivery, api_record
from caresync_dr.pg.cluster import PostgresCluster
from tests.breach.conftest import APP, DATABASE, FIRST
from tests.breach.world import ACCOUNT, LEAKED_USER, PRIMARY, STANDBY, BreachWorld
from tests.pg_servers import server_log

NOW = datetime.now(UTC).replace(microsecond=0)


def _attacker(world: BreachWorld, delivery: TrailDelivery) -> None:
    site = world.layout.primary
    calls = [("s3.amazonaws.com", "ListBuckets", {}, None, False),
             ("s3.amazonaws.com", "GetObject", {"bucketName": site.backup_bucket,
                                                "key": "backups/2026-11-30.dump"}, None, True),
             ("s3.amazonaws.com", "GetObject", {"bucketName": site.backup_bucket,
                                                "key": "backups/2026-11-29.dump"}, None, True),
             ("iam.amazonaws.com", "CreateAccessKey", {"userName": "admin"}, "AccessDenied",
              False)]
    for i, (source, name, params, error, data) in enumerate(calls):
        record = api_record(region=PRIMARY, event_source=source, event_name=name,
                            account=ACCOUNT, user=LEAKED_USER, access_key=world.access_key,
                            when=NOW - timedelta(minutes=10 - i), request_parameters=params,
                            error_code=error, data_event=data)
        delivery.deliver(record, trail_region=PRIMARY, log_group=site.trail_log_group)
    someone_else = api_record(region=PRIMARY, event_source="ec2.amazonaws.com",
                              event_name="DescribeInstances", account=ACCOUNT, user="ops",
                              access_key="AKIAOPSOPSOPSOPSOPS1", when=NOW)
    delivery.deliver(someone_else, trail_region=PRIMARY, log_group=site.trail_log_group)


def test_the_key_s_records_say_which_apis_buckets_and_objects(world: BreachWorld) -> None:
    with TrailDelivery(lambda region: world.client("logs", region)) as delivery:
        _attacker(world, delivery)
        sources = [TrailSource(r, world.layout.by_region(r).trail_log_group,
                               world.client("logs", r), world.client("cloudtrail", r))
                   for r in (PRIMARY, STANDBY)]
        scope = principal_scope(Principal("access-key", world.access_key), sources,
                                NOW - timedelta(hours=1), NOW + timedelta(minutes=1))
    # Four calls, read from both the log group and the event history, counted once.
    assert scope["events"] == 4
    assert scope["apis"]["s3.amazonaws.com:GetObject"] == 2
    assert scope["errors"] == {"AccessDenied": 1}
    assert scope["buckets"] == {world.layout.primary.backup_bucket: 2}
    assert scope["objectCount"] == 2
    read = {s["source"]: s for s in scope["sources"]}
    assert read[f"{PRIMARY} CloudTrail LookupEvents"]["records"] == 2  # management only
    assert read[f"{PRIMARY} {world.layout.primary.trail_log_group}"]["records"] == 4
    assert all(s["read"] for s in scope["sources"])


def test_a_source_that_cannot_be_read_is_named_not_skipped(world: BreachWorld) -> None:
    sources = [TrailSource(STANDBY, "/x", None, None, "EndpointConnectionError: down")]
    scope = principal_scope(Principal("iam-role", "caresync-primary-app"), sources,
                            NOW - timedelta(hours=1), NOW)
    assert scope["events"] == 0
    assert scope["sources"] == [{"source": f"{STANDBY} trail logs", "read": False,
                                 "records": 0, "truncated": False,
                                 "reason": "EndpointConnectionError: down"}]


def test_pgaudit_lines_say_which_phi_tables_a_role_touched(database: PostgresCluster) -> None:
    with psycopg.connect(database.dsn(DATABASE), autocommit=True) as conn:
        ensure_audit(conn, ("public.patients",))
    with psycopg.connect(host="127.0.0.1", port=database.port, dbname=DATABASE, user=APP,
                         password=FIRST[APP], autocommit=True) as app:
        app.execute("SELECT * FROM patients").fetchall()
        app.execute("SELECT name FROM patients WHERE id = 1").fetchall()
        app.execute("INSERT INTO patients VALUES (%s, 'x') ON CONFLICT DO NOTHING",
                    (int(NOW.timestamp()) % 100000,))
    # The logging collector writes asynchronously: wait for the last statement's line.
    deadline = time.monotonic() + 10
    while "WRITE,INSERT" not in server_log(database) and time.monotonic() < deadline:
        time.sleep(0.05)
    scope = database_scope(iter(server_log(database).splitlines()), [APP, "analyst"],
                           ["public.patients"])
    app_scope = scope[APP]
    assert app_scope["phiTables"]["public.patients"]["statements"] >= 3
    assert app_scope["statements"]["READ SELECT"] >= 2
    assert app_scope["statements"]["WRITE INSERT"] >= 1
    assert scope["analyst"]["auditLines"] == 0


@pytest.mark.parametrize(("line", "role", "rows"), [
    ("2026-11-30 03:01:02 UTC:10.0.1.5(5432):caresync_app@caresync:[1234]:LOG:  AUDIT: "
     'OBJECT,3,1,READ,SELECT,TABLE,public.patients,"select * from patients, x",<not logged>,42',
     "caresync_app", "42"),
    ("2026-11-30 03:01:02.123 UTC:[local]:postgres@caresync:[99]:LOG:  AUDIT: SESSION,1,1,"
     "ROLE,GRANT,,,GRANT SELECT ON patients TO analyst,<not logged>", "postgres", None),
])
def test_rds_log_lines_parse(line: str, role: str, rows: str | None) -> None:
    parsed = parse_audit_line(line)
    assert parsed is not None and parsed[0] == role
    assert (parsed[1][9] if len(parsed[1]) > 9 else None) == rows
    assert parse_audit_line("2026-11-30 LOG:  connection received") is None
