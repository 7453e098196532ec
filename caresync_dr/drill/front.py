"""The public health URL: what a browser gets for https://<domain>/api/health.

A client resolves the record name (the resolver's current answer) and talks to that site, so
this front proxies each GET to the site app the resolver answers and adds ``X-Caresync-Site``.
When the answered site is down, the client gets what a browser would: a 502 from here.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from caresync_dr.drill.localhttp import send_json, serve
from caresync_dr.emulation.route53 import DnsResolver
from caresync_dr.pg.cluster import free_port


class PublicFront:
    def __init__(self, resolver: DnsResolver) -> None:
        self.resolver = resolver
        self.port = free_port()
        self._server: ThreadingHTTPServer | None = None

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/health"

    def start(self) -> None:
        resolver = self.resolver

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                answer = resolver.current()
                base = resolver.site_url()
                site = answer.set_identifier if answer else "-"
                try:
                    if base is None:
                        raise OSError("the record answers no known site")
                    with urllib.request.urlopen(base + self.path, timeout=2) as resp:
                        code, body = resp.status, resp.read()
                except urllib.error.HTTPError as exc:
                    code, body = exc.code, exc.read()
                except OSError as exc:
                    code, body = 502, json.dumps({"status": "error", "error": str(exc)}).encode()
                send_json(self, code, body, {"X-Caresync-Site": site})

            def log_message(self, *args: Any) -> None:
                """Quiet."""

        self._server = serve(Handler, self.port, "front")

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
