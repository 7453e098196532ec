"""Every bad input of the catalogue (``hostile_inputs.py``) is refused cleanly: exit 2, one clear
line naming the problem, no traceback, nothing changed (issue 10, items 10, 11, 15)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from caresync_dr.inventory import Inventory
from tests.failover import faults
from tests.failover import world as w
from tests.failover.hostile_inputs import ALL, ENV_KNOBS, BadInput, refused_cleanly, try_input
from tests.failover.test_region_failover import assert_untouched


@pytest.fixture(scope="module")
def shared_world() -> Iterator[w.World]:
    """One emulated pair of sites for the whole catalogue (seeding it per case would cost
    most of the time): every case must leave it untouched, which each test asserts."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in (("AWS_ACCESS_KEY_ID", "testing"),
                            ("AWS_SECRET_ACCESS_KEY", "testing"),
                            ("AWS_DEFAULT_REGION", "us-east-1"),
                            ("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")):
            patch.setenv(name, value)
        for name in ENV_KNOBS:
            patch.delenv(name, raising=False)
        with faults.emulated_world() as world:
            yield world


@pytest.mark.parametrize("case", ALL, ids=[c.name for c in ALL])
def test_bad_input_is_refused_cleanly(case: BadInput, shared_world: w.World,
                                      tmp_path: Path) -> None:
    refusal = try_input(case, shared_world, tmp_path)
    assert refused_cleanly(case, refusal) == [], refusal
    assert_untouched(shared_world)


def test_the_catalogue_covers_every_named_case() -> None:
    """Issue 10's named inputs are in the catalogue (so the figures count them)."""
    names = {c.name for c in ALL}
    for named in ("backupRetentionDays 0", "backupRetentionDays 36", "production capacity 0/0/0",
                  "duplicate key", "health URL without scheme", "--wait-timeout nan",
                  "--lock-heartbeat-seconds nan", "--inventory not UTF-8",
                  "--inventory nested deeply", "lock parameter not a path"):
        assert named in names, named


def test_the_seeded_inventory_itself_is_valid(shared_world: w.World) -> None:
    """The catalogue mutates one field of a valid document: the document must be valid."""
    from caresync_dr.inventory import parse_inventory

    assert isinstance(parse_inventory(shared_world.inventory.to_json()), Inventory)
