"""Resolve every input before the first change: each named thing must exist, and each step
must know where it acts.

* an access key names its user (``GetAccessKeyLastUsed``), a user and a role must exist;
* an instance is looked up in every reachable region;
* the database writer is the reachable site whose database answers ``pg_is_in_recovery() =
  false`` to the master user (its secret read in that site's region); a named database role
  must exist there;
* the database secrets are read and written where their authoritative copy is: the primary
  region when it answers, else the standby replica, which the run first promotes. Once a
  replica was promoted (by this run or an earlier one, or as the journal of the run being
  resumed records), the standby's copies stay authoritative when the primary region returns:
  the primary's copies no longer replicate and are stale (:func:`secrets_home`);
* the PHI buckets each trail must record data events for.

An unknown principal, instance or role is a :class:`UsageError` (exit 2, one line, nothing
changed). A region or database that does not answer is no usage error: the steps that need it
are then blocked, and the report says which and why.
"""

from __future__ import annotations

import logging

import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.breach import probes
from caresync_dr.breach.context import (
    BreachContext,
    DatabaseView,
    RegionAccess,
    Resolved,
    Rotation,
)
from caresync_dr.cli.errors import RefusedError, UsageError
from caresync_dr.db.roles import OPERATOR_ROLES, ROLES
from caresync_dr.db.rotation import Credential, RotationError, SecretStore, master_connection
from caresync_dr.db.secrets import MASTER_SECRET_NAME
from caresync_dr.db.sessions import Endpoint, in_recovery, role_exists

log = logging.getLogger(__name__)
AWS_ERRORS = (ClientError, BotoCoreError)


def credentials(master_username: str) -> list[Credential]:
    """Every login whose password lives in a secret: the master user first (the other
    rotations log in as it), then the roles of caresync_dr.db.roles (the app's, with its two
    alternating logins, then the backup, restore and restore-test roles; a deployment without
    one's secret skips it)."""
    found = [Credential(master_username, MASTER_SECRET_NAME, master=True)]
    found += [Credential(role.name, role.secret_name,
                         alternating=role if role.alternate else None)
              for role in (*ROLES, *OPERATOR_ROLES)]
    return found


def _iam(ctx: BreachContext, resolved: Resolved) -> None:
    """IAM's control plane answers in us-east-1 only. When it does not answer (an outage of
    us-east-1), the IAM inputs cannot be checked or revoked now: that is recorded, and the run
    still does everything else (its IAM steps then fail and --resume finishes them later)."""
    compromised = ctx.incident.compromised
    if not (compromised.access_keys or compromised.iam_users or compromised.iam_roles):
        return
    iam = ctx.iam()
    try:
        iam.get_account_summary()
    except BotoCoreError as exc:
        resolved.iam_problem = f"IAM does not answer ({type(exc).__name__}: {exc})"
        log.warning("%s: the IAM inputs are not checked and cannot be revoked now",
                    resolved.iam_problem)
        return
    for key in compromised.access_keys:
        owner = probes.access_key_owner(iam, key)
        if owner is None:
            raise UsageError(f"--access-key {key}: IAM knows no such access key in account "
                             f"{resolved.account}")
        resolved.key_owners[key] = owner
    for user in compromised.iam_users:
        if not probes.user_exists(iam, user):
            raise UsageError(f"--iam-user {user}: no such IAM user in account "
                             f"{resolved.account}")
    for role in compromised.iam_roles:
        arn = probes.role_arn(iam, role)
        if arn is None:
            raise UsageError(f"--iam-role {role}: no such IAM role in account "
                             f"{resolved.account}")
        resolved.role_arns[role] = arn


def _instances(ctx: BreachContext, resolved: Resolved) -> None:
    unreachable = [a.site.region for a in ctx.regions.values() if not a.reachable]
    for instance in ctx.incident.compromised.instances:
        for access in ctx.reachable():
            c = access.clients
            state = probes.instance_state(c.ec2(), c.autoscaling(), c.elbv2(), instance)
            if state is not None:
                resolved.instances[instance] = state
                break
        else:
            where = f" (not searched: {', '.join(unreachable)} does not answer)" \
                if unreachable else ""
            raise UsageError(f"--instance {instance}: no such instance in "
                             f"{', '.join(a.site.region for a in ctx.reachable())}{where}")


