"""PRIMARY and SECONDARY records, their health checks and the standby-region traffic switch."""

from __future__ import annotations

from typing import Any

from caresync_dr.offline.fakes import ROUTE53_HEALTHCHECK_CIDRS, ROUTE53_HEALTHCHECK_IPV6
from caresync_dr.offline.runtime import ProgramRun, by_id, of_type
from tests.stack.checks import attached, one, policy

RECORD = "aws:route53/record:Record"
CHECK = "aws:route53/healthCheck:HealthCheck"


def _record(run: ProgramRun, failover: str) -> dict[str, Any]:
    found = [r for r in of_type(run.resources, RECORD)
             if r.inputs["failoverRoutingPolicies"] == [{"type": failover}]]
    assert len(found) == 1, f"expected one {failover} record"
    return found[0].inputs


def test_primary_and_secondary_records_are_both_health_checked(
        prod_bootstrap: ProgramRun, dr: ProgramRun) -> None:
    primary, secondary = _record(dr, "PRIMARY"), _record(dr, "SECONDARY")
    for record in (primary, secondary):
        assert record["zoneId"] == "Z0123456789ABCDEFGHIJ"
        assert record["name"] == "app.caresync.health" and record["type"] == "A"
        assert record["healthCheckId"], f"{record['setIdentifier']} has no health check"
    assert primary["setIdentifier"] != secondary["setIdentifier"]
    assert primary["aliases"] == [{"name": prod_bootstrap.outputs["albDnsName"],
                                   "zoneId": prod_bootstrap.outputs["albZoneId"],
                                   "evaluateTargetHealth": True}]
    assert secondary["aliases"][0]["name"] == dr.outputs["albDnsName"]
    assert secondary["healthCheckId"] == dr.outputs["standbyHealthCheckId"]


def test_primary_record_needs_api_health_and_the_switch(dr: ProgramRun) -> None:
    calculated = by_id(of_type(dr.resources, CHECK), str(_record(dr, "PRIMARY")["healthCheckId"]))
    assert calculated.inputs["type"] == "CALCULATED"
    assert calculated.inputs["childHealthThreshold"] == 2
    assert set(calculated.inputs["childHealthchecks"]) == {
        dr.outputs["primaryHealthCheckId"], dr.outputs["trafficSwitchHealthCheckId"]}


def test_site_checks_probe_api_health_with_the_configured_timing(dr: ProgramRun) -> None:
    for output in ("primaryHealthCheckId", "standbyHealthCheckId"):
        check = by_id(of_type(dr.resources, CHECK), dr.outputs[output])
        assert check.inputs["type"] == "HTTPS" and check.inputs["port"] == 443
        assert check.inputs["resourcePath"] == "/api/health"
        assert check.inputs["requestInterval"] == 10
        assert check.inputs["failureThreshold"] == 3
        assert len(check.inputs["regions"]) >= 3, "Route 53 needs at least 3 checker regions"
    primary = by_id(of_type(dr.resources, CHECK), dr.outputs["primaryHealthCheckId"])
    assert primary.inputs["fqdn"].endswith(".us-east-1.elb.amazonaws.com")


def test_health_check_interval_setting_reaches_every_endpoint_check(
        prod_bootstrap: ProgramRun) -> None:
    from caresync_dr.offline.runtime import run_program

    run = run_program("dr", config_overrides={"healthCheckIntervalSeconds": "30",
                                              "healthCheckFailureThreshold": "2"},
                      stack_references={"prod": prod_bootstrap.outputs})
    timed = [c for c in of_type(run.resources, CHECK) if c.inputs["type"] != "CALCULATED"]
    assert len(timed) == 3
    assert {(c.inputs["requestInterval"], c.inputs["failureThreshold"]) for c in timed} == {
        (30, 2)}


def test_traffic_switch_is_an_inverted_string_match_on_a_standby_object(dr: ProgramRun) -> None:
    switch = by_id(of_type(dr.resources, CHECK), dr.outputs["trafficSwitchHealthCheckId"])
    bucket = dr.outputs["trafficSwitchBucket"]
    assert bucket == "caresync-traffic-switch-111122223333" and "." not in bucket
    assert switch.inputs["type"] == "HTTPS_STR_MATCH"
    assert switch.inputs["fqdn"] == f"{bucket}.s3.us-west-2.amazonaws.com"
    assert switch.inputs["resourcePath"] == "/traffic-switch"
    assert switch.inputs["searchString"] == "FAILOVER"
    assert switch.inputs["invertHealthcheck"] is True
    obj = one(dr, "aws:s3/bucketObjectv2:BucketObjectv2", "traffic-switch-object")
    assert (obj.inputs["key"], obj.inputs["content"]) == ("traffic-switch", "PRIMARY")
    assert obj.inputs["bucket"] == bucket
    assert obj.outputs["region"] == "us-west-2"


def test_only_route53_checkers_may_read_only_the_switch(dr: ProgramRun) -> None:
    bucket = one(dr, "aws:s3/bucket:Bucket", "traffic-switch-bucket")
    (bucket_policy,) = attached(dr, "aws:s3/bucketPolicy:BucketPolicy", bucket.resource_id)
    (allow,) = [s for s in policy(bucket_policy)["Statement"] if s["Effect"] == "Allow"]
    assert allow["Action"] == "s3:GetObject"
    assert allow["Resource"] == f"{bucket.outputs['arn']}/traffic-switch"
    assert allow["Condition"] == {"IpAddress": {"aws:SourceIp": sorted(
        ROUTE53_HEALTHCHECK_CIDRS + ROUTE53_HEALTHCHECK_IPV6)}}, \
        "the read must be limited to the Route 53 health-checker ranges (get_ip_ranges)"
