"""Start-up tuning for a command whose first second counts (failover.py: the RTO runs from it).

Its start allocates some 60,000 objects that live as long as the process: modules, botocore's
service models, endpoint rules and client classes. With CPython's default threshold (a
collection every 700 new container objects) the cyclic garbage collector walks them about 80
times before the promotion request, ~30 ms of CPU (measured with ``gc.callbacks`` in
``bench/failover_startup.py``'s child). A short-lived command makes little cyclic garbage, so
collecting every :data:`YOUNG_THRESHOLD` objects costs a few MB at most and saves that CPU.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 50_000


def collect_less_often() -> None:
    """Raise the youngest generation's threshold to :data:`YOUNG_THRESHOLD` (never lower
    it); the older generations keep theirs."""
    young, middle, old = gc.get_threshold()
    if young and young < YOUNG_THRESHOLD:
        gc.set_threshold(YOUNG_THRESHOLD, middle, old)
