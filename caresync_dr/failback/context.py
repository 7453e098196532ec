"""What a failback run knows before its first change: which site writes, which one is to be
re-protected, and the generations involved (:func:`survey`, reads only), plus its clients."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import boto3

from caresync_dr.aws import STANDBY, AwsClients, RegionClients
from caresync_dr.cli.errors import RefusedError, UsageError
from caresync_dr.failback.deploy import Deployer
from caresync_dr.failback.stack_files import GenerationSettings, read_generation_settings
from caresync_dr.failover import probes
from caresync_dr.inventory import Inventory, SiteInventory
from caresync_dr.names import (
    FAILBACK_JOURNAL_PARAMETER,
    STACK_OF_SITE,
    backup_bucket_name,
    db_identifier,
)
from caresync_dr.operations.context import RunContext
from caresync_dr.operations.run_setup import Mode
from caresync_dr.settings import RetiringGeneration, Site

__all__ = ["FAILBACK_JOURNAL_PARAMETER"]


def other(site: Site) -> Site:
    return "standby" if site == "primary" else "primary"


def same_source(reported: str | None, writer_arn: str) -> bool:
    """RDS reports a cross-region replica's source as an ARN, an in-region one by identifier."""
    if not reported:
        return False
    return reported == writer_arn or writer_arn.endswith(f":db:{reported}")


@dataclass(frozen=True)
class Direction:
    """Which site writes (``active``) and what the re-protected site gets.

    ``target_generation`` is the protected site's generation that replicates from the active
    writer when the run is done; ``retiring`` the generation it replaces (None: nothing to
    retire, e.g. a rerun after the retirement)."""

    active: Site
    protected: Site
    writer_identifier: str
    writer_arn: str
    target_generation: int
    retiring: RetiringGeneration | None
    protected_before: GenerationSettings

    @property
    def active_stack(self) -> str:
        return STACK_OF_SITE[self.active]

    @property
    def protected_stack(self) -> str:
        return STACK_OF_SITE[self.protected]

    @property
    def target_identifier(self) -> str:
        return db_identifier(self.protected, self.target_generation)

    def wanted(self, *, retiring: bool) -> GenerationSettings:
        """The protected stack's settings while re-protecting (``retiring``) and after."""
        return GenerationSettings(self.active, self.target_generation,
                                  self.retiring if retiring else None)


@dataclass(frozen=True)
class FailbackOptions:
    mode: Mode
    stack: str                    # the stack file naming the inventory (dr)
    project_dir: Path
    yes: bool
    resume: bool
    report: Path | None
    journal_file: Path | None
    keep_old_generation: bool
    wait_timeout: float           # seconds for the new generation to catch up
    poll_seconds: float
    heartbeat_seconds: float = 10.0


class FailbackContext(RunContext):
    def __init__(self, inventory: Inventory, options: FailbackOptions, deployer: Deployer,
                 session: boto3.Session, *, rpo_minutes: int, inventory_parameter: str) -> None:
        super().__init__()
        self.inventory = inventory
        self.inventory_parameter = inventory_parameter
        self.options = options
        self.deployer = deployer
        self.session = session
        self.rpo_minutes = rpo_minutes
        self.clients = {site: RegionClients(AwsClients(self.site(site).region, STANDBY,
                                                       session))
                        for site in ("primary", "standby")}
        self._direction: Direction | None = None

    def site(self, site: str) -> SiteInventory:
        return self.inventory.primary if site == "primary" else self.inventory.standby

    def region(self, site: str) -> str:
        return self.site(site).region

    def account(self) -> str:
        return self.inventory.primary.database.arn.split(":")[4]

    def bucket(self, site: str) -> str:
        return backup_bucket_name(site, self.account())

    @property
    def direction(self) -> Direction:
        if self._direction is None:
            self._direction = survey(self)
        return self._direction


def _active_site(ctx: FailbackContext) -> Site:
    """The site the traffic switch sends users to: FAILOVER -> standby, PRIMARY -> primary."""
    switch = ctx.inventory.traffic_switch
    value = probes.read_switch(ctx.clients["standby"].s3(), switch.bucket, switch.key)
    if value is None:
        raise RefusedError(f"the traffic switch s3://{switch.bucket}/{switch.key} cannot be "
                           "read: which site serves is unknown; nothing was changed")
    if value.strip() == switch.failover_value:
        return "standby"
    if value.strip() == switch.primary_value:
        return "primary"
    raise RefusedError(f"the traffic switch holds {value.strip()!r}, neither "
                       f"{switch.primary_value} nor {switch.failover_value}; nothing was changed")


def survey(ctx: FailbackContext) -> Direction:
    """Read (only) where the writer is and what the other site must become.

    Refuses (exit 3) when the site that serves has no standalone, available writer (a failover
    or switchover that has not finished) and when the stack files disagree about it."""
    active = _active_site(ctx)
    protected = other(active)
    project = ctx.options.project_dir
    active_file = read_generation_settings(STACK_OF_SITE[active], project)
    protected_file = read_generation_settings(STACK_OF_SITE[protected], project)
    writer_id = db_identifier(active, active_file.generation)
    writer = probes.describe_database(ctx.clients[active].rds(), writer_id)
    if writer is None or writer.is_replica or writer.status != "available":
        state = ("not found" if writer is None else
                 f"a replica of {writer.source}" if writer.is_replica else writer.status)
        raise RefusedError(
            f"the traffic switch sends users to the {active} site, but its database {writer_id} "
            f"in {ctx.region(active)} is {state}: finish the failover or switchover first "
            "(failover.py --resume); nothing was changed")
    arn = (ctx.site(active).database.arn if ctx.site(active).database.identifier == writer_id
           else f"arn:aws:rds:{ctx.region(active)}:{ctx.account()}:db:{writer_id}")
    current = db_identifier(protected, protected_file.generation)
    found = probes.describe_database(ctx.clients[protected].rds(), current)
    if found is not None and same_source(found.source, arn):
        # Already a replica of the writer: this run only finishes (retirement, checks).
        return Direction(active, protected, writer_id, arn, protected_file.generation,
                         protected_file.retiring, protected_file)
    retiring = protected_file.retiring
    if (protected_file.active_site == active and retiring is not None
            and retiring.generation < protected_file.generation):
        # An earlier run wrote the settings; its new generation is not built yet.
        return Direction(active, protected, writer_id, arn, protected_file.generation,
                         retiring, protected_file)
    if retiring is not None:
        raise UsageError(
            f"Pulumi.{STACK_OF_SITE[protected]}.yaml still retires generation "
            f"{retiring.generation} (dbRetiring): finish that retirement first "
            "(docs/lifecycles.md)")
    old = (RetiringGeneration(generation=protected_file.generation, role="replica")
           if found is not None and found.is_replica else
           RetiringGeneration(generation=protected_file.generation, role="writer"))
    return Direction(active, protected, writer_id, arn, protected_file.generation + 1, old,
                     protected_file)
