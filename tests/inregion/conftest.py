from collections.abc import Iterator

import pytest

from caresync_dr.emulation.patching import restore_all
from tests.emulation.fixtures import aws, emulator

__all__ = ["aws", "emulator"]


@pytest.fixture(autouse=True)
def _moto_as_moto() -> Iterator[None]:
    """Each test starts from moto's own behaviour, whatever an earlier test left armed."""
    restore_all()
    yield
    restore_all()
