"""A lease renewal never silently overwrites a takeover. SSM has no conditional write: the
heartbeat reads the lock, sees its own token, and overwrites it with a new heartbeat. A run
that took the lock over (it judged this one stale) in between was overwritten, and this run
went on while the other believed it held the lock. Found as a flaky test
(test_a_run_that_loses_its_lock_stops_and_leaves_the_new_holders_lock, whose 0.1 s heartbeat
makes the window likely under load). The renewal now compares SSM's versions: a write in
between means a takeover, whose record is put back, and this run stops."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
from moto import mock_aws

from caresync_dr.operations.lock import DEFAULT_HEARTBEAT_SECONDS, LeaseLock, LockHolder

NAME = "/caresync-dr/test/lock"


@contextlib.contextmanager
def held_lock(heartbeat_seconds: float = 0.05
              ) -> Iterator[tuple[Any, Any, LeaseLock, LockHolder]]:
    """In moto: (this run's SSM client, another process's, the lock, this run's holder), the
    lock taken by this run."""
    with mock_aws():
        ssm = boto3.client("ssm", region_name="us-west-2")
        other_client = boto3.client("ssm", region_name="us-west-2")
        lock = LeaseLock(ssm, NAME, operation="test")
        me = LockHolder.me("run-mine", heartbeat_seconds=heartbeat_seconds)
        assert lock.acquire(me) is None
        yield ssm, other_client, lock, me


def test_a_takeover_between_the_renewals_read_and_write_wins() -> None:
    with held_lock() as (ssm, other_client, lock, me):
        theirs = dataclasses.replace(LockHolder.me("run-theirs", heartbeat_seconds=0.05),
                                     holder="bob@other-laptop")
        took_over = threading.Event()

        def take_over_first(params: dict[str, Any], **_: Any) -> None:
            # The first renewal: this run has read its own record; the other run writes now.
            if not took_over.is_set() and json.loads(params["Value"])["token"] == me.token:
                other_client.put_parameter(Name=NAME, Value=theirs.to_json(), Type="String",
                                           Overwrite=True)
                took_over.set()

        ssm.meta.events.register("provide-client-params.ssm.PutParameter", take_over_first)
        lost = threading.Event()
        lock.start_heartbeat(me, on_lost=lost.set)
        try:
            assert lost.wait(10), "the renewal overwrote the takeover and went on"
        finally:
            lock.stop_heartbeat()
        assert took_over.is_set()
        value = ssm.get_parameter(Name=NAME)["Parameter"]["Value"]
        assert json.loads(value)["token"] == theirs.token, "the other run's record is gone"
        assert lock.lost and "taken over by bob@other-laptop" in lock.lost_reason


def test_a_renewal_retried_after_its_answer_was_lost_keeps_the_lease() -> None:
    """A renewal whose first attempt was applied and its answer lost (a reset connection,
    a throttled answer) is retried by botocore: SSM then holds two versions of this run's
    record, not a takeover. Before, the version gap alone meant a takeover and the run
    stopped (the fault walk's 'lost ssm.PutParameter' case)."""
    with held_lock() as (ssm, other_client, lock, me):
        retried = threading.Event()

        def first_attempt_applied(params: dict[str, Any], **_: Any) -> None:
            if not retried.is_set() and json.loads(params["Value"])["token"] == me.token:
                retried.set()
                other_client.put_parameter(Name=NAME, Value=params["Value"], Type="String",
                                           Overwrite=True)

        ssm.meta.events.register("provide-client-params.ssm.PutParameter", first_attempt_applied)
        lost = threading.Event()
        lock.start_heartbeat(me, on_lost=lost.set)
        try:
            assert retried.wait(10)
            assert not lost.wait(0.5), f"lost the lease to its own retry: {lock.lost_reason}"
        finally:
            lock.stop_heartbeat()
        assert not lock.lost
        assert json.loads(ssm.get_parameter(Name=NAME)["Parameter"]["Value"])["token"] == me.token


def _take_over_at_first_write(ssm: Any, theirs: LockHolder) -> threading.Event:
    """Another run writes its takeover just before this client's next PutParameter or
    DeleteParameter (whichever comes first): the moment between a read and a write."""
    other_client = boto3.client("ssm", region_name="us-west-2")
    took_over = threading.Event()

    def take_over(**_: Any) -> None:
        if not took_over.is_set():
            took_over.set()
            other_client.put_parameter(Name=NAME, Value=theirs.to_json(), Type="String",
                                       Overwrite=True)

    for operation in ("PutParameter", "DeleteParameter"):
        ssm.meta.events.register(f"provide-client-params.ssm.{operation}", take_over)
    return took_over


def test_a_takeover_between_the_releases_read_and_delete_keeps_its_lock() -> None:
    """The release read its own record, then deleted: a run that took the lock over in
    between (it judged this one stale) lost its lock silently. The release now writes a last
    renewal and compares versions before it deletes; the takeover's record is put back."""
    with held_lock() as (ssm, _, lock, me):
        theirs = dataclasses.replace(LockHolder.me("run-theirs"), holder="bob@other-laptop")
        took_over = _take_over_at_first_write(ssm, theirs)
        result = lock.release(me)
        assert took_over.is_set()
        found = ssm.get_parameter(Name=NAME)["Parameter"]["Value"]  # raises when deleted
        assert json.loads(found)["token"] == theirs.token, "the takeover's record is gone"
        assert not result.released
        assert result.error is not None and "bob@other-laptop" in result.error


def test_a_release_whose_last_renewal_answer_is_lost_still_deletes() -> None:
    """The last renewal applied, its answer lost, retried by botocore: two versions of this
    run's own record are not a takeover, and the lock is deleted."""
    with held_lock(heartbeat_seconds=DEFAULT_HEARTBEAT_SECONDS) as (ssm, other_client, lock, me):
        retried = threading.Event()

        def first_attempt_applied(params: dict[str, Any], **_: Any) -> None:
            if not retried.is_set():
                retried.set()
                other_client.put_parameter(Name=NAME, Value=params["Value"], Type="String",
                                           Overwrite=True)

        ssm.meta.events.register("provide-client-params.ssm.PutParameter", first_attempt_applied)
        result = lock.release(me)
        assert retried.is_set()
        assert result.released, result.error
        assert lock.holder() is None


def test_a_release_of_an_unchanged_lock_deletes_it() -> None:
    with held_lock(heartbeat_seconds=DEFAULT_HEARTBEAT_SECONDS) as (_, _, lock, me):
        assert lock.release(me).released
        assert lock.holder() is None
