"""The breach response's steps, in the seed's order: contain, revoke, more logging, verify,
investigate, notify. Each is small and idempotent: ``check`` re-reads real state and says
``run`` (what it would change), ``done`` (why it needn't) or ``blocked`` (why it can't);
``apply`` makes the change and returns one sentence.
"""

from __future__ import annotations

import json
import logging
import time
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.app.probes import ACTIVE_REFRESH_STATUSES
from caresync_dr.breach import actions, probes
from caresync_dr.breach.context import BreachContext, RegionAccess, Rotation
from caresync_dr.breach.scope import (
    Principal,
    TrailSource,
    database_scope,
    log_group_lines,
    principal_scope,
)
from caresync_dr.db import pgaudit
from caresync_dr.db.rotation import (
    CURRENT,
    PREVIOUS,
    RotationError,
    SecretStore,
    master_connection,
    promote_replica,
    rotate,
    rotation_token,
    switch_refusals,
)
from caresync_dr.db.secrets import MASTER_SECRET_NAME
from caresync_dr.db.sessions import (
    OWN_APPLICATION_NAME,
    Endpoint,
    LoginRefusedError,
    can_login,
    disable_login,
    login_refused,
    role_exists,
    sessions_of,
    terminate,
)
from caresync_dr.failover.actions import start_instance_refresh
from caresync_dr.operations import Step as OpStep
from caresync_dr.operations import StepFailedError, Verdict, blocked, done, run

log = logging.getLogger(__name__)
AWS_ERRORS = (ClientError, BotoCoreError)
DB_ERRORS = (psycopg.Error, RotationError, LoginRefusedError, ValueError)


class Step(OpStep[BreachContext], ABC):
    """A breach step: the engine's Step over the breach context. Subclasses write
    :meth:`inspect` (reads only) and :meth:`change`; a database or rotation error in either
    becomes the step's failure (the engine records it and the run can be resumed), as AWS
    errors already do."""

    def check(self, ctx: BreachContext) -> Verdict:
        try:
            return self.inspect(ctx)
        except DB_ERRORS as exc:
            raise StepFailedError(f"{type(exc).__name__}: {str(exc).strip()}") from exc

    def apply(self, ctx: BreachContext) -> str:
        try:
            return self.change(ctx)
        except DB_ERRORS as exc:
            raise StepFailedError(f"{type(exc).__name__}: {str(exc).strip()}") from exc

    @abstractmethod
    def inspect(self, ctx: BreachContext) -> Verdict: ...

    @abstractmethod
    def change(self, ctx: BreachContext) -> str: ...


S = TypeVar("S", bound=Step)


def for_target(cls: type[S], target: Any, name: str, title: str, *,
               best_effort: bool | None = None) -> S:
    """One step of ``cls`` acting on ``target`` (an instance, a key, a role...): the engine
    names steps per class, so each target gets a subclass carrying its own name and title
    (and, when given, whether its failure stops the run)."""
    attrs: dict[str, Any] = {"name": name, "title": title}
    if best_effort is not None:
        attrs["best_effort"] = best_effort
    specific = type(f"{cls.__name__}:{name}", (cls,), attrs)
    return cast(S, specific(target))


def _unreachable(access: RegionAccess) -> Verdict:
    return blocked(f"{access.site.region} does not answer ({access.reason})")


def _revoked_at(ctx: BreachContext) -> datetime:
    """The revocation instant of this incident's run: sessions issued before it are denied.
    Recorded once (a resumed run keeps the first run's, so its check finds the work done)."""
    value = ctx.facts.get("revokedBefore")
    if value is None:
        value = datetime.now(UTC).replace(microsecond=0).isoformat()
        ctx.fact("revokedBefore", value, save=True)
    return datetime.fromisoformat(str(value))


# --- contain ------------------------------------------------------------------------------------

class InstanceStep(Step, ABC):
    def __init__(self, instance_id: str) -> None:
        self.instance_id = instance_id

    def access(self, ctx: BreachContext) -> RegionAccess:
        return ctx.regions[ctx.resolution.instances[self.instance_id].region]

    def state(self, ctx: BreachContext) -> probes.InstanceState | None:
        c = self.access(ctx).clients
        return probes.instance_state(c.ec2(), c.autoscaling(), c.elbv2(), self.instance_id)


class Evidence(InstanceStep):
    expected_seconds = 10

    def inspect(self, ctx: BreachContext) -> Verdict:
        access = self.access(ctx)
        if not access.reachable:
            return _unreachable(access)
        state = self.state(ctx)
        if state is None:
            return blocked(f"{self.instance_id} no longer exists in {access.site.region}")
        taken = probes.evidence_snapshots(access.clients.ec2(), ctx.incident.incident_id,
                                          self.instance_id)
        missing = sorted(set(state.volumes) - set(taken))
        if not missing:
            return done(f"{self.instance_id}: evidence snapshots "
                        f"{', '.join(sorted(s['SnapshotId'] for s in taken.values()))}")
        return run(f"snapshot {', '.join(missing)} of {self.instance_id}")

    def change(self, ctx: BreachContext) -> str:
        access = self.access(ctx)
        ec2 = access.clients.ec2()
        state = self.state(ctx)
        if state is None:
            raise StepFailedError(f"{self.instance_id} disappeared")
        taken = probes.evidence_snapshots(ec2, ctx.incident.incident_id, self.instance_id)
        made = [actions.snapshot_volume(ec2, volume, self.instance_id, device,
                                        ctx.incident.incident_id)
                for volume, device in sorted(state.volumes.items()) if volume not in taken]
        ctx.fact(f"evidence:{self.instance_id}", sorted(
            [*made, *(s["SnapshotId"] for s in taken.values())]))
        return f"{self.instance_id}: snapshots {', '.join(made)} requested (EBS captures the " \
               "volumes as of the request)"


