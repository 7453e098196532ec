"""What one switchover run shares: the failover's context (inventory, clients, facts, journal)
turned to a chosen direction, plus the two databases' connection strings and the fence's
settings.

A switchover moves the writer from the site that writes now (``source``) to the site whose
replica follows it (``target``): ``--to standby`` from the primary region to the dr region,
``--to primary`` back home once the primary region runs a replica of the standby again
(failback's re-protection). Both regions must answer: a planned switchover never starts
without them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import boto3

from caresync_dr.aws import STANDBY, AwsClients, RegionClients
from caresync_dr.failover.context import FailoverContext
from caresync_dr.failover.options import RunOptions
from caresync_dr.inventory import Inventory, SiteInventory

Site = Literal["primary", "standby"]
SITES: tuple[Site, ...] = ("primary", "standby")
# How long the replica may take to replay the final position before the fence is rolled back.
DEFAULT_CATCH_UP_SECONDS = 60.0
# How long pg_terminate_backend waits for each client session to exit.
DEFAULT_TERMINATE_MS = 5000


@dataclass(frozen=True)
class DatabaseLink:
    """How the switchover reaches one site's database as the master user. ``conninfo`` holds
    a password: never logged, never reported; ``where`` is what reports show."""

    site: Site
    conninfo: str
    where: str

    def __repr__(self) -> str:
        return f"DatabaseLink({self.site}, {self.where})"


@dataclass(frozen=True)
class SwitchoverSettings:
    """The switchover's own inputs (the failover's :class:`RunOptions` carry the rest)."""

    to: Site
    source_db: DatabaseLink
    target_db: DatabaseLink
    writer_roles: tuple[str, ...]
    catch_up_seconds: float = DEFAULT_CATCH_UP_SECONDS
    terminate_ms: int = DEFAULT_TERMINATE_MS

    @property
    def source(self) -> Site:
        return "primary" if self.to == "standby" else "standby"


class SwitchoverContext(FailoverContext):
    """The failover's context with ``target`` the site switched to. The failover's steps
    (promotion, scale-up, traffic switch, verification) read ``target*`` and
    ``switch_value``, so they run unchanged in either direction."""

    def __init__(self, inventory: Inventory, options: RunOptions, settings: SwitchoverSettings,
                 session: boto3.Session | None = None) -> None:
        super().__init__(inventory, options, session=session)
        self.settings = settings
        # Both regions must answer (the failover's context budgets the writer's region best
        # effort).
        self.primary = RegionClients(AwsClients(inventory.primary.region, STANDBY,
                                                self.session))
        self.standby = RegionClients(AwsClients(inventory.standby.region, STANDBY,
                                                self.session))

    @property
    def reversed(self) -> bool:
        """Never: a switchover runs in the direction it is given (``--to``), with both regions
        answering; the reversed *failover*'s bookkeeping and switch fallbacks do not apply."""
        return False

    def site(self, name: Site) -> SiteInventory:
        return self.inventory.primary if name == "primary" else self.inventory.standby

    def clients(self, name: Site) -> RegionClients:
        return self.primary if name == "primary" else self.standby

    @property
    def source(self) -> SiteInventory:
        return self.site(self.settings.source)

    @property
    def source_clients(self) -> RegionClients:
        return self.clients(self.settings.source)

    @property
    def source_database(self) -> str:
        return self.source.database.identifier

    @property
    def target(self) -> SiteInventory:
        return self.site(self.settings.to)

    @property
    def target_site(self) -> str:
        return self.settings.to

    @property
    def target_clients(self) -> RegionClients:
        return self.clients(self.settings.to)

    @property
    def target_database(self) -> str:
        return self.target.database.identifier

    @property
    def target_source(self) -> str:
        return self.source.database.arn

    @property
    def switch_value(self) -> str:
        switch = self.inventory.traffic_switch
        return switch.failover_value if self.settings.to == "standby" else switch.primary_value

    @property
    def source_switch_value(self) -> str:
        switch = self.inventory.traffic_switch
        return switch.primary_value if self.settings.to == "standby" else switch.failover_value
