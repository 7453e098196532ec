"""Moto's server on 127.0.0.1 with a request gate that can take a region off the network.

A real regional outage looks like a dead network to a client: connections are reset or time
out, no HTTP status ever arrives. The gate reproduces that in the server itself. Before a
request is dispatched it reads the SigV4 credential scope (``.../<region>/<service>/aws4_request``)
and, when that region or service is down, resets the TCP connection (``SO_LINGER`` 0) without
writing a byte, so botocore in any process raises a connection error and runs its own retry
logic. Route 53's API is global but signed for ``us-east-1``: taking us-east-1 down takes the
Route 53 control plane with it, as in the December 2021 event.

Hooks see each request moto handled, so the layers in ``promotion`` and ``scaling`` can add
the time real AWS takes to moto's instant state changes; responders answer the few query-API
calls moto does not implement at all (``refresh``: Auto Scaling instance refreshes).
"""

from __future__ import annotations

import io
import logging
import os
import re
import socket
import struct
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from moto.core.base_backend import BackendDict
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler
from moto.moto_server.werkzeug_app import create_backend_app as _create_backend_app
from werkzeug.serving import make_server

from caresync_dr.pg.cluster import free_port

log = logging.getLogger(__name__)

# The account the offline fakes (caresync_dr.offline.fakes) use, so ARNs built by the program
# and ARNs returned by the emulator agree. moto's server reads MOTO_ACCOUNT_ID per request.
ACCOUNT_ID = "111122223333"
# The Route 53 API has one endpoint, in us-east-1, whatever the caller's region.
GLOBAL_CONTROL_PLANES = {"route53": "us-east-1"}
_SCOPE_RE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")


@dataclass(frozen=True)
class AwsCall:
    """One request the emulator handled: where it went and, for query APIs, its parameters."""

    region: str | None
    service: str | None
    action: str | None
    params: dict[str, str]
    status: int


def request_scope(authorization: str) -> tuple[str | None, str | None]:
    """(region, service) from a SigV4 ``Authorization`` header, or (None, None)."""
    match = _SCOPE_RE.search(authorization or "")
    return (match.group(1), match.group(2)) if match else (None, None)


@dataclass
class Outage:
    """Which regions and services the network cannot reach right now."""

    regions: set[str] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    refused: int = 0

    def blocks(self, region: str | None, service: str | None) -> bool:
        with self.lock:
            if region in self.regions or service in self.services:
                self.refused += 1
                return True
            return False


class _Dispatcher:
    """WSGI app around moto's dispatcher: buffers query-API bodies and runs the hooks."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.app = DomainDispatcherApplication(_create_backend_app)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        region, service = request_scope(environ.get("HTTP_AUTHORIZATION", ""))
        params: dict[str, str] = {}
        content_type = environ.get("CONTENT_TYPE", "")
        if environ.get("REQUEST_METHOD") == "POST" and "x-www-form-urlencoded" in content_type:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            params = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        call = AwsCall(region=region, service=service, action=params.get("Action"),
                       params=params, status=0)
        for responder in list(self.emulator.responders):
            answer = responder(call)
            if answer is not None:
                status, xml = answer
                body = xml.encode()
                start_response(f"{status} {'OK' if status == 200 else 'Error'}",
                               [("Content-Type", "text/xml"),
                                ("Content-Length", str(len(body)))])
                return [body]
        status_holder: list[int] = []

        def recording_start_response(status: str, headers: Any, *args: Any) -> Any:
            status_holder.append(int(status.split(maxsplit=1)[0]))
            return start_response(status, headers, *args)

        result = list(self.app(environ, recording_start_response))  # status known after this
        call = AwsCall(region=region, service=service, action=params.get("Action"),
                       params=params, status=status_holder[0] if status_holder else 0)
        for hook in list(self.emulator.hooks):
            hook(call)
        return result


def _gated_handler(outage: Outage) -> type[MotoRequestHandler]:
    class GatedRequestHandler(MotoRequestHandler):
        def run_wsgi(self) -> None:
            region, service = request_scope(self.headers.get("Authorization", ""))
            if service in GLOBAL_CONTROL_PLANES:
                region = GLOBAL_CONTROL_PLANES[service]
            if outage.blocks(region, service):
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
    """ThreadedMotoServer with the gated handler and the hook dispatcher."""

    def __init__(self, emulator: Emulator, port: int) -> None:
        super().__init__(ip_address="127.0.0.1", port=port, verbose=False)
        self.emulator = emulator

    def _server_entry(self) -> None:
        self._server = make_server(self._ip_address, self._port, _Dispatcher(self.emulator),
                                   True, request_handler=_gated_handler(self.emulator.outage))
        self._server_ready_event.set()
        # A short poll interval: stop() waits for the next poll (0.5 s by default).
        self._server.serve_forever(poll_interval=0.05)


class Emulator:
    """The emulated AWS: one moto server for every region, on a free port of 127.0.0.1."""

    def __init__(self) -> None:
        self.outage = Outage()
        self.hooks: list[Callable[[AwsCall], None]] = []
        # Answer a request instead of moto (for APIs moto does not implement): (status, XML).
        self.responders: list[Callable[[AwsCall], tuple[int, str] | None]] = []
        self.port = free_port()
        self._server: _Server | None = None
        self._saved_account: str | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._saved_account = os.environ.get("MOTO_ACCOUNT_ID")
        os.environ["MOTO_ACCOUNT_ID"] = ACCOUNT_ID
        self._server = _Server(self, self.port)
        self._server.start()
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
        with self.outage.lock:
            self.outage.regions.update(regions)
            self.outage.services.update(services)
        log.info("emulator: regions %s and services %s are now unreachable",
                 sorted(self.outage.regions) or "-", sorted(self.outage.services) or "-")

    def restore(self) -> None:
        with self.outage.lock:
            self.outage.regions.clear()
            self.outage.services.clear()

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def reset_backends() -> None:
    """Forget every emulated resource (moto's backends are process-global)."""
    BackendDict.reset()