class Isolate(InstanceStep):
    expected_seconds = 15

    def _group(self, ctx: BreachContext, state: probes.InstanceState) -> str | None:
        return probes.quarantine_group(self.access(ctx).clients.ec2(), state.vpc_id,
                                       actions.quarantine_group_name(ctx.incident.incident_id))

    def _left(self, ctx: BreachContext, state: probes.InstanceState) -> list[str]:
        left = []
        if not state.termination_protected:
            left.append("termination protection")
        if state.auto_scaling_group:
            left.append(f"detach from {state.auto_scaling_group}")
        if state.target_groups:
            left.append(f"deregister from {len(state.target_groups)} target group(s)")
        group = self._group(ctx, state)
        if group is None or not state.isolated_by(group):
            left.append("quarantine security group")
        return left

    def inspect(self, ctx: BreachContext) -> Verdict:
        access = self.access(ctx)
        if not access.reachable:
            return _unreachable(access)
        state = self.state(ctx)
        if state is None:
            return blocked(f"{self.instance_id} no longer exists in {access.site.region}")
        left = self._left(ctx, state)
        if not left:
            return done(f"{self.instance_id} is isolated (quarantine group only, protected, "
                        "in no Auto Scaling group or target group)")
        return run(f"{self.instance_id}: {', '.join(left)}")

    def change(self, ctx: BreachContext) -> str:
        c = self.access(ctx).clients
        ec2, asg, elb = c.ec2(), c.autoscaling(), c.elbv2()
        state = self.state(ctx)
        if state is None:
            raise StepFailedError(f"{self.instance_id} disappeared")
        did = []
        if not state.termination_protected:
            actions.protect_from_termination(ec2, self.instance_id)
            did.append("termination protection on")
        if state.auto_scaling_group:
            # Protected first: the group must not terminate it while it is detached.
            actions.protect_from_scale_in(asg, state.auto_scaling_group, self.instance_id)
            actions.detach_from_group(asg, state.auto_scaling_group, self.instance_id)
            did.append(f"detached from {state.auto_scaling_group} (a replacement launches)")
        for target_group in probes.registered_target_groups(elb, self.instance_id,
                                                            list(state.target_groups) or None):
            actions.deregister(elb, target_group, self.instance_id)
            did.append(f"deregistered from {target_group.rsplit(':', 1)[-1]}")
        group = actions.ensure_quarantine_group(ec2, state.vpc_id, ctx.incident.incident_id)
        actions.isolate(ec2, list(state.enis), group)
        actions.tag_instance(ec2, self.instance_id, ctx.incident.incident_id)
        did.append(f"only security group {group} (no rule in or out)")
        return f"{self.instance_id}: " + "; ".join(did)


# --- revoke: IAM ------------------------------------------------------------------------------

def _owner(ctx: BreachContext, key: str) -> str | None:
    """The key's user: resolved before the first change, or (IAM did not answer then) now."""
    owner = ctx.resolution.key_owners.get(key)
    if owner is None:
        owner = probes.access_key_owner(ctx.iam(), key)
        if owner is not None:
            ctx.resolution.key_owners[key] = owner
    return owner


class DeactivateKey(Step):
    expected_seconds = 2

    def __init__(self, key: str) -> None:
        self.key = key

    def inspect(self, ctx: BreachContext) -> Verdict:
        user = _owner(ctx, self.key)
        if user is None:
            return blocked(f"IAM knows no access key {self.key}")
        status = probes.access_key_status(ctx.iam(), user, self.key)
        if status == "Inactive":
            return done(f"access key {self.key} of {user} is inactive")
        if status is None:
            return done(f"access key {self.key} of {user} no longer exists")
        return run(f"deactivate access key {self.key} of {user}")

    def change(self, ctx: BreachContext) -> str:
        user = _owner(ctx, self.key)
        assert user is not None
        actions.deactivate_access_key(ctx.iam(), user, self.key)
        return f"access key {self.key} of {user} deactivated"


class RevokeUserSessions(Step):
    """A leaked key's owner: sessions obtained with the key before now (GetSessionToken,
    AssumeRole) outlive the key's deactivation; a deny on older tokens ends them."""

    expected_seconds = 2

    def __init__(self, user: str) -> None:
        self.user = user

    def inspect(self, ctx: BreachContext) -> Verdict:
        bound = _user_revoked_before(ctx, self.user)
        if bound is not None and bound >= _revoked_at(ctx):
            return done(f"{self.user}'s sessions issued before {bound.isoformat()} are denied")
        return run(f"deny {self.user}'s sessions issued before {_revoked_at(ctx).isoformat()}")

    def change(self, ctx: BreachContext) -> str:
        when = _revoked_at(ctx)
        ctx.iam().put_user_policy(UserName=self.user, PolicyName=probes.REVOKE_POLICY,
                                  PolicyDocument=json.dumps(_older_sessions_denied(when)))
        return f"{self.user}'s sessions issued before {when.isoformat()} are denied"


def _older_sessions_denied(when: datetime) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Action": ["*"], "Resource": ["*"],
        "Condition": {"DateLessThan": {"aws:TokenIssueTime": actions.token_issue_time(when)}}}]}


def _user_revoked_before(ctx: BreachContext, user: str) -> datetime | None:
    iam = ctx.iam()
    try:
        answer = iam.get_user_policy(UserName=user, PolicyName=probes.REVOKE_POLICY)
    except ClientError as exc:
        if probes.error_code(exc) == "NoSuchEntity":
            return None
        raise
    document: Any = answer["PolicyDocument"]
    parsed: dict[str, Any] = json.loads(document) if isinstance(document, str) else document
    for statement in parsed.get("Statement", []):
        bound = statement.get("Condition", {}).get("DateLessThan", {}).get("aws:TokenIssueTime")
        if bound:
            return datetime.fromisoformat(str(bound).replace("Z", "+00:00"))
    return None