def secrets_home(ctx: BreachContext) -> RegionAccess | None:
    """The region whose copies of the database secrets are authoritative, if it answers.

    The primary region normally (Secrets Manager replicates its copies to the standby). But
    when the standby's master secret is a standalone secret (a breach run promoted it while the
    primary region was down, see :class:`~caresync_dr.breach.steps.PromoteSecrets`), the
    standby's copies are the current ones and the primary's are stale, even after the primary
    region answers again: the rotation was written in the standby only. The journal's record
    of that promotion is applied on ``--resume`` when the standby cannot be asked
    (:meth:`~caresync_dr.breach.operation.BreachOperation.adopt`)."""
    primary = ctx.regions[ctx.layout.primary.region]
    standby = ctx.regions[ctx.layout.standby.region]
    if not primary.reachable:
        return standby if standby.reachable else None
    if standby.reachable:
        try:
            home = SecretStore(standby.clients.secretsmanager()).primary_region(
                MASTER_SECRET_NAME)
        except AWS_ERRORS:
            home = primary.site.region     # no standby copy to prefer: the primary's holds
        if home in (None, standby.site.region):
            log.warning("the standby's secrets are standalone (promoted while %s was down): "
                        "they are authoritative, the primary region's copies are stale",
                        primary.site.region)
            return standby
    return primary


def _database(ctx: BreachContext, resolved: Resolved) -> None:
    view = DatabaseView()
    resolved.database = view
    problems = []
    home = secrets_home(ctx)
    for access in ctx.reachable():
        site = access.site
        try:
            value = access.clients.ssm().get_parameter(
                Name=site.endpoint_parameter, WithDecryption=True)["Parameter"]["Value"]
            # The master user's password is one for every database (replicas replay it): read
            # where it is current, so a stale copy never locks the run out.
            store = SecretStore((home or access).clients.secretsmanager())
            master = store.version(MASTER_SECRET_NAME, "AWSCURRENT")
            if master is None:
                problems.append(f"{site.region}: no {MASTER_SECRET_NAME}")
                continue
            endpoint = Endpoint.parse(value, str(master.value.get("dbname") or
                                                 ctx.layout.settings.db_name),
                                      ctx.options.db_sslmode)
            try:
                conn, _ = master_connection(store, MASTER_SECRET_NAME, endpoint)
            except (psycopg.Error, RotationError) as exc:
                # Its sessions cannot be read or ended now: the report names it, the
                # session steps act on the databases that answer.
                view.unanswered[site.site] = f"{endpoint}: {str(exc).strip()}"
                problems.append(f"{site.site} ({site.region}): {str(exc).strip()}")
                continue
            view.endpoints[site.site] = endpoint
            with conn:
                if not in_recovery(conn):
                    view.writer_site = site.site
                    for role in ctx.incident.compromised.db_roles:
                        if not role_exists(conn, role):
                            raise UsageError(f"--db-role {role}: no such role in the "
                                             f"database at {endpoint}")
        except (*AWS_ERRORS, psycopg.Error, RotationError, ValueError) as exc:
            problems.append(f"{site.site} ({site.region}): {exc}")
    if view.writer_site is None:
        view.problem = "; ".join(problems) or "no reachable site has a writable database"
        if ctx.incident.compromised.db_roles:
            log.warning("the named database roles cannot be checked: %s", view.problem)


def _secrets(ctx: BreachContext, resolved: Resolved) -> None:
    standby = ctx.regions[ctx.layout.standby.region]
    writable = secrets_home(ctx)
    if writable is None:
        return
    settings = ctx.layout.settings
    for credential in credentials(settings.db_username):
        store = SecretStore(writable.clients.secretsmanager())
        if store.version(credential.secret_id, "AWSCURRENT") is None:
            continue     # a role whose secret this deployment does not have (yet)
        if writable is standby:
            home = store.primary_region(credential.secret_id)
            if home and home != standby.site.region:
                resolved.secrets_to_promote.append(credential.secret_id)
        resolved.rotations.append(Rotation(credential, writable.site.region))
    rotated = {r.credential.role for r in resolved.rotations}
    resolved.disable_login = [r for r in ctx.incident.compromised.db_roles if r not in rotated]


def _phi_buckets(ctx: BreachContext, resolved: Resolved) -> None:
    """A multi-region trail records data events of buckets in every region; a single-region
    trail only of its own region's buckets."""
    primary, standby = ctx.layout.primary, ctx.layout.standby
    everyone = [primary.backup_bucket, standby.backup_bucket, *ctx.incident.phi_buckets]
    resolved.phi_buckets = {primary.region: everyone,
                            standby.region: [standby.backup_bucket, *ctx.incident.phi_buckets]}


def resolve(ctx: BreachContext) -> Resolved:
    """Read everything the steps will touch; raise :class:`UsageError` for unknown inputs."""
    ctx.probe_regions()
    reachable = ctx.reachable()
    if not reachable:
        reasons = "; ".join(f"{a.site.region}: {a.reason}" for a in ctx.regions.values())
        raise RefusedError(f"no region of either site answers ({reasons}); nothing was "
                           "changed")
    account = reachable[0].clients.sts().get_caller_identity()["Account"]
    resolved = Resolved(account=str(account))
    _iam(ctx, resolved)
    _instances(ctx, resolved)
    _database(ctx, resolved)
    _secrets(ctx, resolved)
    _phi_buckets(ctx, resolved)
    ctx.resolved = resolved
    return resolved
