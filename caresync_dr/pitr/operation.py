"""``pitr.py`` as an operation of the engine: the preflight, the plan, the report, and how the
stacks follow afterwards.

The preflight reads everything the run will touch before the first change and refuses (exit 3,
nothing changed) what would fail or do harm: a stack that is not the active site, an endpoint
that names no instance (or a read replica), a subnet group in the default VPC, a restore time
outside every restorable window (the message lists them), backups encrypted with another key
than the site's, a missing no-access group to fence into, a target identifier already taken by
something else, an app secret it cannot read for the checks.

The restored writer is the site's next database generation (``caresync-<site>-db-g<N+1>``), so
``pulumi up`` follows it the way it follows any generation (docs/lifecycles.md, "After a
point-in-time restore"): :func:`reconcile_steps` prints the commands.
"""

from __future__ import annotations

from typing import Any, TextIO

from botocore.exceptions import ClientError

from caresync_dr import names
from caresync_dr.app import probes as app_probes
from caresync_dr.db.secrets import APP_SECRET_NAME
from caresync_dr.names import app_name
from caresync_dr.operations.checks import Check, guard
from caresync_dr.operations.engine import (
    UNFINISHED,
    Bookkeeping,
    EngineOptions,
    Operation,
    ReportTarget,
)
from caresync_dr.operations.hooks import OperationHooks
from caresync_dr.operations.steps import Stage
from caresync_dr.pitr import probes
from caresync_dr.pitr.context import PitrContext
from caresync_dr.pitr.names import database_urn
from caresync_dr.pitr.steps import (
    FenceDamaged,
    RefreshApp,
    RepointEndpoint,
    RestoreInstance,
    VerifyRestored,
    VerifyService,
)
from caresync_dr.pitr.window import choose, iso, outside_message
from caresync_dr.retention import INCIDENT_PREFIX

ADOPTED = ("damaged", "target", "generation")
# The steps after which the site no longer serves from the damaged writer.
CUT_OVER_STEPS = ("fence-damaged", "repoint-endpoint", "refresh-app", "verify-service")


def bookkeeping(ctx: PitrContext) -> Bookkeeping:
    account = ctx.session.client("sts", region_name=ctx.region).get_caller_identity()
    return Bookkeeping(ssm=ctx.clients.ssm(), lock_parameter=ctx.lock_parameter(),
                       journal_parameter=ctx.journal_parameter(),
                       journal_file=ctx.options.journal_file,
                       incident_bucket=names.backup_bucket_name(ctx.site, account["Account"]),
                       incident_s3=ctx.clients.s3, incident_prefix=INCIDENT_PREFIX)


def reconcile_steps(ctx: PitrContext) -> list[str]:
    """What the operator does next so the stacks say what AWS now holds."""
    plan = ctx.plan
    stack, site = ctx.options.stack, ctx.site
    other = "dr" if stack == "prod" else "prod"
    new, old = plan.generation or 2, (plan.generation or 2) - 1
    target = plan.target or names.db_identifier(site, new)
    logical = f"{site}-database-g{new}-instance"
    damaged = plan.damaged.identifier if plan.damaged else names.db_identifier(site, old)
    return [
        f"Keep {damaged} fenced (do not run `pulumi up --refresh -s {stack}` before step 2: "
        "it would move it back into the database group). Compare it with the restored data "
        "for rows written after T; they exist only there.",
        f"Make the {stack} stack follow the restored writer (docs/lifecycles.md, 'After a "
        f"point-in-time restore'): `pulumi config set dbGeneration {new} -s {stack}`, "
        f"`pulumi config set --path dbRetiring.generation {old} -s {stack}`, "
        f"`pulumi config set --path dbRetiring.role writer -s {stack}`, then `pulumi import "
        f"aws:rds/instance:Instance {logical} {target} --parent "
        f"'{site}-database={database_urn(stack, site)}' -s {stack} --yes` and "
        f"`pulumi up -s {stack}` (log groups, monitoring, in-region replicas of the new "
        "generation).",
        f"The {other} stack's cross-region replica still follows {damaged}: give it a new "
        f"generation the same way (`dbGeneration`, `dbRetiring` role replica) and `pulumi up "
        f"-s {other}`; until then a region failover would promote the damaged data.",
        f"When the forensics are done: `pulumi config rm dbRetiring -s {stack}` and `pulumi up "
        f"-s {stack}` deletes {damaged} with a final snapshot.",
    ]