class QuarantineUser(Step):
    expected_seconds = 3

    def __init__(self, user: str) -> None:
        self.user = user

    def _active_keys(self, ctx: BreachContext) -> list[str]:
        keys = ctx.iam().list_access_keys(UserName=self.user).get("AccessKeyMetadata", [])
        return [k["AccessKeyId"] for k in keys if k["Status"] == "Active"]

    def inspect(self, ctx: BreachContext) -> Verdict:
        denied = probes.user_quarantined(ctx.iam(), self.user)
        active = self._active_keys(ctx)
        if denied and not active:
            return done(f"{self.user} is denied everything and has no active key")
        return run(f"{'' if denied else 'deny everything to ' + self.user + '; '}"
                   f"deactivate {len(active)} key(s)")

    def change(self, ctx: BreachContext) -> str:
        iam = ctx.iam()
        actions.quarantine_user(iam, self.user, ctx.incident.incident_id)
        keys = self._active_keys(ctx)
        for key in keys:
            actions.deactivate_access_key(iam, self.user, key)
        return f"{self.user} denied everything; keys {', '.join(keys) or 'none'} deactivated"


class RevokeRoleSessions(Step):
    expected_seconds = 2

    def __init__(self, role: str) -> None:
        self.role = role

    def inspect(self, ctx: BreachContext) -> Verdict:
        bound = probes.role_revoked_before(ctx.iam(), self.role)
        if bound is not None and bound >= _revoked_at(ctx):
            return done(f"{self.role}'s sessions issued before {bound.isoformat()} are denied")
        return run(f"deny {self.role}'s sessions issued before {_revoked_at(ctx).isoformat()}")

    def change(self, ctx: BreachContext) -> str:
        when = _revoked_at(ctx)
        actions.revoke_role_sessions(ctx.iam(), self.role, when)
        return f"{self.role}'s sessions issued before {when.isoformat()} are denied"


# --- revoke: the database -------------------------------------------------------------------

def _writer(ctx: BreachContext) -> Endpoint | None:
    return ctx.resolution.database.writer


def _secret_store(ctx: BreachContext, region: str) -> SecretStore:
    return SecretStore(ctx.clients(region).secretsmanager())


def _admin(ctx: BreachContext, region: str, endpoint: Endpoint) -> psycopg.Connection[Any]:
    conn, _ = master_connection(_secret_store(ctx, region), MASTER_SECRET_NAME, endpoint)
    return conn


SECRETS_HOME_FACT = "secretsAuthoritativeIn"


class PromoteSecrets(Step):
    expected_seconds = 3

    name = "promote-secrets"
    title = "The primary region is down: promote the standby's secret replicas (writable)"

    def inspect(self, ctx: BreachContext) -> Verdict:
        region = ctx.layout.standby.region
        store = _secret_store(ctx, region)
        left = [s for s in ctx.resolution.secrets_to_promote
                if (store.primary_region(s) or region) != region]
        if not left:
            return done(f"the secrets are standalone in {region}")
        return run(f"StopReplicationToReplica for {', '.join(left)} in {region}")

    def change(self, ctx: BreachContext) -> str:
        client = ctx.clients(ctx.layout.standby.region).secretsmanager()
        # Recorded first: from here on only the standby's copies may be read and rotated, also
        # by a --resume that finds the primary region back (BreachOperation.adopt).
        ctx.fact(SECRETS_HOME_FACT, ctx.layout.standby.region, save=True)
        promoted = [s for s in ctx.resolution.secrets_to_promote if promote_replica(client, s)]
        return (f"{', '.join(promoted) or 'nothing'} promoted in {ctx.layout.standby.region}; "
                "the primary region's copies are stale when it returns (runbook)")


class RaiseAudit(Step):
    expected_seconds = 2

    def __init__(self, roles: tuple[str, ...]) -> None:
        self.roles = roles

    def inspect(self, ctx: BreachContext) -> Verdict:
        writer = _writer(ctx)
        if writer is None:
            return blocked(f"no writable database: {ctx.resolution.database.problem}")
        region = ctx.resolution.rotations[0].secret_region if ctx.resolution.rotations else (
            ctx.reachable()[0].site.region)
        with _admin(ctx, region, writer) as conn:
            # A clone login that does not exist yet inherits the setting when the rotation
            # creates it (caresync_dr.db.rotation copies the login's pgAudit setting).
            left = [r for r in self.roles if role_exists(conn, r)
                    and pgaudit.role_audit_classes(conn, r) != pgaudit.BREACH_CLASSES]
        if not left:
            return done(f"pgaudit.log = all for {', '.join(self.roles)}")
        return run(f"ALTER ROLE ... SET pgaudit.log = 'all' for {', '.join(left)}")

    def change(self, ctx: BreachContext) -> str:
        writer = _writer(ctx)
        assert writer is not None
        ctx.database_change("raising the audit level")
        region = ctx.resolution.rotations[0].secret_region if ctx.resolution.rotations else (
            ctx.reachable()[0].site.region)
        with _admin(ctx, region, writer) as conn:
            for role in self.roles:
                if role_exists(conn, role):
                    conn.execute(pgaudit.role_audit_statement(role, pgaudit.BREACH_CLASSES))
        return (f"pgaudit.log = all for {', '.join(self.roles)} (their new sessions); reset "
                "with ALTER ROLE ... RESET pgaudit.log after the investigation")


