"""The network between a client and AWS: a region that is gone, and throttling.

A real regional outage looks like a dead network to a client: connections are reset or time
out, no HTTP status ever arrives, and botocore runs its own retry logic before it gives up.
:class:`Outage` says which regions and services are unreachable; two transports enforce it:

- the drill's moto server (``caresync_dr.emulation.server``) resets the TCP connection of a
  refused request, so a client in any process sees "connection reset";
- an in-process boto3 session (``mock_aws``) gets :func:`refuse_requests`, a ``before-send``
  handler that raises ``EndpointConnectionError`` below botocore's retry logic.

Both read where a request goes from its SigV4 credential scope
(``.../<date>/<region>/<service>/aws4_request``). Route 53's API is global but signed for
``us-east-1``: taking us-east-1 down takes the Route 53 control plane with it, as in the
December 2021 event (DESIGN.md, principle 1).

:func:`throttle` answers the first N requests of an operation with the service's throttling
error, also below the retry logic (botocore's ``Stubber`` would bypass retries).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import EndpointConnectionError
from moto.core.botocore_stubber import MockRawResponse

# The Route 53 API has one endpoint, in us-east-1, whatever the caller's region.
GLOBAL_CONTROL_PLANES = {"route53": "us-east-1"}
_SCOPE_RE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")


def request_scope(authorization: str | bytes | None) -> tuple[str | None, str | None]:
    """(region, service) a request is signed for, from its SigV4 ``Authorization`` header.

    A global service's region is where its API lives (``GLOBAL_CONTROL_PLANES``); an unsigned
    request gives (None, None)."""
    if isinstance(authorization, bytes):
        authorization = authorization.decode("latin-1")
    match = _SCOPE_RE.search(authorization or "")
    if not match:
        return None, None
    region, service = match.group(1), match.group(2)
    return GLOBAL_CONTROL_PLANES.get(service, region), service


@dataclass
class Outage:
    """Which regions and services the network cannot reach right now (thread-safe)."""

    regions: set[str] = field(default_factory=set)
    services: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    refused: int = 0

    def take_down(self, regions: Iterable[str] = (), services: Iterable[str] = ()) -> None:
        with self.lock:
            self.regions.update(regions)
            self.services.update(services)

    def restore(self) -> None:
        with self.lock:
            self.regions.clear()
            self.services.clear()

    def blocks(self, region: str | None, service: str | None) -> bool:
        """Whether a request to (region, service) is refused; counts the refusals."""
        with self.lock:
            if region in self.regions or service in self.services:
                self.refused += 1
                return True
            return False

    def refuses(self, request: AWSPreparedRequest) -> bool:
        """The same decision for a botocore request (for :func:`refuse_requests`)."""
        return self.blocks(*request_scope(request.headers.get("Authorization")))


def refuse_requests(session: boto3.Session,
                    refused: Callable[[AWSPreparedRequest], bool]) -> list[str]:
    """Requests of this session that ``refused`` picks fail to connect, as when a region is
    gone; returns the list of refused URLs (appended to as it happens)."""
    urls: list[str] = []

    def refuse(request: AWSPreparedRequest, **_: Any) -> None:
        if refused(request):
            urls.append(request.url)
            raise EndpointConnectionError(endpoint_url=request.url)

    session.events.register_first("before-send", refuse)
    return urls


THROTTLE_BODIES = {
    "query": (400, "text/xml", "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling"
              "</Code><Message>Rate exceeded</Message></Error><RequestId>t</RequestId>"
              "</ErrorResponse>"),
    "json": (400, "application/x-amz-json-1.1",
             '{"__type":"ThrottlingException","message":"Rate exceeded"}'),
    "rest-xml": (503, "application/xml", "<Error><Code>SlowDown</Code><Message>Please reduce "
                 "your request rate.</Message><RequestId>t</RequestId></Error>"),
}
_PROTOCOLS = {"ssm": "json", "secrets-manager": "json", "s3": "rest-xml"}


def response_headers(content_type: str) -> HTTPHeaders:
    """Headers of a canned AWS answer (for before-send handlers that answer themselves)."""
    headers = HTTPHeaders()
    headers["Content-Type"] = content_type
    return headers


def throttle(session: boto3.Session, bursts: dict[str, int],
             url_contains: str = "") -> dict[str, int]:
    """The first N requests of each ``service.Operation`` get a throttling error.

    botocore runs every before-send handler, so moto still executes each throttled request:
    every throttle here is the harder case of a request applied whose answer was lost, and
    the retry (and the code) must be idempotent for the run to end consistent. Returns how
    many of each were throttled (a live dict)."""
    served: dict[str, int] = dict.fromkeys(bursts, 0)

    def maybe(event_name: str, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        service, operation = event_name.split(".", 2)[1:]
        key = f"{service}.{operation}"
        if key not in bursts or served[key] >= bursts[key] or url_contains not in request.url:
            return None
        served[key] += 1
        status, content_type, body = THROTTLE_BODIES[_PROTOCOLS.get(service, "query")]
        return AWSResponse(request.url, status, response_headers(content_type),
                           MockRawResponse(body))

    session.events.register_first("before-send", cast(Callable[..., None], maybe))
    return served
