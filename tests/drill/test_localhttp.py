"""The drill's local servers: a client that hangs up mid-answer prints no traceback."""

from __future__ import annotations

import http.client
import time
from http.server import BaseHTTPRequestHandler

import pytest

from caresync_dr.drill.localhttp import serve


class _HangsUp(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")   # what writing to a gone client raises

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Fails(_HangsUp):
    def do_GET(self) -> None:
        raise RuntimeError("a real bug")


@pytest.mark.parametrize(("handler", "traceback"), [(_HangsUp, False), (_Fails, True)])
def test_only_real_errors_print_a_traceback(handler: type[BaseHTTPRequestHandler],
                                            traceback: bool,
                                            capfd: pytest.CaptureFixture[str]) -> None:
    server = serve(handler, 0, "test-server")
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
        connection.request("GET", "/")
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            connection.getresponse()
        time.sleep(0.1)
    finally:
        server.shutdown()
        server.server_close()
    assert ("Traceback" in capfd.readouterr().err) is traceback