def engine_options(ctx: PitrContext) -> EngineOptions:
    return EngineOptions.requested(ctx.options, ctx.options.heartbeat_seconds)


class PitrOperation(Operation[PitrContext]):
    name = "pitr"
    done_outcome = "already restored"

    def __init__(self, ctx: PitrContext, out: TextIO, stdin: TextIO, *,
                 report_target: ReportTarget | None = None,
                 hooks: OperationHooks | None = None) -> None:
        super().__init__(ctx, engine_options(ctx), bookkeeping(ctx), out=out, stdin=stdin,
                         session=ctx.session, hooks=hooks, report=report_target)
        self._checks: list[Check] | None = None

    def title(self) -> str:
        return (f"point-in-time restore of the {self.ctx.site} database to "
                f"{iso(self.ctx.options.restore_time)} ({self.ctx.region})")

    def question(self) -> str:
        plan = self.ctx.plan
        return (f"This restores {plan.damaged.identifier if plan.damaged else 'the writer'} as "
                f"of {iso(self.ctx.options.restore_time)} into {plan.target}, fences the "
                "damaged writer and moves the app to the restored one. Writes made after T "
                "stay only in the damaged instance.")

    def identity(self) -> dict[str, Any]:
        return {"stack": self.ctx.options.stack, "site": self.ctx.site,
                "restoreTime": iso(self.ctx.options.restore_time)}

    def plan(self) -> tuple[Stage[PitrContext], ...]:
        stages: list[Stage[PitrContext]] = [
            Stage((RestoreInstance(),)), Stage((VerifyRestored(),)), Stage((FenceDamaged(),)),
            Stage((RepointEndpoint(),)), Stage((RefreshApp(),))]
        if self.ctx.options.health_url:
            stages.append(Stage((VerifyService(),)))
        return tuple(stages)

    def checks(self, daily: bool) -> list[Check]:
        if self._checks is None:
            self._checks = self._preflight()
        return self._checks

    def already_done(self) -> str | None:
        """The endpoint names an instance this command restored to the same T."""
        ctx = self.ctx
        try:
            endpoint = probes.read_endpoint(ctx.clients.ssm(), ctx.endpoint_parameter)
            writer = probes.instance_at(ctx.clients.rds(), endpoint[0]) if endpoint else None
        except ClientError:
            return None
        if writer is not None and writer.tags.get("caresync:restore-time") == iso(
                ctx.options.restore_time):
            return (f"{writer.identifier} (restored to {iso(ctx.options.restore_time)} from "
                    f"{writer.tags.get('caresync:restored-from')}) is the writer")
        return None

    def follow_up_lines(self) -> list[str]:
        return ["\nFollow-ups:"] + [f"  {i}. {t}" for i, t in
                                    enumerate(reconcile_steps(self.ctx), 1)]

    def adopt(self, previous: dict[str, Any]) -> None:
        facts = previous.get("facts") or {}
        if previous.get("restoreTime") == iso(self.ctx.options.restore_time) and \
                previous.get("status") in UNFINISHED:
            for key in ADOPTED:
                if facts.get(key) is not None:
                    self.ctx.facts[key] = facts[key]

    def supersede(self, previous: dict[str, Any]) -> str | None:
        """Until the damaged writer is fenced the site still serves from it: a run that only
        restored (perhaps to the wrong time, failing its checks) may be replaced by a new run,
        e.g. with another --restore-time; its restored instance is left for the preflight
        (the same time: this run continues with it; another: delete it first)."""
        cut_over = [s.get("name") for s in previous.get("steps") or []
                    if s.get("name") in CUT_OVER_STEPS and (s.get("started_at")
                                                            or s.get("requested_at"))]
        if cut_over:
            return None
        return (f"it restored to {previous.get('restoreTime')} and never began the cut-over "
                "(nothing fenced or repointed)")

    def refuse_resume(self, previous: dict[str, Any]) -> str | None:
        if previous.get("restoreTime") != iso(self.ctx.options.restore_time):
            return (f"the unfinished run {previous.get('runId')} restores to "
                    f"{previous.get('restoreTime')}; resume it with that --restore-time")
        return None

    def completed_message(self) -> str:
        plan = self.ctx.plan
        return (f"{plan.target} (as of {iso(self.ctx.options.restore_time)}) is the writer; "
                f"{plan.damaged.identifier if plan.damaged else 'the damaged writer'} fenced "
                "and kept")

    def completion_lines(self) -> list[str]:
        return [f"\nPITR COMPLETE: {self.completed_message()}.", *self.follow_up_lines()]

    def build_report(self, records: Any, ending: Any) -> dict[str, Any]:
        report = super().build_report(records, ending)
        plan = self.ctx.plan
        report.update({
            "restoreTime": iso(self.ctx.options.restore_time),
            "damaged": plan.damaged.identifier if plan.damaged else None,
            "restored": plan.target, "generation": plan.generation,
            "restoredFrom": plan.window.label if plan.window else None,
            "windows": [w.describe() for w in plan.windows],
            "checksRestored": self.ctx.facts.get("checks_restored"),
            "checksDamaged": self.ctx.facts.get("checks_damaged"),
            "fenced": bool(self.ctx.facts.get("fenced")),
            "reconcile": reconcile_steps(self.ctx)})
        return report

    # --- the preflight ----------------------------------------------------------------------
    def _preflight(self) -> list[Check]:
        ctx = self.ctx
        rows: list[Check] = [Check(
            "active site", ctx.settings.is_writer,
            f"{ctx.site} ({ctx.options.stack}) is the active site" if ctx.settings.is_writer
            else f"activeSite is {ctx.settings.active_site}: the writer belongs to the other "
                 f"stack; run with --stack {'dr' if ctx.site == 'primary' else 'prod'}")]
        if not ctx.settings.is_writer:
            return rows
        rows.append(guard("writer", True, self._writer_row))
        plan = ctx.plan
        if plan.damaged is None:
            return rows
        rows += [guard("network", True, self._network_row),
                 guard("restore target", True, self._target_row),
                 guard("restorable window", True, self._window_row),
                 guard("encryption", True, self._key_row),
                 guard("fence group", True, self._fence_row),
                 guard("app group", True, self._group_row),
                 guard("app credentials", True, self._secret_row)]
        return rows

    def _writer_row(self) -> Check:
        ctx = self.ctx
        rds = ctx.clients.rds()
        adopted = ctx.facts.get("damaged")
        if adopted:
            writer = probes.describe_instance(rds, str(adopted))
            source = f"(resumed run: {adopted})"
        else:
            endpoint = probes.read_endpoint(ctx.clients.ssm(), ctx.endpoint_parameter)
            if endpoint is None:
                return Check("writer", False, f"{ctx.endpoint_parameter} not found in "
                             f"{ctx.region}")
            writer = probes.instance_at(rds, endpoint[0])
            source = f"({ctx.endpoint_parameter} = {endpoint[0]}:{endpoint[1]})"
        if writer is None:
            return Check("writer", False, f"no instance in {ctx.region} answers at the "
                         f"endpoint {source}")
        if writer.replica_source:
            return Check("writer", False, f"{writer.identifier} is a read replica of "
                         f"{writer.replica_source}: not this site's writer")
        ctx.plan.damaged = writer
        ctx.fact("damaged", writer.identifier)
        return Check("writer", True, f"{writer.identifier} {source}, {writer.status}")

    def _network_row(self) -> Check:
        ctx = self.ctx
        damaged = ctx.plan.damaged
        assert damaged is not None
        if not damaged.vpc_id or not damaged.subnet_group:
            return Check("network", False, f"{damaged.identifier} has no DB subnet group")
        if probes.vpc_is_default(ctx.clients.ec2(), damaged.vpc_id):
            return Check("network", False, f"{damaged.subnet_group} is in the default VPC "
                         f"{damaged.vpc_id}: refusing to restore PHI there")
        if damaged.publicly_accessible:
            return Check("network", False, f"{damaged.identifier} is publicly accessible; the "
                         "restore will not copy that, but fix the stack first")
        return Check("network", True, f"subnet group {damaged.subnet_group} in "
                     f"{damaged.vpc_id}, groups {', '.join(damaged.security_groups)}, "
                     f"parameter group {damaged.parameter_group}, not public")

    def _target_row(self) -> Check:
        ctx = self.ctx
        damaged = ctx.plan.damaged
        assert damaged is not None
        generation = int(ctx.facts.get("generation") or 0) or max(
            ctx.settings.db_generation,
            int(damaged.tags.get("caresync:generation", ctx.settings.db_generation))) + 1
        target = str(ctx.facts.get("target") or names.db_identifier(ctx.site, generation))
        ctx.plan.generation, ctx.plan.target = generation, target
        ctx.fact("generation", generation)
        ctx.fact("target", target)
        found = probes.describe_instance(ctx.clients.rds(), target)
        if found is None:
            return Check("restore target", True, f"{target} (generation {generation}) is free")
        if found.tags.get("caresync:restore-time") == iso(ctx.options.restore_time):
            return Check("restore target", True, f"{target} exists, restored to the same time "
                         f"({found.status}): this run continues with it")
        return Check("restore target", False, f"{target} exists already (restored to "
                     f"{found.tags.get('caresync:restore-time', 'an unknown time')}): reconcile "
                     "or delete it first")

    def _window_row(self) -> Check:
        ctx = self.ctx
        damaged = ctx.plan.damaged
        assert damaged is not None
        windows = probes.windows_for(damaged, probes.automated_backups(ctx.clients.rds()),
                                     ctx.region)
        ctx.plan.windows = windows
        chosen = choose(ctx.options.restore_time, windows)
        if chosen is None:
            return Check("restorable window", False,
                         outside_message(ctx.options.restore_time, windows))
        ctx.plan.window = chosen
        return Check("restorable window", True, f"{iso(ctx.options.restore_time)} is within "
                     f"{chosen.describe()}")

    def _key_row(self) -> Check:
        ctx = self.ctx
        window = ctx.plan.window
        if window is None:
            return Check("encryption", False, "no window chosen")
        key = ctx.clients.kms().describe_key(KeyId=ctx.key_alias)["KeyMetadata"]
        ctx.plan.site_key_arn = str(key["Arn"])
        used = str(window.kms_key_id or "")
        same = used in (key["Arn"], key["KeyId"]) or used.endswith(f"/{key['KeyId']}")
        return Check("encryption", same, f"the restored instance is encrypted with the site "
                     f"key {ctx.key_alias}" if same else f"the backups are encrypted with "
                     f"{used or 'no key'}, not the site key {key['Arn']}")

    def _fence_row(self) -> Check:
        ctx = self.ctx
        damaged = ctx.plan.damaged
        assert damaged is not None and damaged.vpc_id is not None
        name = names.restore_test_security_group_name(ctx.site)
        group = probes.security_group_named(ctx.clients.ec2(), damaged.vpc_id, name)
        if group is None:
            return Check("fence group", False, f"no security group {name} in {damaged.vpc_id} "
                         "to fence the damaged writer into (the writer's stack creates it)")
        rules = ctx.clients.ec2().describe_security_groups(GroupIds=[group])[
            "SecurityGroups"][0].get("IpPermissions", [])
        if rules:
            return Check("fence group", False, f"{name} ({group}) has {len(rules)} ingress "
                         "rule(s): it would not fence")
        ctx.plan.fence_group = group
        return Check("fence group", True, f"{name} ({group}): no ingress")

    def _group_row(self) -> Check:
        ctx = self.ctx
        group = app_probes.describe_group(ctx.clients.autoscaling(), app_name(ctx.site))
        if group is None:
            return Check("app group", False, f"{app_name(ctx.site)} not found")
        return Check("app group", True, f"{group.name}: {group.in_service} of {group.desired} "
                     "in service")

    def _secret_row(self) -> Check:
        import json

        ctx = self.ctx
        client = ctx.session.client("secretsmanager", region_name=ctx.region,
                                    config=ctx.clients.budget.config())
        value = client.get_secret_value(SecretId=APP_SECRET_NAME)["SecretString"]
        secret = json.loads(value)
        if not {"username", "password", "dbname"} <= set(secret):
            return Check("app credentials", False, f"{APP_SECRET_NAME} lacks username, "
                         "password or dbname")
        ctx.plan.secret = secret
        return Check("app credentials", True, f"{APP_SECRET_NAME} in {ctx.region}: checks run "
                     f"as {secret['username']} on {secret['dbname']}")
