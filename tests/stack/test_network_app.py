"""Network tiers and the app tier: only the ALB reaches the app, only the app reaches 5432."""

from __future__ import annotations

import base64

from caresync_dr.offline.runtime import ProgramRun, of_type
from tests.stack.checks import check, one

SG = "aws:ec2/securityGroup:SecurityGroup"


def _site(run: ProgramRun) -> str:
    return "primary" if run.stack == "prod" else "standby"


def test_vpc_spans_at_least_two_azs_with_public_and_private_subnets(
        any_stack: ProgramRun) -> None:
    subnets = of_type(any_stack.resources, "aws:ec2/subnet:Subnet")
    public = [s for s in subnets if "-public-" in s.name]
    private = [s for s in subnets if "-private-" in s.name]
    assert len({s.inputs["availabilityZone"] for s in public}) >= 2
    assert len({s.inputs["availabilityZone"] for s in private}) >= 2
    for subnet in public + private:
        check(subnet, subnet.inputs.get("mapPublicIpOnLaunch") in (None, False),
              "assigns public IPs")
    region = "us-east-1" if any_stack.stack == "prod" else "us-west-2"
    assert all(s.inputs["availabilityZone"].startswith(region) for s in subnets)


def test_security_groups_chain_alb_app_database(any_stack: ProgramRun) -> None:
    site = _site(any_stack)
    alb = one(any_stack, SG, f"{site}-network-alb-sg")
    app = one(any_stack, SG, f"{site}-network-app-sg")
    db = one(any_stack, SG, f"{site}-network-db-sg")
    (app_in,) = app.inputs["ingress"]
    check(app, app_in["securityGroups"] == [alb.resource_id] and "cidrBlocks" not in app_in,
          f"app ingress is not limited to the ALB group: {app_in}")
    check(app, (app_in["fromPort"], app_in["toPort"]) == (8080, 8080), "wrong app port")
    (db_in,) = db.inputs["ingress"]
    check(db, db_in["securityGroups"] == [app.resource_id] and "cidrBlocks" not in db_in,
          f"database ingress is not limited to the app group: {db_in}")
    check(db, (db_in["fromPort"], db_in["toPort"]) == (5432, 5432), "not PostgreSQL only")
    check(db, db.inputs.get("egress") == [], "the database group allows egress")
    assert any_stack.outputs["dbSecurityGroupId"] == db.resource_id


def test_alb_serves_https_and_redirects_http(any_stack: ProgramRun) -> None:
    listeners = of_type(any_stack.resources, "aws:lb/listener:Listener")
    https = [r for r in listeners if r.inputs["port"] == 443]
    http = [r for r in listeners if r.inputs["port"] == 80]
    assert len(https) == 1 and len(http) == 1
    (listener,) = https
    region = "us-east-1" if any_stack.stack == "prod" else "us-west-2"
    check(listener, listener.inputs["protocol"] == "HTTPS" and
          listener.inputs["certificateArn"].startswith(f"arn:aws:acm:{region}:"),
          "HTTPS listener without a certificate of its region")
    (action,) = http[0].inputs["defaultActions"]
    check(http[0], action["type"] == "redirect" and action["redirect"]["protocol"] == "HTTPS",
          "HTTP is not redirected to HTTPS")


def test_target_group_checks_api_health(any_stack: ProgramRun) -> None:
    tg = one(any_stack, "aws:lb/targetGroup:TargetGroup", f"{_site(any_stack)}-app-tg")
    assert tg.inputs["healthCheck"]["path"] == "/api/health"
    assert any_stack.outputs["targetGroupArn"] == tg.outputs["arn"]


def test_standby_runs_warm_and_can_scale_to_production(
        prod_bootstrap: ProgramRun, dr: ProgramRun, dr_promoted: ProgramRun) -> None:
    asg = "aws:autoscaling/group:Group"
    primary = one(prod_bootstrap, asg, "primary-app-asg")
    standby = one(dr, asg, "standby-app-asg")
    promoted = one(dr_promoted, asg, "standby-app-asg")
    assert primary.inputs["name"] == "caresync-primary-app"
    assert standby.inputs["name"] == "caresync-standby-app"
    assert (primary.inputs["minSize"], primary.inputs["desiredCapacity"],
            primary.inputs["maxSize"]) == (2, 2, 6)
    assert (standby.inputs["minSize"], standby.inputs["desiredCapacity"]) == (1, 1)
    assert standby.inputs["maxSize"] == primary.inputs["maxSize"], \
        "the standby's maximum must match the primary so failover can scale it up"
    assert promoted.inputs["desiredCapacity"] == 2, \
        "after promotion the standby serves: pulumi up must not scale it back to warm"


def test_pilot_light_standby_is_allowed(prod_bootstrap: ProgramRun) -> None:
    from caresync_dr.offline.runtime import run_program

    run = run_program("dr", config_overrides={"standbyWarmCapacity": "0"},
                      stack_references={"prod": prod_bootstrap.outputs})
    standby = one(run, "aws:autoscaling/group:Group", "standby-app-asg")
    assert (standby.inputs["minSize"], standby.inputs["desiredCapacity"],
            standby.inputs["maxSize"]) == (0, 0, 6)


def test_instances_read_the_database_host_from_ssm_at_boot(any_stack: ProgramRun) -> None:
    site = _site(any_stack)
    template = one(any_stack, "aws:ec2/launchTemplate:LaunchTemplate",
                   f"{site}-app-launch-template")
    script = base64.b64decode(template.inputs["userData"]).decode()
    assert f"--name /caresync-dr/{site}/database-host" in script
    assert template.inputs["metadataOptions"]["httpTokens"] == "required", "IMDSv2 only"
    asg = one(any_stack, "aws:autoscaling/group:Group", f"{site}-app-asg")
    assert asg.inputs["launchTemplate"]["id"] == template.resource_id
    assert set(asg.inputs["vpcZoneIdentifiers"]) == {
        s.resource_id for s in of_type(any_stack.resources, "aws:ec2/subnet:Subnet")
        if "-private-" in s.name}
