"""A tiny CareSync site app: ``/api/health`` backed by the site's database.

Health contract (what ``scripts/failover.py`` verifies through the public URL)::

    200 {"status": "ok", "site": "primary", "region": "us-east-1",
         "database": {"reachable": true, "role": "primary"|"standby", "writable": true|false,
                      "user": "caresync_app"}}
    503 {"status": "error", "site": ..., "database": {"reachable": false, "error": "..."}}

``role`` is ``standby`` while PostgreSQL is in recovery (a replica), ``writable`` is false then;
``user`` is the role the app logged in as (drill evidence, not part of the contract).
A *broken release* (the bad-release drill: instances booted from a launch template version whose
AMI is broken) answers every request 500, whatever its database.
The app finds its database through ``locate`` on every (re)connection -- in the drill that is
what its instances read at boot (``boot``), so an in-region failover that repoints the endpoint
parameter is followed once the instances are replaced, and :meth:`SiteApp.reconnect` makes the
next request log in afresh, as a newly booted instance does.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg

from caresync_dr.drill.localhttp import send_json, serve
from caresync_dr.pg.cluster import free_port

log = logging.getLogger(__name__)


class SiteApp:
    """One site's app server on 127.0.0.1 (a free port), in a thread of the drill."""

    def __init__(self, site: str, region: str, locate: Callable[[], str | None]) -> None:
        self.site = site
        self.region = region
        self.locate = locate
        self.port = free_port()
        self._conn: psycopg.Connection[Any] | None = None
        self._conn_dsn: str | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.release: str | None = None  # the AMI its instances booted from
        self.broken = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def health(self) -> tuple[int, dict[str, Any]]:
        if self.broken:
            return 500, {"status": "error", "site": self.site, "region": self.region,
                         "release": self.release, "error": "this release fails every request"}
        with self._lock:
            try:
                dsn = self.locate()
                if dsn is None:
                    raise LookupError("no database endpoint configured")
                if self._conn is None or self._conn.closed or self._conn_dsn != dsn:
                    if self._conn is not None:
                        self._conn.close()
                    self._conn = psycopg.connect(dsn, connect_timeout=1, autocommit=True)
                    self._conn_dsn = dsn
                row = self._conn.execute("select pg_is_in_recovery(), current_user").fetchone()
                in_recovery = bool(row and row[0])
                user = str(row[1]) if row else None
            except (psycopg.Error, LookupError, OSError) as exc:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                return 503, {"status": "error", "site": self.site, "region": self.region,
                             "database": {"reachable": False, "error": str(exc).strip()[:200]}}
        return 200, {"status": "ok", "site": self.site, "region": self.region,
                     "database": {"reachable": True,
                                  "role": "standby" if in_recovery else "primary",
                                  "writable": not in_recovery, "user": user}}

    def start(self) -> None:
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/api/health":
                    self.send_error(404)
                    return
                code, body = app.health()
                send_json(self, code, json.dumps(body).encode())

            def log_message(self, *args: Any) -> None:
                """Quiet: health checks poll many times a second."""

        self._server = serve(Handler, self.port, f"app-{self.site}")

    def reconnect(self) -> None:
        """Drop the connection: the next request logs in again with what ``locate`` gives."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def kill(self) -> None:
        """The app dies: its port refuses connections from now on."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def boot_release(self, image: str | None, broken: bool) -> None:
        """Fresh instances booted from ``image``: serving again (after a crash too), broken or
        not, logging in afresh."""
        self.release, self.broken = image, broken
        if self._server is None:
            self.start()
        self.reconnect()

    @property
    def running(self) -> bool:
        return self._server is not None
