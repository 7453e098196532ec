"""A world ends completely: nothing it started acts in the next one.

moto's backends are process-global and every world seeds the same identifiers, so a promotion
timer of one world that fires later detaches the next world's replica (the fault walk runs
hundreds of worlds back to back: case 127's timer firing into case 128).
"""

from __future__ import annotations

import threading
import time

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.rds.models import rds_backends

from caresync_dr.emulation import rds
from tests.failover import faults
from tests.failover import world as w

DELAY = 0.3   # seconds the first world's promotion stays "modifying"


def test_a_promotion_in_flight_when_its_world_ends_never_reaches_the_next_world() -> None:
    with faults.emulated_world(promote_seconds=DELAY) as first:
        first.session.client("rds", region_name=w.STANDBY).promote_read_replica(
            DBInstanceIdentifier=w.STANDBY_DB)
        assert first.db(w.STANDBY, w.STANDBY_DB).status == "modifying"
    assert not [t.name for t in threading.enumerate() if t.name.startswith("promote-")], \
        "a promotion timer outlived its world"
    with faults.emulated_world(promote_seconds=60) as second:
        time.sleep(3 * DELAY)                 # past the first world's promotion time
        replica = second.db(w.STANDBY, w.STANDBY_DB)
        assert replica.source_db_instance_identifier, "the first world's timer promoted it"
        assert replica.status == "available"


def test_a_promotion_clock_used_as_a_method_ends_with_its_test() -> None:
    """``w.slow_promotion`` (a ``ReplicaPromotions`` only ever used as moto's method, never
    armed, so never disarmed) is stopped at the test's end by the conftest's autouse fixture:
    here, by calling what it calls."""
    mark = rds.clock_mark()
    with faults.emulated_world(promote_seconds=60):
        method = w.slow_promotion(60, [])
        backend = rds_backends[DEFAULT_ACCOUNT_ID][w.STANDBY]
        method(backend, {"db_instance_identifier": w.STANDBY_DB})
        assert [t for t in threading.enumerate() if t.name == f"promote-{w.STANDBY_DB}"]
    assert rds.stop_clocks(made_since=mark) == []
    assert not [t for t in threading.enumerate() if t.name == f"promote-{w.STANDBY_DB}"]
