"""One client cache for every run's threads (caresync_dr.aws.ClientCache): a thread building a
slow client (EC2's model and client class take tens of milliseconds) must not hold up another
thread whose client is already built. Before, failover's RegionClients held its region's
mutex while building, so the preflight's S3 read waited for the prewarm thread's EC2 client
(about 30 ms on the way to the promotion request)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import botocore.session

from caresync_dr.aws import STANDBY, AwsClients, ClientCache, RegionClients, session_hooks_lock
from caresync_dr.operations.recorder import ApiCallRecorder


def test_a_built_client_is_returned_while_another_is_being_built() -> None:
    clients = RegionClients(AwsClients("us-west-2", STANDBY))
    built = object()
    clients.adopt("s3", built)
    building, release = threading.Event(), threading.Event()

    def slow() -> object:
        building.set()
        release.wait(10)
        return object()

    builder = threading.Thread(target=lambda: clients._get("ec2", slow))
    builder.start()
    try:
        assert building.wait(5)
        got: list[object] = []
        reader = threading.Thread(target=lambda: got.append(clients._get("s3", object)))
        reader.start()
        reader.join(2)
        assert got == [built], "the built S3 client waited for the EC2 client being built"
    finally:
        release.set()
        builder.join(10)


def test_each_client_is_built_once_and_builds_never_overlap() -> None:
    """botocore's client creation is not thread-safe: one build at a time, process-wide,
    across caches (regions), and a client is built once however many threads ask."""
    caches = [ClientCache(), ClientCache()]
    active, overlaps, builds = [0], [0], [0]
    guard = threading.Lock()
    start = threading.Barrier(8)

    def factory() -> object:
        with guard:
            active[0] += 1
            builds[0] += 1
            overlaps[0] += active[0] > 1
        threading.Event().wait(0.01)
        with guard:
            active[0] -= 1
        return object()

    def ask(i: int) -> None:
        start.wait(5)
        for name in ("a", "b"):
            caches[i % 2]._get(name, factory)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert overlaps[0] == 0
    assert builds[0] == 4     # two names in each of two caches


def _waits_for_creation_lock(action: Callable[[], object]) -> bool:
    """Does ``action`` (on another thread) wait while this thread holds the creation lock?"""
    done = threading.Event()

    def act() -> None:
        action()
        done.set()

    with session_hooks_lock():
        worker = threading.Thread(target=act, daemon=True)
        worker.start()
        waited = not done.wait(0.5)
    worker.join(10)
    assert done.is_set(), "the action never finished"
    return waited


def test_a_client_built_outside_a_cache_waits_for_a_build_in_progress() -> None:
    """The notifier's SNS and Secrets Manager clients (caresync_dr/notify) and the inventory
    reader are built with AwsClients directly, on their own threads, from the run's session:
    they built while the prewarm thread and the steps built theirs in a ClientCache, which the
    process-wide lock is there to prevent."""
    session = botocore.session.Session()
    session.set_credentials("testing", "testing")
    assert _waits_for_creation_lock(lambda: AwsClients("us-west-2", STANDBY, session).sns())


def test_hooks_are_not_registered_on_a_session_while_one_of_its_clients_is_built() -> None:
    """A client copies the session's event hooks as it is built; the dry-run recorder of a run
    registered and removed its hook on the shared session while other threads built clients."""
    session = botocore.session.Session()
    recorder = ApiCallRecorder()
    assert _waits_for_creation_lock(lambda: recorder.install(session))
    assert _waits_for_creation_lock(recorder.uninstall)


def test_a_cache_builds_through_aws_clients_without_deadlocking_itself() -> None:
    """ClientCache holds the lock around the AwsClients method that takes it again."""
    session = botocore.session.Session()
    session.set_credentials("testing", "testing")
    clients = RegionClients(AwsClients("us-west-2", STANDBY, session))
    built: list[object] = []
    worker = threading.Thread(target=lambda: built.append(clients.ssm()), daemon=True)
    worker.start()
    worker.join(10)
    assert built and built[0] is clients.ssm()
