"""Local stand-ins for the notification services, recording every call (tests and drills).

- :class:`ChatDouble`: a Slack-compatible incoming webhook (``POST {"text": ...}`` -> 200 ok;
  a body without ``text`` -> 400 ``invalid_payload``, as Slack answers).
- :class:`StatusPageDouble`: the part of Atlassian Statuspage's Manage API the notifier uses,
  checking what the real API checks: the path, ``Authorization: OAuth <key>`` (401 otherwise),
  a JSON body ``{"incident": {...}}`` with known fields, the incident and component status
  enums, the 255-character name and 25,000-character body limits (422 otherwise); creates
  answer 201 with the incident, updates 200.
- :func:`refusing_url` and :class:`SilentServer`: a dead channel (connection refused) and a
  slow one (accepts, never answers).

Every double can be told to fail the next requests (``fail_next``: status codes to answer
instead) or to answer slowly (``delay_seconds``).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Self

from caresync_dr.drill.localhttp import send_json, serve

INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")
COMPONENT_STATUSES = ("operational", "degraded_performance", "partial_outage", "major_outage",
                      "under_maintenance")
INCIDENT_FIELDS = {"name", "status", "impact_override", "body", "components", "component_ids",
                   "deliver_notifications", "metadata"}


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int


@dataclass
class _Behaviour:
    fail_next: list[int] = field(default_factory=list)
    delay_seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_failure(self) -> int | None:
        with self.lock:
            return self.fail_next.pop(0) if self.fail_next else None


class _Double:
    """A threaded local HTTP server; subclasses answer in :meth:`answer`."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.behaviour = _Behaviour()
        self._mutex = threading.Lock()
        double = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length", "0") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body: Any = json.loads(raw) if raw else None
                except ValueError:
                    body = {"unparsed": raw.decode("utf-8", "replace")}
                if double.behaviour.delay_seconds:
                    time.sleep(double.behaviour.delay_seconds)
                failure = double.behaviour.next_failure()
                if failure is not None:
                    status, answer = failure, {"error": "injected failure"}
                else:
                    status, answer = double.answer(self.command, self.path,
                                                   dict(self.headers.items()), body)
                with double._mutex:
                    double.calls.append(Call(self.command, self.path, dict(self.headers.items()),
                                             body, status))
                payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                # The client may have given up waiting (a timeout test).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    send_json(self, status, payload)

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def do_PATCH(self) -> None:
                self._handle()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = serve(Handler, 0, type(self).__name__)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def answer(self, method: str, path: str, headers: dict[str, str],
               body: Any) -> tuple[int, Any]:
        raise NotImplementedError

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ChatDouble(_Double):
    """``url`` takes Slack-compatible webhook posts; ``posted`` lists the accepted bodies."""

    path = "/services/T0CARESYNC/B0INCIDENTS/not-a-real-secret"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    @property
    def posted(self) -> list[dict[str, Any]]:
        return [c.body for c in self.calls if c.status == 200]

    def answer(self, method: str, path: str, headers: dict[str, str],
               body: Any) -> tuple[int, Any]:
        if method != "POST" or path != self.path:
            return 404, b"no_service"
        if not headers.get("Content-Type", "").startswith("application/json"):
            return 400, b"invalid_payload"
        if not isinstance(body, dict) or not isinstance(body.get("text"), str) \
                or not body["text"]:
            return 400, b"invalid_payload"
        return 200, b"ok"


