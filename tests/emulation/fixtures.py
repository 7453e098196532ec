"""Fixtures for tests that talk to the emulated AWS (the moto server of the drill)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from caresync_dr.emulation.server import Emulator, reset_backends


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as em:
        yield em


@pytest.fixture
def aws(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """The module's emulator, empty and fully reachable, with this process pointed at it."""
    reset_backends()
    emulator.restore()
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    yield emulator
    emulator.restore()
    reset_backends()