class RotateCredential(Step):
    """One credential's rotation (:func:`caresync_dr.db.rotation.rotate`). ``retire_previous``:
    the breach's containment, every earlier password refused at once; the scheduled rotation
    keeps an alternating credential's previous login valid for the app's old instances."""

    expected_seconds = 5

    def __init__(self, rotation: Rotation, retire_previous: bool = True) -> None:
        self.rotation = rotation
        self.retire_previous = retire_previous

    def token(self, ctx: BreachContext) -> str:
        return rotation_token(ctx.incident.incident_id, self.rotation.credential.secret_id)

    def inspect(self, ctx: BreachContext) -> Verdict:
        writer = _writer(ctx)
        if writer is None:
            return blocked(f"no writable database: {ctx.resolution.database.problem}")
        store = _secret_store(ctx, self.rotation.secret_region)
        credential = self.rotation.credential
        current = store.version(credential.secret_id, CURRENT)
        if current is not None and current.version_id == self.token(ctx):
            if not self.retire_previous:
                return done(f"{credential.role} rotated by this run (login {current.username})")
            previous = store.version(credential.secret_id, PREVIOUS)
            if previous is None or login_refused(writer, previous.username, previous.password):
                return done(f"{credential.role} rotated for this incident; the "
                            "old password is refused")
        elif current is not None and credential.alternating is not None \
                and not self.retire_previous:
            target = credential.alternating.other_login(current.username) \
                if current.username in credential.logins else None
            running = self._refreshes_running(ctx)
            if target and running:
                return blocked(f"{'; '.join(running)}: instances booted with {target}'s "
                               "password may still run until it has replaced them")
            in_use = self._sessions(ctx, writer, target) if target else []
            if in_use:
                return blocked(f"{target} still has {len(in_use)} session(s) open: instances "
                               "from two rotations ago still use it (the last instance "
                               "refresh did not finish)")
            differ = self._differences(ctx, writer, current.username, target) \
                if target else []
            if differ:
                return blocked(f"{credential.secret_id} is not moved to login {target}: "
                               + "; ".join(differ))
        return run(f"rotate {credential.role} "
                   f"({credential.secret_id} in {self.rotation.secret_region})")

    @staticmethod
    def _refreshes_running(ctx: BreachContext) -> list[str]:
        """The app's instance refreshes still replacing instances, in each reachable site, as
        "the instance refresh <id> of <group> is <status>". An instance the last rotation's
        refresh has not replaced yet holds the login the next rotation would change, whether
        or not it has a session open at this instant (a pool between connections)."""
        running = []
        for access in ctx.reachable():
            group = access.site.auto_scaling_group
            answer = access.clients.autoscaling().describe_instance_refreshes(
                AutoScalingGroupName=group, MaxRecords=10)
            running += [f"the instance refresh {r.get('InstanceRefreshId')} of {group} is "
                        f"{r.get('Status')}" for r in answer.get("InstanceRefreshes", [])
                        if r.get("Status") in ACTIVE_REFRESH_STATUSES]
        return running

    def _differences(self, ctx: BreachContext, writer: Endpoint, current: str,
                     target: str) -> list[str]:
        """Why the app could not move to ``target`` (a grant made by hand to one login...),
        read before the first change so the run refuses and --check says so."""
        alternating = self.rotation.credential.alternating
        assert alternating is not None
        with _admin(ctx, self.rotation.secret_region, writer) as conn:
            return switch_refusals(conn, alternating, current, target)

    def _sessions(self, ctx: BreachContext, writer: Endpoint, login: str) -> list[Any]:
        with _admin(ctx, self.rotation.secret_region, writer) as conn:
            if not role_exists(conn, login):
                return []
            return [s for s in sessions_of(conn, login)
                    if s.application != OWN_APPLICATION_NAME]

    def change(self, ctx: BreachContext) -> str:
        writer = _writer(ctx)
        assert writer is not None
        ctx.database_change(f"rotating {self.rotation.credential.role}")
        store = _secret_store(ctx, self.rotation.secret_region)
        result = rotate(store, self.rotation.credential, self.token(ctx), writer,
                        lambda: _admin(ctx, self.rotation.secret_region, writer),
                        retire_previous=self.retire_previous)
        ctx.fact(f"rotated:{result.role}", {"version": result.version_id, "login": result.login,
                                            "at": datetime.now(UTC).isoformat()})
        if not result.ok:
            raise StepFailedError(result.sentence)
        return result.sentence


class DisableLogin(Step):
    expected_seconds = 2

    def __init__(self, role: str) -> None:
        self.role = role

    def inspect(self, ctx: BreachContext) -> Verdict:
        writer = _writer(ctx)
        if writer is None:
            return blocked(f"no writable database: {ctx.resolution.database.problem}")
        with _admin(ctx, ctx.reachable()[0].site.region, writer) as conn:
            if not can_login(conn, self.role):
                return done(f"{self.role} cannot log in")
        return run(f"ALTER ROLE {self.role} NOLOGIN")

    def change(self, ctx: BreachContext) -> str:
        writer = _writer(ctx)
        assert writer is not None
        ctx.database_change(f"disabling {self.role}")
        with _admin(ctx, ctx.reachable()[0].site.region, writer) as conn:
            disable_login(conn, self.role)
        return f"{self.role} may no longer log in"


# Cancelling waits for the replacements in flight (instance warm-up: 60 s, failover/actions.py)
REFRESH_CANCEL_SECONDS = 600.0
REFRESH_POLL_SECONDS = 2.0


