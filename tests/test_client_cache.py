"""One client cache for every run's threads (caresync_dr.aws.ClientCache): a thread building a
slow client (EC2's model and client class take tens of milliseconds) must not hold up another
thread whose client is already built. Before, failover's RegionClients held its region's
mutex while building, so the preflight's S3 read waited for the prewarm thread's EC2 client
(about 30 ms on the way to the promotion request)."""

from __future__ import annotations

import threading

from caresync_dr.aws import STANDBY, AwsClients, ClientCache, RegionClients


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
