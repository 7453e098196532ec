"""PromoteReadReplica as RDS answers it, as a drop-in for ``RDSBackend.promote_read_replica``.

The behaviour (RDS's refusals, ``modifying`` until the promotion finishes, then detached and
available; applied in moto's backend whether or not the caller sees the answer) is
:class:`caresync_dr.emulation.rds.ReplicaPromotions`, the one promotion model the drill and the
failover tests share; this is its replacement-method form, for tests that install it with
``monkeypatch`` or by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from caresync_dr.emulation.rds import ReplicaPromotions


def promote_like_rds(account_id: str, seconds: float = 0.0,
                     finished: Callable[[str], None] | None = None) -> Callable[..., Any]:
    """A replacement for ``moto.rds.models.RDSBackend.promote_read_replica``.

    ``seconds``: how long the instance stays ``modifying`` (0: detached before the answer).
    ``finished(identifier)`` is called once the promotion is complete. ``account_id`` is kept
    for the callers; the backend the call reaches names its own account."""
    del account_id

    def done(record: Any) -> None:
        if finished is not None:
            finished(record.identifier)

    return ReplicaPromotions(delay_seconds=seconds, on_finished=done).backend_method()