class RefreshApp(Step):
    """The app reads its secret at boot (D1): replacing every instance makes the tier log in
    with the rotated password. The old instances' sessions end with them."""

    expected_seconds = 10

    def __init__(self, region: str) -> None:
        self.region = region

    def inspect(self, ctx: BreachContext) -> Verdict:
        access = ctx.regions[self.region]
        if not access.reachable:
            return _unreachable(access)
        started = ctx.facts.get(f"refresh:{self.region}")
        if started:
            return done(f"instance refresh {started} of {access.site.auto_scaling_group} "
                        "started after the rotation")
        return run(f"start an instance refresh of {access.site.auto_scaling_group}")

    def change(self, ctx: BreachContext) -> str:
        access = ctx.regions[self.region]
        autoscaling, group = access.clients.autoscaling(), access.site.auto_scaling_group
        cancelled = ""
        try:
            refresh = start_instance_refresh(autoscaling, group)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "InstanceRefreshInProgress":
                raise
            # A refresh started before this rotation (the last scheduled one's, say) launches
            # instances that may have read the secret before it changed: it is cancelled and
            # a new one started, or those instances would keep a refused password.
            cancelled = self._cancel(autoscaling, group)
            refresh = start_instance_refresh(autoscaling, group)
        ctx.fact(f"refresh:{self.region}", refresh)
        return (f"{cancelled}instance refresh {refresh} of {group} started; new "
                "instances read the rotated secret at boot")

    @staticmethod
    def _cancel(autoscaling: Any, group: str) -> str:
        """Cancel ``group``'s active refresh (CancelInstanceRefresh) and wait until it has
        ended (Cancelling -> Cancelled, while in-flight replacements finish); returns the
        sentence's beginning."""
        try:
            answer = autoscaling.cancel_instance_refresh(AutoScalingGroupName=group)
            cancelled = str(answer.get("InstanceRefreshId"))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ActiveInstanceRefreshNotFound":
                raise
            cancelled = "(ended meanwhile)"
        deadline = time.monotonic() + REFRESH_CANCEL_SECONDS
        while True:
            active = [r for r in autoscaling.describe_instance_refreshes(
                AutoScalingGroupName=group, MaxRecords=10).get("InstanceRefreshes", [])
                if r.get("Status") in ACTIVE_REFRESH_STATUSES]
            if not active:
                return f"the earlier instance refresh {cancelled} of {group} cancelled; "
            if time.monotonic() >= deadline:
                raise StepFailedError(
                    f"the instance refresh {active[0].get('InstanceRefreshId')} of {group} is "
                    f"still {active[0].get('Status')} {REFRESH_CANCEL_SECONDS:.0f} s after "
                    "CancelInstanceRefresh; --resume once it has ended")
            time.sleep(REFRESH_POLL_SECONDS)


class TerminateSessions(Step):
    expected_seconds = 3
    name = "terminate-sessions"
    title = "End every database session opened with a revoked credential"

    def _roles(self, ctx: BreachContext) -> list[str]:
        rotated = [login for r in ctx.resolution.rotations for login in r.credential.logins]
        return sorted({*rotated, *ctx.incident.compromised.db_roles})

    @staticmethod
    def _rotated_at(ctx: BreachContext, login: str) -> str | None:
        """When the credential ``login`` belongs to was rotated (both logins of an alternating
        credential: either's sessions from before then used a revoked password)."""
        for rotation in ctx.resolution.rotations:
            if login in rotation.credential.logins:
                fact = ctx.facts.get(f"rotated:{rotation.credential.role}") or {}
                return cast(str | None, fact.get("at"))
        return None

    def _stale(self, ctx: BreachContext) -> dict[str, list[Any]]:
        """Per site: sessions of rotated roles (both logins of an alternating credential, a
        compromised one too) that began before their rotation finished (they logged in with
        an old password), and every session of a role that was not rotated (a compromised
        role without a secret: it lost LOGIN, so each of its sessions predates that). A
        session of a rotated role opened after its rotation used the new password, which only
        the secret holds: after a scheduled rotation the breach may move the app to the very
        login named compromised, and its refreshed instances must be able to log in."""
        found: dict[str, list[Any]] = {}
        for site, endpoint in ctx.resolution.database.endpoints.items():
            region = ctx.layout.primary.region if site == "primary" else \
                ctx.layout.standby.region
            if not ctx.regions[region].reachable:
                continue
            with _admin(ctx, region, endpoint) as conn:
                stale = []
                for role in self._roles(ctx):
                    rotated_at = self._rotated_at(ctx, role)
                    for session in sessions_of(conn, role):
                        if rotated_at is None or \
                                session.started < datetime.fromisoformat(rotated_at):
                            stale.append(session)
                if stale:
                    found[site] = stale
        return found

    def inspect(self, ctx: BreachContext) -> Verdict:
        if not ctx.resolution.database.endpoints:
            return blocked(f"no database answers: {ctx.resolution.database.problem}")
        stale = self._stale(ctx)
        if not stale:
            return done(f"no session of {', '.join(self._roles(ctx))} predates its revocation")
        return run("; ".join(f"{site}: end {len(s)} session(s)" for site, s in stale.items()))

    def change(self, ctx: BreachContext) -> str:
        ctx.database_change("terminating sessions")
        ended = []
        for site, stale in self._stale(ctx).items():
            endpoint = ctx.resolution.database.endpoints[site]
            region = ctx.layout.primary.region if site == "primary" else \
                ctx.layout.standby.region
            with _admin(ctx, region, endpoint) as conn:
                pids = terminate(conn, stale)
            ended.append(f"{site}: {len(pids)} session(s) of "
                         f"{', '.join(sorted({s.user for s in stale}))} ended")
        return "; ".join(ended)


