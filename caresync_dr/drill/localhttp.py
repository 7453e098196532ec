"""What the drill's local HTTP servers share: starting one, stopping it (bounded), answering
with JSON."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)
# How long stop() waits, in seconds, for the serving thread to end: it polls every 0.05 s
# (serve), so it ends within a poll unless it is stuck.
STOP_SECONDS = 5.0


class ServerStuckError(RuntimeError):
    """A local server's serving thread did not stop when asked (see :func:`stop`)."""


class _QuietServer(ThreadingHTTPServer):
    """A client that hangs up before its answer is written (a probe that timed out, a
    killed site) is normal in a drill: one debug line, not socketserver's traceback."""

    def handle_error(self, request: object, client_address: tuple[str, int]) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            log.debug("client %s:%s went away: %s", *client_address[:2], error)
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


def serve(handler: type[BaseHTTPRequestHandler], port: int, name: str) -> ThreadingHTTPServer:
    """A threaded server on 127.0.0.1:port, serving in a daemon thread."""
    server = _QuietServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    # A short poll interval: shutdown() waits for the next poll.
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                     name=name).start()
    return server


def run_within(call: Callable[[], object], seconds: float, what: str) -> None:
    """``call()`` on a helper thread, waiting for it at most ``seconds``: for the start and stop
    of servers whose own waits have no limit (socketserver's ``shutdown``, moto's
    ``ThreadedMotoServer.start``/``stop``). A call still running past the limit is left (a
    daemon thread) and reported.

    Raises:
        ServerStuckError: ``call`` did not return within ``seconds`` (``what`` names it).
        BaseException: what ``call`` raised, re-raised here.
    """
    raised: list[BaseException] = []

    def target() -> None:
        try:
            call()
        except BaseException as exc:  # handed to the caller's thread below
            raised.append(exc)

    helper = threading.Thread(target=target, daemon=True, name=what)
    helper.start()
    helper.join(seconds)
    if helper.is_alive():
        raise ServerStuckError(f"{what} did not end within {seconds:g} s")
    if raised:
        raise raised[0]


def stop(server: ThreadingHTTPServer, seconds: float = STOP_SECONDS) -> None:
    """Stop serving and close the socket, waiting at most ``seconds`` for the serving thread.

    socketserver's ``shutdown()`` waits, without a limit, for ``serve_forever`` to say it
    ended: a serving thread that is stuck or gone would hang the caller (a test's teardown)
    forever. Past the limit the socket is closed anyway and the error names the server.

    Raises:
        ServerStuckError: the serving thread did not stop within ``seconds``.
    """
    host, port = server.server_address[:2]
    try:
        run_within(server.shutdown, seconds,
                   f"shutdown of {type(server).__name__} on {host!s}:{port}")
    finally:
        server.server_close()


def send_json(handler: BaseHTTPRequestHandler, code: int, body: bytes,
              headers: dict[str, str] | None = None) -> None:
    handler.send_response(code)
    handler.send_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
