"""The update model: what ``pulumi up`` would do to live resources between two program runs.

Pulumi's mocks only *create*; a real ``pulumi up`` diffs the program against the state and
asks the provider to update, replace or delete. :func:`plan` runs that diff offline: the
*before* run stands for the state (its inputs and options), the *after* run for the program.
Each changed property is classified from :mod:`caresync_dr.emulation.provider_schema`:
``in-place``, ``replace``, ``provider-only`` (state, no AWS call) or ``special`` (the provider
does something else than a plain modify: promotes a replica, upgrades a major version,
renames). Refusals are what the engine, the provider or AWS would refuse, or what would
replace or delete a protected resource or a database on anything but a deliberate retirement;
:func:`check` raises :class:`LifecycleRefusedError` with one line per refusal, naming the resource
and the property.

The engine's semantics followed here: ``ignore_changes`` (of the new program) keeps the
state's value; a protected resource (in the state) cannot be deleted or replaced;
``retain_on_delete`` (in the state) deletes nothing in the cloud; a replacement creates the
new resource before deleting the old one unless ``delete_before_replace``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from caresync_dr.emulation.provider_schema import DATA_TYPES, PROVIDER_ONLY, schema_of

INSTANCE = "aws:rds/instance:Instance"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
VAULT_LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
SECRET = "aws:secretsmanager/secret:Secret"
BACKUP_REPLICATION = ("aws:rds/instanceAutomatedBackupsReplication:"
                      "InstanceAutomatedBackupsReplication")
ASG = "aws:autoscaling/group:Group"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
# Types whose update call carries every argument, ignored ones included (PutParameter sends
# the value, PutObject the body): with a stale state they write the old value back.
WHOLE_OBJECT_UPDATES = frozenset({"aws:ssm/parameter:Parameter",
                                  "aws:s3/bucketObjectv2:BucketObjectv2"})
# ModifyDBInstance arguments that cost a restart or a failover (RDS user guide, "Settings for
# DB instances": downtime column).
RESTARTS = frozenset({"instanceClass", "engineVersion", "multiAz", "storageType"})


class ResourceLike(Protocol):
    @property
    def type(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def custom(self) -> bool: ...
    @property
    def urn(self) -> str: ...
    @property
    def inputs(self) -> Mapping[str, Any]: ...
    @property
    def outputs(self) -> Mapping[str, Any]: ...
    @property
    def protect(self) -> bool: ...
    @property
    def ignore_changes(self) -> tuple[str, ...]: ...
    @property
    def retain_on_delete(self) -> bool: ...
    @property
    def delete_before_replace(self) -> bool: ...


class RunLike(Protocol):
    @property
    def stack(self) -> str: ...
    @property
    def resources(self) -> Sequence[Any]: ...


@dataclass(frozen=True)
class Change:
    """One changed property: ``kind`` is in-place, replace, provider-only or special."""

    property: str
    old: Any
    new: Any
    kind: str
    note: str = ""

    def __str__(self) -> str:
        shown = f"{_short(self.old)} -> {_short(self.new)}"
        return f"{self.property}: {shown} [{self.kind}]" + (f" {self.note}" if self.note else "")


@dataclass(frozen=True)
class Step:
    """What happens to one resource: create, update, replace, delete, retain or same."""

    urn: str
    type: str
    action: str
    changes: tuple[Change, ...] = ()
    notes: tuple[str, ...] = ()
    refusals: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.urn.rsplit("::", 1)[-1]

    def change(self, prop: str) -> Change | None:
        return next((c for c in self.changes if c.property == prop), None)


@dataclass(frozen=True)
class Plan:
    stack: str
    steps: tuple[Step, ...]

    def step(self, name: str) -> Step:
        """The step of the custom resource with this logical name."""
        found = [s for s in self.steps if s.name == name]
        if len(found) != 1:
            raise LookupError(f"no single step for {name!r} in the {self.stack} plan")
        return found[0]

    def with_action(self, *actions: str) -> list[Step]:
        return [s for s in self.steps if s.action in actions]

    @property
    def refusals(self) -> list[str]:
        return [f"{s.urn}: {r}" for s in self.steps for r in s.refusals]

    def summary(self) -> str:
        """One line per step that does something, as a reviewer reads a preview."""
        lines = []
        for s in self.steps:
            if s.action == "same":
                continue
            lines.append(f"{s.action:8} {s.type} {s.name}")
            lines.extend(f"           {c}" for c in s.changes)
            lines.extend(f"           note: {n}" for n in s.notes)
            lines.extend(f"           REFUSED: {r}" for r in s.refusals)
        return "\n".join(lines)


class LifecycleRefusedError(Exception):
    """``pulumi up`` would fail or destroy data; the message lists every refusal."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        lines = "\n".join(f"  {r}" for r in plan.refusals)
        super().__init__(f"stack {plan.stack}: the update is refused:\n{lines}")


