"""Take an AWS region off the network for every boto3 client the code under test creates.

A regional outage looks like a dead network to a client, so requests signed for the region fail
below botocore's retry logic (a ``before-send`` handler raising ``EndpointConnectionError``, as
``tests/failover/world.py`` does). The region is read from the SigV4 credential scope, not the
URL: S3's us-east-1 endpoint (``s3.amazonaws.com``) does not name its region.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")


def request_region(request: Any) -> str | None:
    authorization = request.headers.get("Authorization", b"")
    if isinstance(authorization, bytes):
        authorization = authorization.decode()
    match = _SCOPE.search(authorization or "")
    return match.group(1) if match else None


@contextmanager
def regions_down(monkeypatch: pytest.MonkeyPatch, *regions: str) -> Iterator[list[str]]:
    """Every session made meanwhile refuses requests to ``regions``; yields the refused
    requests as ``"region service-url"``."""
    refused: list[str] = []
    real_session = boto3.Session

    def refuse(request: Any, **_: Any) -> None:
        region = request_region(request)
        if region in regions:
            refused.append(f"{region} {request.url}")
            raise EndpointConnectionError(endpoint_url=request.url)

    def session(*args: Any, **kwargs: Any) -> boto3.Session:
        made = real_session(*args, **kwargs)
        made.events.register_first("before-send", refuse)
        return made

    with monkeypatch.context() as patch:
        patch.setattr(boto3, "Session", session)
        yield refused
