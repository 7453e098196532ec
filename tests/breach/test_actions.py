"""Each containment and revocation action on moto, read back through the probes: what real AWS
would show afterwards (moto's gaps are worked around in caresync_dr/emulation, named there)."""

from __future__ import annotations

from datetime import UTC, datetime

from caresync_dr.breach import actions, probes
from tests.breach.world import LEAKED_USER, PRIMARY, BreachWorld

INCIDENT = "INC-2026-11-30"


def test_world_has_an_app_instance_in_its_group_and_target_group(world: BreachWorld) -> None:
    site = world.sites[PRIMARY]
    state = probes.instance_state(world.client("ec2", PRIMARY),
                                  world.client("autoscaling", PRIMARY),
                                  world.client("elbv2", PRIMARY), site.instances[0])
    assert state is not None
    assert state.auto_scaling_group == "caresync-primary-app"
    assert state.target_groups == (site.target_group,)
    assert state.volumes and not state.termination_protected
    assert probes.instance_state(world.client("ec2", "us-west-2"),
                                 world.client("autoscaling", "us-west-2"),
                                 world.client("elbv2", "us-west-2"), site.instances[0]) is None


def test_evidence_then_isolation(world: BreachWorld) -> None:
    site = world.sites[PRIMARY]
    ec2, asg, elb = (world.client(s, PRIMARY) for s in ("ec2", "autoscaling", "elbv2"))
    instance = site.instances[0]
    before = probes.instance_state(ec2, asg, elb, instance)
    assert before is not None
    for volume, device in before.volumes.items():
        actions.snapshot_volume(ec2, volume, instance, device, INCIDENT)
    snapshots = probes.evidence_snapshots(ec2, INCIDENT, instance)
    assert set(snapshots) == set(before.volumes)
    actions.protect_from_termination(ec2, instance)
    actions.protect_from_scale_in(asg, "caresync-primary-app", instance)
    actions.detach_from_group(asg, "caresync-primary-app", instance)
    for tg in before.target_groups:
        actions.deregister(elb, tg, instance)
    group = actions.ensure_quarantine_group(ec2, before.vpc_id, INCIDENT)
    assert actions.ensure_quarantine_group(ec2, before.vpc_id, INCIDENT) == group
    rules = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    assert rules["IpPermissions"] == [] and rules["IpPermissionsEgress"] == []
    actions.isolate(ec2, list(before.enis), group)
    after = probes.instance_state(ec2, asg, elb, instance)
    assert after is not None
    assert after.isolated_by(group), after.enis
    assert after.termination_protected and after.auto_scaling_group is None
    assert after.target_groups == ()
    # The group keeps its capacity: it launched a replacement.
    members = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["caresync-primary-app"])
    assert len(members["AutoScalingGroups"][0]["Instances"]) == 2
    assert instance not in [i["InstanceId"] for i in members["AutoScalingGroups"][0]["Instances"]]


def test_keys_users_and_roles(world: BreachWorld) -> None:
    iam = world.client("iam", PRIMARY)
    assert probes.access_key_owner(iam, world.access_key) == LEAKED_USER
    assert probes.access_key_owner(iam, "AKIAAAAAAAAAAAAAAAAA") is None
    actions.deactivate_access_key(iam, LEAKED_USER, world.access_key)
    assert probes.access_key_status(iam, LEAKED_USER, world.access_key) == "Inactive"
    assert not probes.user_quarantined(iam, LEAKED_USER)
    actions.quarantine_user(iam, LEAKED_USER, INCIDENT)
    assert probes.user_quarantined(iam, LEAKED_USER)
    assert probes.role_revoked_before(iam, world.role) is None
    when = datetime(2026, 11, 30, 3, 4, 5, tzinfo=UTC)
    actions.revoke_role_sessions(iam, world.role, when)
    assert probes.role_revoked_before(iam, world.role) == when
    assert probes.role_arn(iam, "no-such-role") is None


def test_trail_data_events_are_added_without_losing_any(world: BreachWorld) -> None:
    trail = world.client("cloudtrail", PRIMARY)
    name = world.layout.primary.trail_name
    before = probes.trail_data_event_buckets(trail, name)
    assert before == {world.layout.primary.backup_bucket}
    actions.ensure_data_events(trail, name, [world.layout.standby.backup_bucket,
                                             world.layout.primary.backup_bucket])
    assert probes.trail_data_event_buckets(trail, name) == {
        world.layout.primary.backup_bucket, world.layout.standby.backup_bucket}
    trail.stop_logging(Name=name)
    assert probes.trail_logging(trail, name) is False
    actions.start_logging(trail, name)
    assert probes.trail_logging(trail, name) is True
