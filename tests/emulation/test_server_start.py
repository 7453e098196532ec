"""The emulator's moto server starts, or says why, on a machine shared with other test runs."""

from __future__ import annotations

import socket
import threading
from typing import Any

import botocore.session
import pytest

from caresync_dr.emulation import server as server_module
from caresync_dr.emulation.server import ACCOUNT_ID, Emulator
from caresync_dr.pg import cluster


def test_a_port_taken_between_choosing_and_binding_does_not_hang_the_start(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two CI runs on one machine: a port chosen by probing (bind 0, close: ``free_port``) was
    free when probed and taken by the other run before the server bound it. moto's
    ``ThreadedMotoServer.start()`` binds in its server thread and waits for it without a
    timeout: the thread died on EADDRINUSE and every drill's first step waited forever."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    # What the probe answered this run: the port the other run holds now.
    monkeypatch.setattr(cluster, "free_port", lambda: port)
    monkeypatch.setattr(server_module, "free_port", lambda: port, raising=False)
    emulator = Emulator()
    starting = threading.Thread(target=emulator.start, daemon=True, name="emulator-start")
    starting.start()
    starting.join(10)
    try:
        assert not starting.is_alive(), "Emulator.start() still waits for a server that never bound"
        assert emulator.port not in (0, port)
        sts: Any = botocore.session.Session().create_client(
            "sts", region_name="us-west-2", endpoint_url=emulator.endpoint,
            aws_access_key_id="testing", aws_secret_access_key="testing")
        assert sts.get_caller_identity()["Account"] == ACCOUNT_ID
    finally:
        if not starting.is_alive():
            emulator.stop()
        taken.close()
