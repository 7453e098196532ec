"""The failover inventory: written by the dr stack, parsed by failover.py, complete."""

from __future__ import annotations

from typing import Any

from caresync_dr.inventory import Inventory, parse_inventory
from caresync_dr.offline.runtime import ProgramRun, by_id, of_type
from tests.stack.checks import one


def _inventory(run: ProgramRun) -> tuple[Inventory, str]:
    parameter = one(run, "aws:ssm/parameter:Parameter", "failover-inventory-parameter")
    assert parameter.inputs["name"] == "/caresync-dr/failover-inventory"
    # A SecureString under the standby key, by the alias failover's readers use.
    assert (parameter.inputs["type"], parameter.inputs["keyId"]) == (
        "SecureString", "alias/caresync-standby")
    assert parameter.outputs["region"] == "us-west-2", "the inventory lives in the standby region"
    text = parameter.inputs["value"]
    expected_tier = "Advanced" if len(text.encode()) > 4096 else "Standard"
    assert parameter.inputs["tier"] == expected_tier
    return parse_inventory(text), text


def test_inventory_parses_and_names_every_resource_failover_touches(
        prod_bootstrap: ProgramRun, dr: ProgramRun) -> None:
    inventory, _ = _inventory(dr)
    prod, res = prod_bootstrap.outputs, dr.resources
    assert (inventory.project, inventory.stack) == ("caresync-dr", "dr")
    assert (inventory.objectives.rto_minutes, inventory.objectives.rpo_minutes) == (60, 15)
    assert (inventory.primary.region, inventory.standby.region) == ("us-east-1", "us-west-2")

    p, s = inventory.primary, inventory.standby
    assert (p.database.identifier, p.database.arn) == (prod["dbIdentifier"], prod["dbArn"])
    assert p.database.replica_identifiers == ("caresync-primary-db-replica-1",)
    assert p.database.security_group_id == prod["dbSecurityGroupId"]
    assert p.database.endpoint_parameter == "/caresync-dr/primary/database-host"
    assert p.app.auto_scaling_group_name == "caresync-primary-app"
    assert p.app.launch_template_id == prod["launchTemplateId"]
    assert p.app.target_group_arn == prod["targetGroupArn"]
    assert p.app.load_balancer_dns == prod["albDnsName"]

    standby_db = one(dr, "aws:rds/instance:Instance", "standby-database-instance")
    assert (s.database.identifier, s.database.arn) == (
        standby_db.inputs["identifier"], standby_db.outputs["arn"])
    assert s.database.endpoint_parameter == "/caresync-dr/standby/database-host"
    assert s.database.backup_retention_days == 30
    asg = one(dr, "aws:autoscaling/group:Group", "standby-app-asg")
    assert s.app.auto_scaling_group_name == asg.inputs["name"]
    assert (s.app.capacity.desired, s.app.production_capacity.desired) == (1, 2)
    assert s.app.production_capacity.max == asg.inputs["maxSize"]

    checks = of_type(res, "aws:route53/healthCheck:HealthCheck")
    assert by_id(checks, p.health_check_id).inputs["fqdn"] == prod["albDnsName"]
    assert by_id(checks, s.health_check_id).inputs["fqdn"] == dr.outputs["albDnsName"]
    switch = inventory.traffic_switch
    assert by_id(checks, switch.health_check_id).inputs["type"] == "HTTPS_STR_MATCH"
    assert by_id(checks, switch.primary_health_check_id).inputs["type"] == "CALCULATED"
    assert (switch.region, switch.bucket, switch.key) == (
        "us-west-2", dr.outputs["trafficSwitchBucket"], "traffic-switch")
    assert (switch.primary_value, switch.failover_value) == ("PRIMARY", "FAILOVER")

    records = {r.inputs["setIdentifier"] for r in of_type(res, "aws:route53/record:Record")}
    assert {inventory.dns.primary_set_identifier,
            inventory.dns.secondary_set_identifier} == records
    assert inventory.dns.public_health_url == "https://app.caresync.health/api/health"
    assert inventory.alert_topic_arn == dr.outputs["alertTopicArn"]
    assert inventory.alert_topic_arn.split(":")[3] == "us-west-2"
    assert inventory.backup_bucket == dr.outputs["backupBucketName"]
    assert inventory.lock_parameter == "/caresync-dr/failover/lock"
    assert inventory.journal_parameter == "/caresync-dr/failover/journal"


