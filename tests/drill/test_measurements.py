"""Data-loss accounting: a pure function over the write ledger."""

from __future__ import annotations

from caresync_dr.drill.load import Ack, data_loss

ACKS = [Ack(seq=1, database="primary", acked_at=10.0),
        Ack(seq=2, database="primary", acked_at=10.2),
        Ack(seq=3, database="primary", acked_at=10.7),
        Ack(seq=4, database="standby", acked_at=20.0)]


def test_no_loss_when_the_survivor_holds_every_acknowledged_write() -> None:
    loss = data_loss(ACKS, "primary", present={1, 2, 3, 4})
    assert (loss.acknowledged, loss.missing, loss.seconds) == (3, 0, 0.0)


def test_loss_counts_missing_writes_and_the_gap_to_the_last_one_kept() -> None:
    loss = data_loss(ACKS, "primary", present={1, 4})
    assert (loss.missing, loss.seconds) == (2, 0.7)


def test_losing_everything_measures_from_the_first_acknowledgement() -> None:
    loss = data_loss(ACKS, "primary", present=set())
    assert (loss.missing, loss.seconds) == (3, 0.7)