def check(result: Plan) -> Plan:
    if result.refusals:
        raise LifecycleRefusedError(result)
    return result


# --- comparing values -------------------------------------------------------------------------

def _normal(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _normal(v) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    if isinstance(value, str) and value[:1] in "[{":
        try:  # policies and other JSON documents compare by content, not by spelling
            return _normal(json.loads(value))
        except json.JSONDecodeError:
            return value
    return value


def _short(value: Any) -> str:
    if value is None:
        return "(unset)"
    value = int(value) if isinstance(value, float) and value.is_integer() else value
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def _retiring(inputs: Mapping[str, Any]) -> bool:
    """A database generation being retired on purpose (``caresync:lifecycle`` tag)."""
    tags = inputs.get("tags")
    return isinstance(tags, Mapping) and tags.get("caresync:lifecycle") == "retiring"


def _major(version: Any) -> int | None:
    match = re.match(r"(\d+)", str(version or ""))
    return int(match.group(1)) if match else None


def _region(arn: Any) -> str | None:
    parts = str(arn or "").split(":")
    return parts[3] if len(parts) > 5 and parts[0] == "arn" else None


# --- the diff -------------------------------------------------------------------------------

def plan(before: RunLike, after: RunLike) -> Plan:
    """The steps ``pulumi up`` of ``after``'s program takes from ``before``'s state."""
    old = {r.urn: r for r in before.resources if r.custom}
    new = {r.urn: r for r in after.resources if r.custom}
    context = _Context(before, after)
    steps = []
    for urn, resource in new.items():
        if urn not in old:
            steps.append(_create(resource, context))
        else:
            steps.append(_update(old[urn], resource, context))
    for urn, resource in old.items():
        if urn not in new:
            steps.append(_delete(resource, context))
    return Plan(after.stack, tuple(steps))


@dataclass
class _Context:
    before: RunLike
    after: RunLike
    groups: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for run in (self.before, self.after):
            for r in run.resources:
                if r.type == PARAMETER_GROUP:
                    self.groups[str(r.inputs.get("name"))] = r.inputs

    def family(self, group_name: Any) -> str | None:
        group = self.groups.get(str(group_name))
        return str(group.get("family")) if group else None


# What a new RDS instance can be created from besides its own engine and master user.
CREATED_FROM = ("replicateSourceDb", "snapshotIdentifier", "restoreToPointInTime")


def _create(resource: ResourceLike, context: _Context) -> Step:
    notes = []
    refusals = []
    if resource.type == INSTANCE and resource.inputs.get("replicateSourceDb"):
        notes.append("a new replica copies the whole database from its source (hours for a "
                     "large one); its lag alarms fire until it has caught up")
    if resource.type == INSTANCE and not any(resource.inputs.get(k) for k in CREATED_FROM) \
            and not resource.inputs.get("engine"):
        refusals.append(f"creates {resource.inputs.get('identifier')} as a writer with neither "
                        "an engine and master user nor a source (replica, snapshot, point in "
                        "time): RDS refuses CreateDBInstance. A generation that already exists "
                        "(scripts/pitr.py restored it) is imported first: docs/lifecycles.md, "
                        "'After a point-in-time restore'")
    return Step(resource.urn, resource.type, "create", notes=tuple(notes),
                refusals=tuple(refusals))


def _delete(resource: ResourceLike, context: _Context) -> Step:
    refusals: list[str] = []
    notes: list[str] = []
    if resource.protect:
        refusals.append("protected: pulumi refuses to delete it (pulumi state unprotect, or "
                        "retire it through the program first)")
    if resource.retain_on_delete:
        notes.append("retain_on_delete: removed from the state, left in AWS")
        if resource.type == BACKUP_REPLICATION:
            notes.append("the replication of the old source's automated backups goes on until "
                         "that source is deleted, or stop it by hand: aws rds "
                         "stop-db-instance-automated-backups-replication "
                         f"--source-db-instance-arn {resource.inputs.get('sourceDbInstanceArn')}")
        if resource.type == PARAMETER_GROUP:
            notes.append(f"delete {resource.inputs.get('name')} by hand once no instance uses "
                         "it: aws rds delete-db-parameter-group --db-parameter-group-name "
                         f"{resource.inputs.get('name')}")
        return Step(resource.urn, resource.type, "retain", notes=tuple(notes),
                    refusals=tuple(refusals))
    if resource.type == INSTANCE:
        refusals.extend(_instance_delete_refusals(resource.inputs))
        if not resource.inputs.get("replicateSourceDb") and not refusals:
            notes.append(f"final snapshot {resource.inputs.get('finalSnapshotIdentifier')}; "
                         "automated backups kept for their retention")
    elif resource.type in DATA_TYPES:
        refusals.append(f"deleting a {resource.type.rsplit(':', 1)[-1]} loses what it holds")
    if resource.type == VAULT_LOCK and resource.inputs.get("changeableForDays") is not None:
        refusals.append("a compliance-mode vault lock cannot be deleted after its grace period")
    if resource.type == BACKUP_REPLICATION:
        notes.append("the provider stops the replication and then waits on the source region: "
                     "it hangs while that region is down")
    return Step(resource.urn, resource.type, "delete", notes=tuple(notes),
                refusals=tuple(refusals))


def _instance_delete_refusals(inputs: Mapping[str, Any]) -> list[str]:
    refusals = []
    if inputs.get("deletionProtection"):
        refusals.append("deletion_protection is on: RDS refuses DeleteDBInstance (turn it off "
                        "in a previous pulumi up)")
    if inputs.get("replicateSourceDb"):
        if inputs.get("skipFinalSnapshot") is not True or inputs.get("finalSnapshotIdentifier"):
            refusals.append("a read replica deleted with a final snapshot: RDS refuses it "
                            "(SkipFinalSnapshot must be set for a read replica)")
    else:
        if not _retiring(inputs):
            refusals.append("a database that holds data is deleted without being retired on "
                            "purpose first (dbRetiring; docs/lifecycles.md)")
        if inputs.get("skipFinalSnapshot") is not True and not inputs.get(
                "finalSnapshotIdentifier"):
            refusals.append("no final_snapshot_identifier: the provider refuses the delete")
    return refusals


def _path_value(inputs: Mapping[str, Any], path: str) -> Any:
    value: Any = inputs
    for part in path.split("."):
        if isinstance(value, list) and len(value) == 1:  # a one-element block
            value = value[0]
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _with_path(inputs: Mapping[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``inputs`` whose nested ``path`` holds ``value`` (None removes it)."""
    copied: dict[str, Any] = json.loads(json.dumps(inputs, default=str))
    parts = path.split(".")
    node: Any = copied
    for part in parts[:-1]:
        if isinstance(node, list) and len(node) == 1:
            node = node[0]
        if not isinstance(node, dict):
            return copied
        node = node.setdefault(part, {})
    if isinstance(node, list) and len(node) == 1:
        node = node[0]
    if isinstance(node, dict):
        if value is None:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = value
    return copied


def _goal(old: ResourceLike, new: ResourceLike) -> dict[str, Any]:
    """What the engine sends: the program's inputs, with every ignored property (a top-level
    key or a nested path such as ``launchTemplate.version``) kept at the state's value."""
    goal: dict[str, Any] = dict(new.inputs)
    for path in new.ignore_changes:
        if "." not in path:
            goal.pop(path, None)
            if path in old.inputs:
                goal[path] = old.inputs[path]
        elif path.split(".", 1)[0] in goal:
            goal = _with_path(goal, path, _path_value(old.inputs, path))
    return goal


def _update(old: ResourceLike, new: ResourceLike, context: _Context) -> Step:
    schema = schema_of(new.type)
    provider_only = PROVIDER_ONLY.get(new.type, frozenset())
    ignored = set(new.ignore_changes)
    goal = _goal(old, new)
    changes: list[Change] = []
    notes: list[str] = []
    refusals: list[str] = []
    for key in sorted(set(old.inputs) | set(goal)):
        before, after = old.inputs.get(key), goal.get(key)
        if key in ("region",) or _normal(before) == _normal(after):
            continue
        if after is None and key in schema.computed:
            continue  # left to the provider: it keeps the live value
        if new.type == INSTANCE:
            change = _instance_change(key, before, after, old, new, context=context)
        elif key in provider_only:
            change = Change(key, before, after, "provider-only")
        elif key in schema.replace_on:
            change = Change(key, before, after, "replace")
        else:
            change = Change(key, before, after, "in-place")
        changes.append(change)
    retiring = _retiring(new.inputs)
    for key in sorted(ignored):
        said, kept = _path_value(new.inputs, key), _path_value(old.inputs, key)
        if not retiring and said is not None and kept is not None and \
                _normal(said) != _normal(kept):
            notes.append(f"{key}: the program now says {_short(said)}, "
                         "ignore_changes keeps the state's value; set it by hand if meant")
    if new.type == ASG:
        refusals.extend(_group_refusals(old, new, goal))
        notes.extend(_group_notes(old, new))
    if old.protect != new.protect:
        notes.append("protect " + ("on" if new.protect else "off") + " (state only)")
    if not changes:
        return Step(new.urn, new.type, "same", notes=tuple(notes), refusals=tuple(refusals))
    replace = any(c.kind == "replace" for c in changes)
    refusals.extend(c.note for c in changes if c.kind == "refused")
    if replace:
        refusals.extend(_replace_refusals(old, new, changes))
        notes.extend(_replace_notes(old, new))
    else:
        notes.extend(_update_notes(old, new, changes))
        if new.type in WHOLE_OBJECT_UPDATES and ignored and any(
                c.kind == "in-place" for c in changes):
            notes.append(f"updates with the state's {', '.join(sorted(ignored))}: run "
                         "`pulumi up --refresh` if the live value may have changed outside "
                         "Pulumi, or the update writes the stale one back")
    return Step(new.urn, new.type, "replace" if replace else "update", tuple(changes),
                tuple(notes), tuple(refusals))


def _replace_refusals(old: ResourceLike, new: ResourceLike,
                      changes: Iterable[Change]) -> list[str]:
    props = ", ".join(c.property for c in changes if c.kind == "replace")
    refusals = []
    if old.protect:
        refusals.append(f"replacing a protected resource ({props} forces a replacement)")
    if new.type in DATA_TYPES:
        refusals.append(f"replacing a {new.type.rsplit(':', 1)[-1]} loses what it holds "
                        f"({props} forces a replacement)")
    keys = schema_of(new.type).name_keys
    if keys and not new.delete_before_replace and all(
            _normal(old.inputs.get(k)) == _normal(new.inputs.get(k)) for k in keys):
        refusals.append(f"{props} forces a replacement that keeps the physical name "
                        f"({', '.join(keys)}): the new one cannot be created before the old "
                        "one is deleted (AlreadyExists); set delete_before_replace or rename")
    if new.type == VAULT_LOCK and old.inputs.get("changeableForDays") is not None:
        refusals.append("the vault lock is in compliance mode: after its grace period AWS "
                        "refuses to delete or change it")
    if new.type == BACKUP_REPLICATION and new.retain_on_delete and _normal(
            old.inputs.get("sourceDbInstanceArn")) == _normal(
            new.inputs.get("sourceDbInstanceArn")):
        refusals.append("the replaced replication is retained (not stopped), and RDS refuses "
                        "a second replication of the same source into this region: stop it "
                        "by hand first (aws rds stop-db-instance-automated-backups-"
                        "replication)")
    return refusals


def _replace_notes(old: ResourceLike, new: ResourceLike) -> list[str]:
    notes = []
    if old.retain_on_delete:
        notes.append("the replaced one is left in AWS (retain_on_delete)")
        if new.type == PARAMETER_GROUP:
            notes.append(f"delete {old.inputs.get('name')} by hand once no instance uses it: "
                         "aws rds delete-db-parameter-group --db-parameter-group-name "
                         f"{old.inputs.get('name')}")
    if new.type == VAULT_LOCK and new.inputs.get("changeableForDays") is not None:
        days = new.inputs["changeableForDays"]
        notes.append(f"IRREVERSIBLE after {_short(days)} days: compliance mode; nobody, root "
                     "included, can then shorten retention, delete recovery points early, "
                     "change or remove the lock, or delete the vault while it holds points")
    if new.type == HEALTH_CHECK:
        notes.append("a new health check id: records, calculated checks, alarms and the "
                     "failover inventory follow in the same update")
    return notes


TEMPLATE_VERSION = "launchTemplate.version"
ROLLOUT_COMMAND = "python scripts/app.py deploy"


def _group_refusals(old: ResourceLike, new: ResourceLike, goal: Mapping[str, Any]) -> list[str]:
    """What an Auto Scaling group's update would break (terraform-provider-aws
    ``resourceGroupUpdate``: UpdateAutoScalingGroup with the new launch template first, then
    StartInstanceRefresh when ``instance_refresh`` is set)."""
    refusals = []
    old_spec, new_spec = _path_value(old.inputs, "launchTemplate"), goal.get("launchTemplate")
    moved = _normal(old_spec) != _normal(new_spec)
    block = _path_value(new.inputs, "instanceRefresh.preferences.autoRollback")
    if moved and block:
        refusals.append("instance_refresh with auto_rollback and a new launch template: the "
                        "provider saves the new version on the group before it starts the "
                        "refresh, so an automatic rollback would 'restore' the new version "
                        "(terraform-provider-aws #34189); roll releases out with "
                        f"`{ROLLOUT_COMMAND}` instead")
    if TEMPLATE_VERSION in new.ignore_changes and _normal(
            _path_value(old.inputs, "launchTemplate.id")) != _normal(
            _path_value(new.inputs, "launchTemplate.id")):
        refusals.append("the launch template is replaced while the group's version is ignored: "
                        "the kept version number belongs to the old template; roll out the "
                        "new template first (create it beside the old one, then "
                        f"`{ROLLOUT_COMMAND}`)")
    return refusals


def _group_notes(old: ResourceLike, new: ResourceLike) -> list[str]:
    kept = _path_value(old.inputs, TEMPLATE_VERSION)
    if TEMPLATE_VERSION not in new.ignore_changes:
        return []
    if kept in (None, "$Latest", "$Default"):
        return [f"the group stays on {kept or '$Default'} (ignore_changes): run `"
                f"{ROLLOUT_COMMAND}` once, which pins the template's latest numbered version, "
                "or Auto Scaling cannot roll a release back"]
    return []


def _update_notes(old: ResourceLike, new: ResourceLike, changes: Sequence[Change]) -> list[str]:
    notes = []
    if new.type == ASG and any(c.property == "launchTemplate" for c in changes):
        notes.append("running instances keep their template until an instance refresh")
    if new.type == LAUNCH_TEMPLATE:
        notes.append(f"a new template version (a release); the group keeps running the old one "
                     f"until `{ROLLOUT_COMMAND}` rolls it out (instance refresh, rolled back "
                     "by Auto Scaling if the 5xx or unhealthy-host alarm fires)")
    if new.type == SECRET and any(c.property == "replicas" for c in changes):
        notes.append("ReplicateSecretToRegions / RemoveRegionsFromReplication")
    if new.type == INSTANCE:
        restarts = sorted({c.property for c in changes if c.kind == "in-place"} & RESTARTS)
        if restarts:
            when = ("now" if new.inputs.get("applyImmediately") else
                    "in the next maintenance window")
            notes.append(f"{', '.join(restarts)}: a restart or failover, {when}")
    return notes


def _instance_change(key: str, before: Any, after: Any, old: ResourceLike, new: ResourceLike,
                     *, context: _Context) -> Change:
    """RDS instance updates as the provider runs them (instance.go resourceInstanceUpdate):
    first PromoteReadReplica when replicate_source_db is removed, then one ModifyDBInstance
    with ApplyImmediately from the program."""
    schema = schema_of(INSTANCE)
    immediate = bool(new.inputs.get("applyImmediately"))
    if key == "replicateSourceDb":
        if before and not after:
            return Change(key, before, after, "special", "PromoteReadReplica: if failover.py "
                          "promoted it already, `pulumi refresh --target <urn>` first, or RDS "
                          "refuses the call (the instance is not a read replica)")
        return Change(key, before, after, "refused", f"replicate_source_db {_short(before)} -> "
                      f"{_short(after)}: the provider refuses ('cannot elect new source "
                      "database for replication'); a site that must replicate again needs a "
                      "new database generation (dbGeneration)")
    if key == "identifier":
        return Change(key, before, after, "refused", "renaming a database changes its endpoint "
                      "under the app; give a new generation instead")
    if key == "engineVersion":
        return _engine_change(before, after, new)
    if key == "parameterGroupName":
        return _parameter_group_change(before, after, new, context)
    if key in PROVIDER_ONLY[INSTANCE]:
        return Change(key, before, after, "provider-only")
    if key in schema.replace_on:
        return Change(key, before, after, "replace")
    if key == "multiAz" and after is True and not immediate:
        return Change(key, before, after, "refused", "Multi-AZ deferred to the maintenance "
                      "window: the writer stays single-AZ until then (set apply_immediately)")
    if key == "deletionProtection":
        return Change(key, before, after, "in-place")  # applied at once whatever the window
    return Change(key, before, after, "in-place", "" if immediate else "(pending until the "
                  "maintenance window)")


def _engine_change(before: Any, after: Any, new: ResourceLike) -> Change:
    old_major, new_major = _major(before), _major(after)
    if old_major is None or new_major is None or old_major == new_major:
        # A major prefix against the actual minor version, or first stated: no change.
        return Change("engineVersion", before, after, "provider-only",
                      "same major: the provider compares it with the actual version")
    if new_major < old_major:
        return Change("engineVersion", before, after, "refused",
                      "RDS cannot downgrade an engine; restore a snapshot into a new instance")
    if new.inputs.get("replicateSourceDb"):
        return Change("engineVersion", before, after, "refused",
                      "a read replica cannot be major-upgraded on its own")
    if not new.inputs.get("allowMajorVersionUpgrade"):
        return Change("engineVersion", before, after, "refused", "a major upgrade needs "
                      "allow_major_version_upgrade in the same ModifyDBInstance")
    return Change("engineVersion", before, after, "special", "major upgrade (pg_upgrade, an "
                  "outage of minutes): RDS upgrades the in-region replicas with it, not the "
                  "cross-region one, which stops replicating and needs a new generation")


def _parameter_group_change(before: Any, after: Any, new: ResourceLike,
                            context: _Context) -> Change:
    old_family, new_family = context.family(before), context.family(after)
    source = new.inputs.get("replicateSourceDb")
    own = _region(new.outputs.get("arn"))
    if (old_family != new_family and source and _region(source) not in (None, own)):
        return Change("parameterGroupName", before, after, "refused",
                      f"{old_family} -> {new_family} on a cross-region replica: its source was "
                      "upgraded, RDS does not upgrade cross-region replicas, so it must be "
                      "replaced by a new generation (dbGeneration)")
    note = "a new family follows the engine's major" if old_family != new_family else ""
    return Change("parameterGroupName", before, after, "in-place",
                  (note + "; static parameters apply at the next reboot").lstrip("; "))
