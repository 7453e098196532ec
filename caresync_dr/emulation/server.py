"""The emulated AWS: one moto server on 127.0.0.1 for every region, with a network gate.

Before a request is dispatched the gate reads where it goes (``network.request_scope``) and,
when the :class:`~caresync_dr.emulation.network.Outage` refuses that region or service, resets
the TCP connection (``SO_LINGER`` 0) without writing a byte, so botocore in any process raises
a connection error and runs its own retry logic.

The gate also keeps a :class:`CallLog` of the requests made by watched clients, refused ones
included: what the network saw of them, e.g. that the standby site's app read its credentials
in the standby region only. A client is named by the ``app/<id>`` token of its user agent
(``AWS_SDK_UA_APP_ID=<id>`` for a subprocess, ``Config(user_agent_extra="app/<id>")``).
"""

from __future__ import annotations

import logging
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from moto.core.base_backend import BackendDict
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

from caresync_dr.emulation.network import Outage, request_scope

log = logging.getLogger(__name__)

# The account the offline fakes (caresync_dr.offline.fakes) use, so ARNs built by the program
# and ARNs returned by the emulator agree. moto's server reads MOTO_ACCOUNT_ID per request.
ACCOUNT_ID = "111122223333"
_APP_ID_RE = re.compile(r"\bapp/([A-Za-z0-9._-]+)")


@dataclass(frozen=True)
class AwsRequest:
    """One request a watched client sent: where it went, what it asked, whether it got through."""

    at: float  # time.monotonic()
    app: str  # the client's app id (user agent ``app/<id>``)
    region: str | None
    service: str | None
    operation: str
    refused: bool

    @property
    def endpoint(self) -> str:
        """The AWS endpoint it was meant for, e.g. ``secretsmanager.us-west-2``."""
        return f"{self.service}.{self.region}"


@dataclass
class CallLog:
    """Requests of the watched apps (user agent ``app/<id>``), in arrival order."""

    watched: set[str] = field(default_factory=set)
    requests: list[AwsRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def watch(self, app: str) -> None:
        with self.lock:
            self.watched.add(app)

    def record(self, headers: Any, method: str, path: str, refused: bool) -> None:
        match = _APP_ID_RE.search(headers.get("User-Agent", "") or "")
        if match is None or match.group(1) not in self.watched:
            return
        region, service = request_scope(headers.get("Authorization", ""))
        target = headers.get("X-Amz-Target", "") or ""
        # JSON protocols name the operation in X-Amz-Target; REST ones by method and path.
        operation = (target.rsplit(".", 1)[-1] if target
                     else f"{method} {path.split('?', maxsplit=1)[0]}")
        with self.lock:
            self.requests.append(AwsRequest(at=time.monotonic(), app=match.group(1),
                                            region=region, service=service,
                                            operation=operation, refused=refused))

    def of(self, app: str, since: float = 0.0) -> list[AwsRequest]:
        with self.lock:
            return [r for r in self.requests if r.app == app and r.at >= since]


def _gated_handler(outage: Outage, calls: CallLog) -> type[MotoRequestHandler]:
    class GatedRequestHandler(MotoRequestHandler):
        def run_wsgi(self) -> None:
            refused = outage.blocks(*request_scope(self.headers.get("Authorization", "")))
            calls.record(self.headers, self.command, self.path, refused)
            if refused:
                # RST instead of FIN: the client sees "connection reset", never a status line.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.close_connection = True
                return
            super().run_wsgi()

        def log_request(self, *args: Any, **kwargs: Any) -> None:
            """Quiet: the drill logs what matters."""

    return GatedRequestHandler


class _Server(ThreadedMotoServer):
    """ThreadedMotoServer with the gated request handler, bound in :meth:`start` itself.

    moto's ``start()`` binds in its server thread and then waits, without a timeout, for that
    thread to say it is listening: a bind that fails (the port taken meanwhile, e.g. by
    another test run on this machine) kills the thread and leaves ``start()`` waiting forever.
    Here the socket is bound on the calling thread, on a port the kernel picks (0): nothing
    can take it between choosing and binding, and any bind error is raised to the caller."""

    def __init__(self, emulator: Emulator, port: int = 0) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        self.emulator = emulator

    def start(self) -> None:
        self._server = make_server(
            self._ip_address, self._port, DomainDispatcherApplication(create_backend_app),
            True, request_handler=_gated_handler(self.emulator.outage, self.emulator.calls))
        # A short poll interval: stop() waits for the next poll (0.5 s by default).
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True,
                                        name="aws-emulator")
        self._thread.start()
        self._server_ready_event.set()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_port)


class Emulator:
    """The emulated AWS: one moto server for every region, on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        self.outage = Outage()
        self.calls = CallLog()
        self.port = 0           # the kernel's choice, known once started
        self._server: _Server | None = None
        self._saved_account: str | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._saved_account = os.environ.get("MOTO_ACCOUNT_ID")
        os.environ["MOTO_ACCOUNT_ID"] = ACCOUNT_ID
        self._server = _Server(self)
        self._server.start()
        self.port = self._server.port
        log.debug("AWS emulator listening on %s", self.endpoint)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
            if self._saved_account is None:
                os.environ.pop("MOTO_ACCOUNT_ID", None)
            else:
                os.environ["MOTO_ACCOUNT_ID"] = self._saved_account

    def env(self) -> dict[str, str]:
        """Environment for processes that must talk to the emulator and nothing else."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-west-2",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }

    def take_down(self, regions: Iterable[str] = (), services: Iterable[str] = ()) -> None:
        """From now on, requests for these regions/services get their connection reset."""
        self.outage.take_down(regions, services)
        log.info("emulator: regions %s and services %s are now unreachable",
                 sorted(self.outage.regions) or "-", sorted(self.outage.services) or "-")

    def restore(self) -> None:
        self.outage.restore()

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def reset_backends() -> None:
    """Forget every emulated resource (moto's backends are process-global)."""
    BackendDict.reset()
