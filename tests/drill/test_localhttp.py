"""The drill's local servers: a client that hangs up mid-answer prints no traceback."""

from __future__ import annotations

import http.client
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from caresync_dr.drill.localhttp import ServerStuckError, serve, stop


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
        stop(server)
    assert ("Traceback" in capfd.readouterr().err) is traceback


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_stop_ends_a_serving_server_and_frees_its_port() -> None:
    server = serve(_Ok, 0, "test-server")
    port = server.server_address[1]
    started = time.monotonic()
    stop(server)
    assert time.monotonic() - started < 2
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_stop_fails_loudly_when_the_serving_thread_does_not_stop() -> None:
    """socketserver's ``shutdown()`` waits, without a limit, for ``serve_forever`` to say it
    ended: a server whose serving thread is gone (here: never started) hangs its caller
    forever. ``stop`` gives up after its limit, closes the socket, and says so."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)     # nobody serves it
    port = server.server_address[1]
    started = time.monotonic()
    with pytest.raises(ServerStuckError, match=r"shutdown of .* did not end within 0\.3 s"):
        stop(server, seconds=0.3)
    assert time.monotonic() - started < 2
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)
