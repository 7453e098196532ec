"""The test world's HTTP server (the health URL and the chat webhook) answers a client that
hung up, e.g. a verification GET that timed out on a loaded machine, without socketserver's
traceback: printed from a handler thread that outlives its test, it landed in the next test's
redirected stderr and failed the hostile-input harness's "no traceback" check."""

from __future__ import annotations

import contextlib
import io
import socket
import struct
import threading
import time

from caresync_dr.drill import localhttp
from tests.failover.world import start_health_server


def test_a_client_that_hung_up_prints_no_traceback() -> None:
    answered = threading.Event()

    def answer() -> dict[str, str]:
        time.sleep(0.3)      # the client gives up meanwhile
        answered.set()
        return {"status": "ok"}

    server = start_health_server(answer)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            client = socket.create_connection(("127.0.0.1", server.server_address[1]))
            client.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n")
            # an abortive close (RST), as a client whose timeout fired
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()
            assert answered.wait(5)
            time.sleep(0.3)      # the handler writes its answer to the gone client
    finally:
        localhttp.stop(server)
    assert "Traceback" not in err.getvalue(), err.getvalue()
