"""RDS where moto differs: promotion that takes time and detaches, replication StatusInfos."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.rds.models import RDSBackend

from caresync_dr.emulation.rds import ReplicaPromotions, ReplicationStatus
from caresync_dr.emulation.server import Emulator


def _replica_pair() -> tuple[str, str]:
    east = boto3.client("rds", region_name="us-east-1")
    west = boto3.client("rds", region_name="us-west-2")
    source = east.create_db_instance(DBInstanceIdentifier="db-east", Engine="postgres",
                                     DBInstanceClass="db.r6g.large", AllocatedStorage=100,
                                     MasterUsername="caresync", MasterUserPassword="x" * 12)
    arn = source["DBInstance"]["DBInstanceArn"]
    west.create_db_instance_read_replica(DBInstanceIdentifier="db-west",
                                         SourceDBInstanceIdentifier=arn)
    return arn, "db-west"


def _west(identifier: str = "db-west") -> dict[str, object]:
    west = boto3.client("rds", region_name="us-west-2")
    return dict(west.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0])


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def test_promotion_takes_its_time_runs_the_real_action_and_detaches(aws: Emulator) -> None:
    _source_arn, replica = _replica_pair()
    promoted: list[float] = []
    release = threading.Event()

    def real_promotion() -> None:  # e.g. pg_ctl promote; held until the test has looked
        promoted.append(time.monotonic())
        release.wait(10)

    with ReplicaPromotions(delay_seconds=0.3) as promotions:
        promotions.bind("us-west-2", replica, real_promotion)
        west = boto3.client("rds", region_name="us-west-2")

        asked = time.monotonic()
        answer = west.promote_read_replica(DBInstanceIdentifier=replica)["DBInstance"]
        assert answer["DBInstanceStatus"] == "modifying"
        assert answer.get("ReadReplicaSourceDBInstanceIdentifier")  # still replicating
        while not promoted:
            time.sleep(0.01)
        during = _west()  # the real promotion runs; RDS has not detached the replica yet
        assert during["DBInstanceStatus"] == "modifying"
        assert during.get("ReadReplicaSourceDBInstanceIdentifier")
        release.set()
        promotions.join()
    after = _west()
    assert after["DBInstanceStatus"] == "available"
    assert "ReadReplicaSourceDBInstanceIdentifier" not in after
    assert promoted[0] - asked >= 0.3
    source = boto3.client("rds", region_name="us-east-1").describe_db_instances(
        DBInstanceIdentifier="db-east")["DBInstances"][0]
    assert source["ReadReplicaDBInstanceIdentifiers"] == []
    assert promotions.records[0].completed_at is not None


def test_without_a_delay_the_promotion_waits_for_the_test(in_process: None) -> None:
    """The failover tests' clock: the same model in mock_aws, finished when they say so."""
    _replica_pair()
    with ReplicaPromotions() as promotions:
        boto3.client("rds", region_name="us-west-2").promote_read_replica(
            DBInstanceIdentifier="db-west")
        time.sleep(0.1)
        assert _west()["DBInstanceStatus"] == "modifying"
        record = promotions.finish("db-west")
        assert record is not None and record.region == "us-west-2"
        assert promotions.finish("db-west") is None  # nothing in flight any more
    assert _west()["DBInstanceStatus"] == "available"
    assert "ReadReplicaSourceDBInstanceIdentifier" not in _west()
    # Disarmed: moto's own method is back.
    assert RDSBackend.promote_read_replica.__name__ == "promote_read_replica"
    assert RDSBackend.promote_read_replica.__qualname__.startswith("RDSBackend.")


def test_promoting_what_is_no_available_replica_is_refused_as_rds_does(aws: Emulator) -> None:
    _replica_pair()
    with ReplicaPromotions(delay_seconds=None) as promotions:
        east = boto3.client("rds", region_name="us-east-1")
        west = boto3.client("rds", region_name="us-west-2")
        with pytest.raises(ClientError) as primary:
            east.promote_read_replica(DBInstanceIdentifier="db-east")
        west.promote_read_replica(DBInstanceIdentifier="db-west")
        with pytest.raises(ClientError) as again:  # in flight: modifying, not available
            west.promote_read_replica(DBInstanceIdentifier="db-west")
        promotions.finish("db-west")
        with pytest.raises(ClientError) as promoted:  # a standalone instance now
            west.promote_read_replica(DBInstanceIdentifier="db-west")
    for refused, why in ((primary, "is not a read replica"), (again, "not in available state"),
                         (promoted, "is not a read replica")):
        assert refused.value.response["Error"]["Code"] == "InvalidDBInstanceState"
        assert why in refused.value.response["Error"]["Message"]
    assert len(promotions.records) == 1


def test_a_failed_real_promotion_leaves_the_replica_attached(aws: Emulator) -> None:
    _replica_pair()

    def broken() -> None:
        raise RuntimeError("pg_ctl promote failed")

    with ReplicaPromotions(delay_seconds=0) as promotions:
        promotions.bind("us-west-2", "db-west", broken)
        boto3.client("rds", region_name="us-west-2").promote_read_replica(
            DBInstanceIdentifier="db-west")
        promotions.join()
    assert _west().get("ReadReplicaSourceDBInstanceIdentifier")
    assert promotions.records[0].error == "RuntimeError: pg_ctl promote failed"


def test_replicas_report_their_replication_status_while_armed(aws: Emulator) -> None:
    _replica_pair()
    status = {"db-west": "replicating"}
    assert "StatusInfos" not in _west()  # moto's gap
    with ReplicationStatus(lambda region, identifier: status[identifier]):
        assert _west()["StatusInfos"] == [
            {"StatusType": "read replication", "Normal": True, "Status": "replicating"}]
        status["db-west"] = "error"
        assert _west()["StatusInfos"] == [
            {"StatusType": "read replication", "Normal": False, "Status": "error"}]
        source = boto3.client("rds", region_name="us-east-1").describe_db_instances(
            DBInstanceIdentifier="db-east")["DBInstances"][0]
        assert "StatusInfos" not in source  # no replica, no replication status
    assert "StatusInfos" not in _west()


def test_a_disarmed_promotion_clock_never_acts_again(in_process: None) -> None:
    """A promotion still in flight when its emulator is disarmed (the world ended) must not
    finish later: moto's backends outlive the world, and the next world has the same
    identifiers (the fault walk's case 127 promoting case 128's replica)."""
    _replica_pair()
    promotions = ReplicaPromotions(delay_seconds=0.3).arm()
    boto3.client("rds", region_name="us-west-2").promote_read_replica(
        DBInstanceIdentifier="db-west")
    started = time.monotonic()
    promotions.disarm()
    assert time.monotonic() - started < 0.3, "disarm waited for the timer instead of ending it"
    time.sleep(0.6)                               # twice the delay: the timer's time is past
    assert _west().get("ReadReplicaSourceDBInstanceIdentifier"), "detached after disarm"
    assert promotions.finish("db-west") is None   # nor by hand: this clock has ended
    assert not [t for t in threading.enumerate() if t.name == "promote-db-west"]