class StatusPageDouble(_Double):
    """One page with components; ``incidents`` holds what was created and updated."""

    def __init__(self, page_id: str = "kctbh9vrtdwd",
                 components: tuple[str, ...] = ("r9hgdzfqbtv2", "b13yz5g2cw10"),
                 api_key: str = "test-statuspage-key") -> None:
        self.page_id = page_id
        self.api_key = api_key
        self.components = {c: {"id": c, "name": f"component {c}", "status": "operational"}
                           for c in components}
        self.incidents: dict[str, dict[str, Any]] = {}
        self.problems: list[str] = []      # every refused request, with the reason
        super().__init__()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _refuse(self, status: int, why: str) -> tuple[int, Any]:
        self.problems.append(why)
        return status, {"error": why}

    def _check_incident(self, body: Any, creating: bool) -> str | None:
        if not isinstance(body, dict) or set(body) != {"incident"} or \
                not isinstance(body["incident"], dict):
            return 'body must be {"incident": {...}}'
        incident = body["incident"]
        unknown = sorted(set(incident) - INCIDENT_FIELDS)
        if unknown:
            return f"unknown incident field {unknown[0]}"
        if creating and not isinstance(incident.get("name"), str):
            return "name is required"
        if len(str(incident.get("name", ""))) > 255:
            return "name is longer than 255 characters"
        if len(str(incident.get("body", ""))) > 25_000:
            return "body is longer than 25000 characters"
        if "status" in incident and incident["status"] not in INCIDENT_STATUSES:
            return f"status {incident['status']!r} is not a realtime incident status"
        components = incident.get("components", {})
        if not isinstance(components, dict):
            return "components must map component ids to statuses"
        for component, status in components.items():
            if component not in self.components:
                return f"component {component} is not on page {self.page_id}"
            if status not in COMPONENT_STATUSES:
                return f"component status {status!r} is not a component status"
        for component in incident.get("component_ids", []):
            if component not in self.components:
                return f"component {component} is not on page {self.page_id}"
        metadata = incident.get("metadata", {})
        if not isinstance(metadata, dict) or any(not isinstance(v, dict)
                                                 for v in metadata.values()):
            return "metadata's top-level values must be objects"
        return None

    def _apply(self, record: dict[str, Any], incident: dict[str, Any]) -> None:
        for key in ("name", "status", "metadata"):
            if key in incident:
                record[key] = incident[key]
        if "body" in incident:
            record["incident_updates"].insert(0, {"status": incident.get("status"),
                                                  "body": incident["body"]})
        for component, status in incident.get("components", {}).items():
            self.components[component]["status"] = status
        if incident.get("status") == "resolved":
            record["resolved_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def answer(self, method: str, path: str, headers: dict[str, str],
               body: Any) -> tuple[int, Any]:
        if headers.get("Authorization") != f"OAuth {self.api_key}":
            return self._refuse(401, "Authorization must be 'OAuth <api key>'")
        prefix = f"/v1/pages/{self.page_id}"
        if not path.startswith(prefix):
            return self._refuse(404, f"no page at {path}")
        rest = path[len(prefix):]
        if method == "GET" and rest == "":
            return 200, {"id": self.page_id, "name": "CareSync status"}
        if method == "GET" and rest.startswith("/components/"):
            component = self.components.get(rest.split("/")[2])
            return (200, component) if component else self._refuse(404, f"no {rest}")
        if method == "GET" and rest == "/incidents/unresolved":
            return 200, [i for i in self.incidents.values() if i["status"] != "resolved"]
        if rest == "/incidents" and method == "POST":
            problem = self._check_incident(body, creating=True)
            if problem:
                return self._refuse(422, problem)
            incident_id = f"inc{len(self.incidents) + 1:09d}"
            record: dict[str, Any] = {"id": incident_id, "page_id": self.page_id,
                                      "status": "investigating", "incident_updates": [],
                                      "metadata": {}}
            self._apply(record, body["incident"])
            self.incidents[incident_id] = record
            return 201, record
        if rest.startswith("/incidents/") and method == "PATCH":
            existing = self.incidents.get(rest.split("/")[2])
            if existing is None:
                return self._refuse(404, f"no incident at {rest}")
            problem = self._check_incident(body, creating=False)
            if problem:
                return self._refuse(422, problem)
            self._apply(existing, body["incident"])
            return 200, existing
        return self._refuse(405, f"{method} {rest} is not part of this double")


def refusing_url(path: str = "/hook") -> str:
    """An http URL on a local port nothing listens on: every connection is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


class SilentServer:
    """Accepts connections and never answers: a channel that hangs until the read timeout."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True, name="silent-server").start()

    def _accept(self) -> None:
        self._socket.settimeout(0.05)
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                continue
            self._held.append(connection)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}{path}"

    def close(self) -> None:
        self._stop.set()
        for connection in self._held:
            connection.close()
        self._socket.close()