def _older_accepted(store: SecretStore, rotation: Rotation, writer: Endpoint,
                    keep: tuple[str, ...]) -> list[str]:
    """Every version of the secret not labelled with a stage in ``keep`` (deprecated ones
    too: an alternating credential's other login was named by the version before the
    previous) must be refused."""
    found = []
    for version in store.older_versions(rotation.credential.secret_id, keep):
        if not login_refused(writer, version.username, version.password):
            found.append(f"{rotation.credential.secret_id} version {version.version_id[:8]} "
                         f"({version.username}) still logs in")
    return found


# --- more logging -------------------------------------------------------------------------------

class TrailLogging(Step):
    expected_seconds = 3

    def __init__(self, region: str) -> None:
        self.region = region

    def _buckets(self, ctx: BreachContext) -> list[str]:
        return ctx.resolution.phi_buckets.get(self.region, [])

    def inspect(self, ctx: BreachContext) -> Verdict:
        access = ctx.regions[self.region]
        if not access.reachable:
            return _unreachable(access)
        trail = access.site.trail_name
        ct = access.clients.cloudtrail()
        logging_on = probes.trail_logging(ct, trail)
        if logging_on is None:
            return blocked(f"no trail {trail} in {self.region}")
        missing = sorted(set(self._buckets(ctx)) - probes.trail_data_event_buckets(ct, trail))
        if logging_on and not missing:
            return done(f"{trail} is logging with data events on "
                        f"{', '.join(self._buckets(ctx))}")
        return run(("start logging; " if not logging_on else "") +
                   (f"data events on {', '.join(missing)}" if missing else ""))

    def change(self, ctx: BreachContext) -> str:
        access = ctx.regions[self.region]
        ct, trail = access.clients.cloudtrail(), access.site.trail_name
        did = []
        if not probes.trail_logging(ct, trail):
            actions.start_logging(ct, trail)
            did.append("logging started (it had been stopped)")
        missing = sorted(set(self._buckets(ctx)) - probes.trail_data_event_buckets(ct, trail))
        if missing:
            actions.ensure_data_events(ct, trail, missing)
            did.append(f"data events on {', '.join(missing)}")
        return f"{trail}: " + "; ".join(did)


# --- verify: containment ------------------------------------------------------------------------

class VerifyContainment(Step):
    """Re-reads every containment and revocation; its end is the time to containment."""

    expected_seconds = 5
    converges = False
    marks_done = True
    name = "verify-containment"
    title = "Verify: instances isolated with evidence, keys inactive, sessions revoked, old " \
            "passwords refused, no stale database session"

    def problems(self, ctx: BreachContext) -> list[str]:
        found = []
        resolved = ctx.resolution
        for instance, before in resolved.instances.items():
            access = ctx.regions[before.region]
            if not access.reachable:
                found.append(f"{instance}: {before.region} does not answer")
                continue
            c = access.clients
            state = probes.instance_state(c.ec2(), c.autoscaling(), c.elbv2(), instance)
            group = probes.quarantine_group(c.ec2(), before.vpc_id, actions.quarantine_group_name(
                ctx.incident.incident_id))
            if state is None or group is None or not state.isolated_by(group) or \
                    state.auto_scaling_group or state.target_groups:
                found.append(f"{instance} is not isolated")
            if set(before.volumes) - set(probes.evidence_snapshots(
                    c.ec2(), ctx.incident.incident_id, instance)):
                found.append(f"{instance} lacks an evidence snapshot")
        compromised = ctx.incident.compromised
        if compromised.access_keys or compromised.iam_users or compromised.iam_roles:
            try:
                found += self._iam_problems(ctx)
            except AWS_ERRORS as exc:
                found.append(f"IAM does not answer, the keys, users and roles are not "
                             f"verified ({type(exc).__name__})")
        writer = resolved.database.writer
        if resolved.rotations and writer is None:
            found.append(f"no writable database: {resolved.database.problem}")
        for rotation in resolved.rotations if writer is not None else []:
            assert writer is not None
            store = _secret_store(ctx, rotation.secret_region)
            current = store.version(rotation.credential.secret_id, CURRENT)
            previous = store.version(rotation.credential.secret_id, PREVIOUS)
            token = rotation_token(ctx.incident.incident_id, rotation.credential.secret_id)
            if current is None or current.version_id != token:
                found.append(f"{rotation.credential.role} is not rotated")
            elif previous is not None and not login_refused(writer, previous.username,
                                                            previous.password):
                found.append(f"{rotation.credential.role}'s old password still logs in")
            else:
                found += _older_accepted(store, rotation, writer, keep=(CURRENT,))
        if resolved.database.endpoints and TerminateSessions()._stale(ctx):
            found.append("database sessions opened with revoked credentials remain")
        return found

    def _iam_problems(self, ctx: BreachContext) -> list[str]:
        found = []
        iam = ctx.iam()
        compromised = ctx.incident.compromised
        for key in compromised.access_keys:
            user = _owner(ctx, key)
            if user is not None and probes.access_key_status(iam, user, key) == "Active":
                found.append(f"access key {key} is active")
        for user in compromised.iam_users:
            if not probes.user_quarantined(iam, user):
                found.append(f"{user} is not denied")
        for role in compromised.iam_roles:
            bound = probes.role_revoked_before(iam, role)
            if bound is None or bound < _revoked_at(ctx):
                found.append(f"{role}'s sessions are not revoked")
        return found

    def inspect(self, ctx: BreachContext) -> Verdict:
        problems = self.problems(ctx)
        if problems:
            return run("; ".join(problems))
        contained = ctx.facts.get("containedAt")
        if contained is None:
            # Contained by this run's steps: apply records the instant (time to containment).
            return run("everything named is contained: record it as verified now")
        return done(f"contained and verified at {contained}: every named instance isolated "
                    "with evidence, every credential revoked")

    def change(self, ctx: BreachContext) -> str:
        problems = self.problems(ctx)
        if problems:
            raise StepFailedError("not contained: " + "; ".join(problems))
        contained = datetime.now(UTC)
        ctx.fact("containedAt", contained.isoformat())
        ctx.fact("timeToContainmentSeconds",
                 round((contained - ctx.started_at).total_seconds(), 3))
        return "contained and verified"


