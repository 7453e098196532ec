"""A region that is gone: one Outage, refused by the moto server and by an in-process session."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError
from moto import mock_aws

from caresync_dr.emulation.network import Outage, refuse_requests, request_scope
from caresync_dr.emulation.server import Emulator

FAST = Config(retries={"mode": "standard", "total_max_attempts": 2},
              connect_timeout=1, read_timeout=2)


def test_region_down_resets_connections_for_that_region_and_route53(aws: Emulator) -> None:
    east = boto3.client("ssm", region_name="us-east-1", config=FAST)
    west = boto3.client("ssm", region_name="us-west-2", config=FAST)
    east.put_parameter(Name="/p", Value="east", Type="String")
    west.put_parameter(Name="/p", Value="west", Type="String")

    aws.take_down(regions=["us-east-1"])

    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        east.get_parameter(Name="/p")
    # Route 53's API is in us-east-1 whatever region the client is configured for.
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        boto3.client("route53", region_name="us-west-2", config=FAST).list_hosted_zones()
    assert west.get_parameter(Name="/p")["Parameter"]["Value"] == "west"
    assert aws.outage.refused >= 3  # two attempts for ssm, at least one for route53

    aws.restore()
    assert east.get_parameter(Name="/p")["Parameter"]["Value"] == "east"


def test_the_same_outage_refuses_an_in_process_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the failover tests use (mock_aws): same decision, raised below the retry logic."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    outage = Outage()
    with mock_aws():
        session = boto3.Session()
        refused = refuse_requests(session, outage.refuses)
        east = session.client("ssm", region_name="us-east-1", config=FAST)
        west = session.client("ssm", region_name="us-west-2", config=FAST)
        east.put_parameter(Name="/p", Value="east", Type="String")
        outage.take_down(regions=["us-east-1"])
        with pytest.raises(EndpointConnectionError):
            east.get_parameter(Name="/p")
        with pytest.raises(EndpointConnectionError):
            session.client("route53", region_name="eu-west-1", config=FAST).list_hosted_zones()
        west.put_parameter(Name="/p", Value="west", Type="String")
    assert len(refused) == 4  # two attempts each: botocore's retries ran
    assert outage.refused == 4


def test_request_scope_reads_sigv4_and_maps_global_apis() -> None:
    header = ("AWS4-HMAC-SHA256 Credential=AKID/20261130/us-west-2/secretsmanager/aws4_request, "
              "SignedHeaders=host, Signature=abc")
    assert request_scope(header) == ("us-west-2", "secretsmanager")
    assert request_scope(header.replace("us-west-2/secretsmanager", "eu-west-1/route53")) == (
        "us-east-1", "route53")
    assert request_scope("") == (None, None)
