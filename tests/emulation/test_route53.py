"""Route 53's emulated data plane: answers follow health checks and the traffic switch."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest

from caresync_dr.emulation.route53 import DnsResolver
from caresync_dr.emulation.server import Emulator

RECORD = "app.caresync.test"
PRIMARY_LB = "primary-alb.us-east-1.elb.amazonaws.com"
STANDBY_LB = "standby-alb.us-west-2.elb.amazonaws.com"
SWITCH_BUCKET = "caresync-switch-test"


class Site:
    """A local endpoint whose health can be turned off."""

    def __init__(self) -> None:
        self.healthy = True
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200 if site.healthy else 503)
                self.end_headers()
                self.wfile.write(b'{"status": "ok"}')

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def sites() -> Iterator[tuple[Site, Site]]:
    primary, standby = Site(), Site()
    yield primary, standby
    for site in (primary, standby):
        site.server.shutdown()
        site.server.server_close()


def _http_check(r53: Any, fqdn: str, threshold: int = 2) -> str:
    return str(r53.create_health_check(CallerReference=fqdn, HealthCheckConfig={
        "Type": "HTTPS", "FullyQualifiedDomainName": fqdn, "Port": 443,
        "ResourcePath": "/api/health", "RequestInterval": 10,
        "FailureThreshold": threshold})["HealthCheck"]["Id"])


def _deploy(with_switch: bool) -> tuple[str, str | None]:
    """Zone, checks and failover records as the stack creates them."""
    r53 = boto3.client("route53", region_name="us-east-1")
    zone = r53.create_hosted_zone(Name="caresync.test", CallerReference="z")["HostedZone"]["Id"]
    primary_check = _http_check(r53, PRIMARY_LB)
    standby_check = _http_check(r53, STANDBY_LB)
    switch_check = None
    if with_switch:
        s3 = boto3.client("s3", region_name="us-west-2")
        s3.create_bucket(Bucket=SWITCH_BUCKET,
                         CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        s3.put_object(Bucket=SWITCH_BUCKET, Key="switch", Body=b"PRIMARY")
        switch_check = str(r53.create_health_check(CallerReference="sw", HealthCheckConfig={
            "Type": "HTTPS_STR_MATCH", "Port": 443, "ResourcePath": "/switch",
            "FullyQualifiedDomainName": f"{SWITCH_BUCKET}.s3.us-west-2.amazonaws.com",
            "SearchString": "FAILOVER", "Inverted": True, "RequestInterval": 10,
            "FailureThreshold": 1})["HealthCheck"]["Id"])
        gate = str(r53.create_health_check(CallerReference="calc", HealthCheckConfig={
            "Type": "CALCULATED", "ChildHealthChecks": [primary_check, switch_check],
            "HealthThreshold": 2})["HealthCheck"]["Id"])
    else:
        gate = primary_check

    def record(role: str, check: str, lb: str) -> Any:
        return {"Action": "CREATE", "ResourceRecordSet": {
            "Name": RECORD, "Type": "A", "SetIdentifier": role.lower(), "Failover": role,
            "HealthCheckId": check,
            "AliasTarget": {"HostedZoneId": "Z35SXDOTRQ7X7K", "DNSName": lb,
                            "EvaluateTargetHealth": False}}}

    r53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": [
        record("PRIMARY", gate, PRIMARY_LB), record("SECONDARY", standby_check, STANDBY_LB)]})
    return zone, switch_check


def _resolver(zone: str, sites: tuple[Site, Site], aws: Emulator) -> DnsResolver:
    primary, standby = sites
    return DnsResolver(hosted_zone_id=zone, record_name=RECORD,
                       endpoints={PRIMARY_LB: primary.url, STANDBY_LB: standby.url},
                       s3_reachable=lambda region: region not in aws.outage.regions)


def test_resolver_answers_primary_while_healthy_and_follows_health_to_standby(
        aws: Emulator, sites: tuple[Site, Site]) -> None:
    zone, _ = _deploy(with_switch=False)
    resolver = _resolver(zone, sites, aws)
    assert resolver.tick().set_identifier == "primary"
    assert resolver.site_url() == sites[0].url

    sites[0].healthy = False
    # FailureThreshold 2: one failed observation is not enough, the second one flips it.
    assert resolver.tick().set_identifier == "primary"
    assert resolver.tick().set_identifier == "secondary"
    assert resolver.site_url() == sites[1].url

    sites[0].healthy = True
    resolver.tick()
    assert resolver.tick().set_identifier == "primary"


def test_both_unhealthy_answers_primary_like_route53(
        aws: Emulator, sites: tuple[Site, Site]) -> None:
    zone, _ = _deploy(with_switch=False)
    resolver = _resolver(zone, sites, aws)
    sites[0].healthy = sites[1].healthy = False
    for _ in range(3):
        answer = resolver.tick()
    assert answer.set_identifier == "primary"


def test_switch_object_flips_the_answer_without_any_route53_call(
        aws: Emulator, sites: tuple[Site, Site]) -> None:
    zone, switch_check = _deploy(with_switch=True)
    resolver = _resolver(zone, sites, aws)
    assert resolver.tick().set_identifier == "primary"

    # The operator's only move: an S3 data-plane write in the standby region, while the
    # Route 53 control plane (us-east-1) is unreachable.
    aws.take_down(regions=["us-east-1"])
    boto3.client("s3", region_name="us-west-2").put_object(
        Bucket=SWITCH_BUCKET, Key="switch", Body=b"FAILOVER")
    answer = resolver.tick()
    assert answer.set_identifier == "secondary"
    assert answer.target == STANDBY_LB
    assert switch_check is not None and resolver.status(switch_check) is False
    assert sites[0].healthy  # the primary site itself never failed a check


def test_switch_check_fails_when_its_region_is_unreachable(
        aws: Emulator, sites: tuple[Site, Site]) -> None:
    zone, switch_check = _deploy(with_switch=True)
    resolver = _resolver(zone, sites, aws)
    resolver.tick()
    aws.take_down(regions=["us-west-2"])
    assert switch_check is not None
    ok, reason = resolver.observe(switch_check)
    # Inverted string match: an unreachable switch reads as "no FAILOVER" -> healthy.
    assert ok and "unreachable" in reason