# --- investigate and notify ---------------------------------------------------------------------

class Investigate(Step):
    best_effort = True
    converges = False
    expected_seconds = 20
    name = "investigate"
    title = "Scope: CloudTrail records of the principals and the database audit log, as evidence"

    def inspect(self, ctx: BreachContext) -> Verdict:
        return run(f"read CloudTrail and pgAudit records from {ctx.incident.window_start:%F %R} "
                   f"to {ctx.incident.window_end:%F %R} UTC")

    def change(self, ctx: BreachContext) -> str:
        incident = ctx.incident
        principals = [Principal("access-key", k) for k in incident.compromised.access_keys]
        principals += [Principal("iam-user", u) for u in incident.compromised.iam_users]
        principals += [Principal("iam-role", r) for r in incident.compromised.iam_roles]
        sources = [TrailSource(a.site.region, a.site.trail_log_group,
                               a.clients.logs() if a.reachable else None,
                               a.clients.cloudtrail() if a.reachable else None, a.reason)
                   for a in ctx.regions.values()]
        cloudtrail = [principal_scope(p, sources, incident.window_start, incident.window_end)
                      for p in principals]
        roles = sorted({*incident.compromised.db_roles,
                        *(r.credential.role for r in ctx.resolution.rotations)})
        database: dict[str, Any] = {"read": False, "reason": "no writable database"}
        writer_site = ctx.resolution.database.writer_site
        if writer_site is not None:
            site = ctx.layout.primary if writer_site == "primary" else ctx.layout.standby
            access = ctx.regions[site.region]
            try:
                lines = log_group_lines(access.clients.logs(), site.db_log_group,
                                        incident.window_start, incident.window_end)
                database = {"read": True, "logGroup": site.db_log_group,
                            "roles": database_scope(lines, roles,
                                                    ctx.layout.settings.phi_tables)}
            except AWS_ERRORS as exc:
                database = {"read": False, "reason": f"{type(exc).__name__}: {exc}"}
        scope = {"incident": incident.as_report(), "cloudtrail": cloudtrail,
                 "database": database, "generatedAt": datetime.now(UTC).isoformat()}
        where = _write_evidence(ctx, "scope.json", json.dumps(scope, indent=2, default=str))
        ctx.fact("scope", {
            "principals": {p["principal"]["name"]: {"events": p["events"],
                                                    "buckets": p["buckets"],
                                                    "objectCount": p["objectCount"]}
                           for p in cloudtrail},
            "database": database.get("roles", {}), "evidence": where})
        total = sum(p["events"] for p in cloudtrail)
        return f"scope: {total} CloudTrail record(s) of {len(principals)} principal(s); " \
               f"database audit {'read' if database['read'] else 'not read'}; written to " \
               f"{', '.join(where) or 'nowhere (no bucket answered)'}"


def _write_evidence(ctx: BreachContext, name: str, body: str) -> list[str]:
    """Put one evidence document into every reachable site's backup bucket, under
    ``incidents/<incident>/`` (kept six years, SSE-KMS with the site key)."""
    written = []
    for access in ctx.reachable():
        key = f"{access.site.incident_prefix}{ctx.incident.incident_id}/{ctx.run_id}-{name}"
        try:
            access.clients.s3().put_object(Bucket=access.site.backup_bucket, Key=key,
                                           Body=body.encode(), ContentType="application/json")
            written.append(f"s3://{access.site.backup_bucket}/{key}")
        except AWS_ERRORS as exc:
            log.warning("could not write %s to %s: %s", name, access.site.backup_bucket, exc)
    return written


class NotifySecurity(Step):
    best_effort = True
    converges = False
    expected_seconds = 3

    def __init__(self, phase: str) -> None:
        self.phase = phase

    def inspect(self, ctx: BreachContext) -> Verdict:
        return run(f"publish to {', '.join(a.site.security_topic_arn for a in ctx.reachable())}")

    def message(self, ctx: BreachContext) -> tuple[str, str]:
        incident = ctx.incident
        clock = incident.clock.sentence()
        if self.phase == "opened":
            return (f"[CareSync breach {incident.incident_id}] response started",
                    f"breach.py run {ctx.run_id} started for incident {incident.incident_id}: "
                    f"{json.dumps(incident.compromised.as_report())}. {clock}")
        scope = ctx.facts.get("scope", {})
        return (f"[CareSync breach {incident.incident_id}] contained",
                json.dumps({"incident": incident.incident_id, "run": ctx.run_id,
                            "containedAt": ctx.facts.get("containedAt"),
                            "timeToContainmentSeconds": ctx.facts.get(
                                "timeToContainmentSeconds"),
                            "scope": scope, "hipaa": incident.clock.as_report()}, indent=2,
                           default=str))

    def change(self, ctx: BreachContext) -> str:
        subject, body = self.message(ctx)
        sent = []
        for access in ctx.reachable():
            try:
                actions.publish(access.clients.sns(), access.site.security_topic_arn, subject,
                                body)
                sent.append(access.site.security_topic_arn)
            except AWS_ERRORS as exc:
                log.warning("could not publish to %s: %s", access.site.security_topic_arn, exc)
        if not sent:
            raise StepFailedError("no security topic took the message")
        return f"published to {', '.join(sent)}"


