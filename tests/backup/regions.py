"""Take an AWS region off the network for every boto3 client the code under test creates.

A regional outage looks like a dead network to a client, so requests signed for the region fail
below botocore's retry logic: the shared emulation layer's ``refuse_requests`` (a
``before-send`` handler raising ``EndpointConnectionError``), the same the failover tests use.
The region is read from the SigV4 credential scope, not the URL: S3's us-east-1 endpoint
(``s3.amazonaws.com``) does not name its region.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest

from caresync_dr.emulation.network import refuse_requests, request_scope


def request_region(request: Any) -> str | None:
    return request_scope(request.headers.get("Authorization"))[0]


@contextmanager
def regions_down(monkeypatch: pytest.MonkeyPatch, *regions: str) -> Iterator[list[str]]:
    """Every session made meanwhile refuses requests to ``regions``; yields the refused
    requests as ``"region service-url"``."""
    refused: list[str] = []
    real_session = boto3.Session

    def down(request: Any) -> bool:
        region = request_region(request)
        if region in regions:
            refused.append(f"{region} {request.url}")
            return True
        return False

    def session(*args: Any, **kwargs: Any) -> boto3.Session:
        made = real_session(*args, **kwargs)
        refuse_requests(made, down)
        return made

    with monkeypatch.context() as patch:
        patch.setattr(boto3, "Session", session)
        yield refused
