"""Small pieces on their own: bounded polling, the /api/health contract, the lag reading."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto import mock_aws

from caresync_dr.drill import localhttp
from caresync_dr.failover import probes
from caresync_dr.failover.errors import StepFailedError, WaitTimeoutError
from caresync_dr.failover.polling import PollPolicy, wait_until
from tests.failover import world as w


def test_intervals_back_off_to_the_cap() -> None:
    next_interval = PollPolicy(interval=1, max_interval=3, timeout=60).intervals()
    assert [next_interval() for _ in range(5)] == [1, 1.5, 2.25, 3, 3]


def test_wait_gives_up_naming_the_last_state() -> None:
    with pytest.raises(WaitTimeoutError, match=r"gave up waiting for the thing after .*: "
                                               r"still 3 to go"):
        wait_until("the thing", lambda: 3, lambda n: f"still {n} to go",
                   PollPolicy(interval=0.01, max_interval=0.02, timeout=0.05))


def test_wait_returns_the_state_that_satisfied_it() -> None:
    values = iter([3, 2, 1, 0])
    assert wait_until("zero", lambda: next(values), lambda n: None if n == 0 else "not yet",
                      PollPolicy(interval=0.001, max_interval=0.001, timeout=5)) == 0


def test_wait_stops_when_the_run_is_interrupted() -> None:
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    with pytest.raises(StepFailedError, match="interrupted"):
        wait_until("never", lambda: 1, lambda n: "no", PollPolicy(1, 1, 30), stop)


@pytest.mark.parametrize(("answer", "ok", "fragment"), [
    ({"status": "ok", "region": "us-west-2", "database": {"writable": True, "role": "primary"}},
     True, "status ok from us-west-2, database writable"),
    ({"status": "ok", "database": {"writable": True, "role": "primary"}}, True, "writable"),
    ({"status": "ok", "region": "us-east-1", "database": {"writable": True}}, False,
     "answered from us-east-1, not us-west-2"),
    ({"status": "ok", "region": "us-west-2", "database": {"writable": False, "role": "replica"}},
     False, "database is not writable yet (role 'replica')"),
    ({"status": "degraded", "database": {"writable": True}}, False, "status is 'degraded'"),
    ({"status": "ok"}, False, "database is not writable yet"),
])
def test_health_contract(answer: dict[str, Any], ok: bool, fragment: str) -> None:
    server = w.start_health_server(lambda: answer)
    try:
        reading = probes.health_of(f"http://127.0.0.1:{server.server_address[1]}/api/health",
                                   "us-west-2")
    finally:
        localhttp.stop(server)
    assert reading.ok is ok
    assert fragment in reading.detail


@pytest.mark.parametrize(("require_region", "ok"), [(True, False), (False, True)])
def test_health_without_region_counts_only_where_region_is_optional(
        require_region: bool, ok: bool) -> None:
    """--scope region: an answer that does not name its region may come from the old site
    (DNS not moved yet), so it does not count. --scope database: one region, optional."""
    answer = {"status": "ok", "database": {"writable": True, "role": "primary"}}
    server = w.start_health_server(lambda: answer)
    try:
        reading = probes.health_of(f"http://127.0.0.1:{server.server_address[1]}/api/health",
                                   "us-west-2", require_region=require_region)
    finally:
        localhttp.stop(server)
    assert reading.ok is ok, reading.detail
    if not ok:
        assert "does not name its region (expected us-west-2)" in reading.detail


def test_health_of_an_unreachable_url_is_not_ok() -> None:
    from caresync_dr.pg.cluster import free_port

    reading = probes.health_of(f"http://127.0.0.1:{free_port()}/api/health", None,
                               timeout=(0.5, 0.5))
    assert not reading.ok and "did not answer: ConnectionError" in reading.detail


def test_lag_after_replication_stopped_is_the_last_known_value() -> None:
    """RDS reports ReplicaLag -1 once replication stops (source region gone): the exposure is
    the last non-negative datapoint, and replication is reported inactive."""
    with mock_aws():
        w.put_lag(w.STANDBY, "db", 4.0, minutes_ago=3)
        w.put_lag(w.STANDBY, "db", 7.0, minutes_ago=2)
        w.put_lag(w.STANDBY, "db", -1, minutes_ago=1)
        reading = probes.replica_lag(w.client("cloudwatch", w.STANDBY), "db", 15)
        assert reading.seconds == 7.0 and reading.replication_active is False
        assert reading.at is not None
        assert datetime.now(UTC) - reading.at < timedelta(minutes=3)
        assert "replication has since stopped" in reading.describe()
        empty = probes.replica_lag(w.client("cloudwatch", w.STANDBY), "other", 15)
        assert empty.seconds is None and "unknown" in empty.describe()