# --- one step per target --------------------------------------------------------------------------

def evidence(instance_id: str) -> Evidence:
    return for_target(Evidence, instance_id, f"evidence-{instance_id}",
                      f"Evidence first: snapshot every EBS volume of {instance_id}, tagged with "
                      "the incident")


def isolate(instance_id: str) -> Isolate:
    return for_target(Isolate, instance_id, f"isolate-{instance_id}",
                      f"Isolate {instance_id}: termination and scale-in protection, out of its "
                      "group (capacity replaced) and target groups, quarantine security group")


def deactivate_key(key: str, best_effort: bool = False) -> DeactivateKey:
    return for_target(DeactivateKey, key, f"deactivate-key-{key}",
                      f"Deactivate access key {key}",
                      best_effort=best_effort)


def revoke_user_sessions(user: str, best_effort: bool = False) -> RevokeUserSessions:
    return for_target(RevokeUserSessions, user, f"revoke-user-sessions-{user}",
                      f"Deny {user}'s temporary credentials issued before the revocation",
                      best_effort=best_effort)


def quarantine_user(user: str, best_effort: bool = False) -> QuarantineUser:
    return for_target(QuarantineUser, user, f"quarantine-user-{user}",
                      f"Deny everything to IAM user {user} and deactivate its access keys",
                      best_effort=best_effort)


def revoke_role_sessions(role: str, best_effort: bool = False) -> RevokeRoleSessions:
    return for_target(RevokeRoleSessions, role, f"revoke-role-sessions-{role}",
                      f"Revoke the active sessions of IAM role {role}",
                      best_effort=best_effort)


def raise_audit(roles: tuple[str, ...]) -> RaiseAudit:
    return for_target(RaiseAudit, roles, "audit-compromised-roles",
                      f"pgAudit everything the compromised role(s) {', '.join(roles)} do")


def rotate_credential(rotation: Rotation, *, retire_previous: bool = True) -> RotateCredential:
    credential = rotation.credential
    role = credential.role
    if retire_previous:
        title = (f"Rotate {' and '.join(credential.logins)}'s passwords and "
                 f"{credential.secret_id}; every old one must be refused")
    elif credential.alternating is not None:
        title = (f"Rotate {credential.secret_id}: a new password for the login it does not "
                 f"name ({' or '.join(credential.logins)}); the other stays valid for the "
                 "app's instances until they are replaced")
    else:
        title = (f"Rotate {role}'s password and {credential.secret_id}; the old one must be "
                 "refused")
    specific = type(f"RotateCredential:rotate-{role}", (RotateCredential,),
                    {"name": f"rotate-{role}", "title": title})
    return cast(RotateCredential, specific(rotation, retire_previous))


def disable(role: str) -> DisableLogin:
    return for_target(DisableLogin, role, f"disable-login-{role}",
                      f"{role} has no secret to rotate: NOLOGIN until the investigation ends")


def refresh_app(region: str) -> RefreshApp:
    return for_target(RefreshApp, region, f"refresh-app-{region}",
                      f"Replace the app instances in {region} so they boot with the new secret")


def trail_logging(region: str) -> TrailLogging:
    return for_target(TrailLogging, region, f"trail-logging-{region}",
                      f"CloudTrail in {region}: logging on, S3 data events on every PHI bucket")


def notify(phase: str) -> NotifySecurity:
    title = ("Tell the security team the breach response started" if phase == "opened"
             else "Tell the security team what was done, the scope and the HIPAA clock")
    return for_target(NotifySecurity, phase, f"notify-security-{phase}", title)


class VerifyRotation(Step):
    """The scheduled rotation's end: every rotated login's new password works; its old one is
    refused, except an alternating credential's previous login, which must still log in (the
    app's instances that booted before the rotation open connections with it until the
    refresh replaces them); every older version of each secret is refused."""

    expected_seconds = 3
    converges = False
    marks_done = True
    name = "verify-rotation"
    title = ("Verify: every rotated password works; the app's previous login still works "
             "until its refresh, every other old password is refused")

    def problems(self, ctx: BreachContext) -> list[str]:
        writer = _writer(ctx)
        if writer is None:
            return [f"no writable database: {ctx.resolution.database.problem}"]
        found = []
        for rotation in ctx.resolution.rotations:
            credential = rotation.credential
            store = _secret_store(ctx, rotation.secret_region)
            token = rotation_token(ctx.incident.incident_id, credential.secret_id)
            current = store.version(credential.secret_id, CURRENT)
            previous = store.version(credential.secret_id, PREVIOUS)
            if current is None or current.version_id != token:
                found.append(f"{credential.role} is not rotated")
                continue
            if login_refused(writer, current.username, current.password):
                found.append(f"{current.username}'s new password does not log in")
            if previous is None or previous.password == current.password:
                continue
            keeps = (credential.alternating is not None
                     and previous.username != current.username)
            refused = login_refused(writer, previous.username, previous.password)
            if keeps and refused:
                found.append(f"{previous.username}'s password (the previous version) is "
                             "refused: the app's instances not yet replaced cannot connect")
            elif not keeps and not refused:
                found.append(f"{credential.role}'s old password still logs in")
            found += _older_accepted(store, rotation, writer, keep=(CURRENT, PREVIOUS))
        return found

    def inspect(self, ctx: BreachContext) -> Verdict:
        problems = self.problems(ctx)
        return run("; ".join(problems)) if problems else done(
            "every rotated password works; the app's previous login still works until its "
            "refresh; every other old password is refused")

    def change(self, ctx: BreachContext) -> str:
        problems = self.problems(ctx)
        if problems:
            raise StepFailedError("; ".join(problems))
        return "rotation verified"