def test_inventory_has_no_placeholder_values(dr: ProgramRun) -> None:
    _, text = _inventory(dr)
    for marker in ("None", "Output", "<", "unknown"):
        assert marker not in text, f"inventory contains {marker!r}"


def test_promoted_inventory_still_parses(dr_promoted: ProgramRun) -> None:
    inventory, _ = _inventory(dr_promoted)
    assert inventory.standby.app.capacity == inventory.standby.app.production_capacity


def test_inventory_says_which_site_writes_and_each_database_generation(
        dr: ProgramRun, dr_promoted: ProgramRun) -> None:
    steady, _ = _inventory(dr)
    assert steady.active_site == "primary"
    assert (steady.primary.database.generation, steady.standby.database.generation) == (1, 1)
    promoted, _ = _inventory(dr_promoted)
    assert promoted.active_site == "standby"
    # The promoted standby's in-region replica is what a database-scope failover promotes.
    assert promoted.standby.database.replica_identifiers == ("caresync-standby-db-replica-1",)


def test_an_inventory_written_before_generations_still_parses(dr: ProgramRun) -> None:
    import json

    _, text = _inventory(dr)
    document = json.loads(text)
    del document["activeSite"]
    for site in ("primary", "standby"):
        del document[site]["database"]["generation"]
    old = parse_inventory(json.dumps(document))
    assert old.active_site == "primary" and old.standby.database.generation == 1


def test_the_reversed_direction_has_its_inventory_in_the_primary_region(
        dr: ProgramRun, dr_promoted: ProgramRun) -> None:
    """Issue 15, reverse direction: while the standby site writes, a regional failover
    promotes the primary site and the standby region is the one that may have failed, so the
    inventory (and with it the lock, journal and timeline bucket it names) must be in the
    primary region too: the same document, under the primary site's key there."""
    names = {r.name for r in of_type(dr.resources, "aws:ssm/parameter:Parameter")}
    assert "failover-inventory-primary-copy" not in names, "no copy while the primary writes"
    steady, _ = _inventory(dr)
    assert steady.primary_backup_bucket == "caresync-primary-backups-111122223333"

    _, text = _inventory(dr_promoted)
    copy = one(dr_promoted, "aws:ssm/parameter:Parameter", "failover-inventory-primary-copy")
    assert copy.inputs["region"] == "us-east-1"
    assert copy.inputs["name"] == "/caresync-dr/failover-inventory"
    assert (copy.inputs["type"], copy.inputs["keyId"]) == ("SecureString",
                                                           "alias/caresync-primary")
    assert copy.inputs["value"] == text
    promoted = parse_inventory(copy.inputs["value"])
    assert promoted.active_site == "standby"
    assert promoted.primary_backup_bucket == "caresync-primary-backups-111122223333"


def test_the_operator_may_run_the_reversed_failover(dr: ProgramRun,
                                                     dr_promoted: ProgramRun) -> None:
    """The operator role reaches the primary region's inventory copy, lock and journal, and,
    while the standby writes, may promote the primary site's database, fence the standby's
    and write the timeline into the primary backup bucket."""
    import json

    def statements(run: ProgramRun) -> dict[str, Any]:
        policy = one(run, "aws:iam/rolePolicy:RolePolicy", "operator-policy")
        return {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}

    for run in (dr, dr_promoted):
        books = statements(run)["ReadInventoryLockJournal"]["Resource"]
        for name in ("failover-inventory", "failover/lock", "failover/journal"):
            assert (f"arn:aws:ssm:us-east-1:111122223333:parameter/caresync-dr/{name}"
                    in books)
    steady, promoted = statements(dr), statements(dr_promoted)
    primary_db = f"arn:aws:rds:us-east-1:111122223333:db:{dr_promoted_primary_db(dr_promoted)}"
    assert primary_db in promoted["PromoteDatabases"]["Resource"]
    assert not any(r.endswith(":db:caresync-primary-db")
                   for r in steady["PromoteDatabases"]["Resource"])
    assert any("caresync-primary-backups" in r
               for r in promoted["TrafficSwitchAndTimeline"]["Resource"])
    assert len(promoted["FenceOldPrimaryIngress"]["Resource"]) == 2


def dr_promoted_primary_db(run: ProgramRun) -> str:
    return parse_inventory(_inventory(run)[1]).primary.database.identifier
