"""The two things the drill's local HTTP servers share: starting one, answering with JSON."""

from __future__ import annotations

import logging
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)


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


def send_json(handler: BaseHTTPRequestHandler, code: int, body: bytes,
              headers: dict[str, str] | None = None) -> None:
    handler.send_response(code)
    handler.send_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
