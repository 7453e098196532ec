"""Everything a drill runs, wired together: emulator, deployed stacks, databases, apps, DNS.

:func:`build_world` starts the pieces in dependency order and maps each emulated resource to
its local stand-in:

====================================  ===============================================
emulated (moto, created by the stack)  local stand-in
====================================  ===============================================
prod RDS instance                      ``databases.primary`` (PostgreSQL)
prod in-region read replica            ``databases.local_replica`` (db-failure only)
dr cross-region read replica           ``databases.standby`` (streaming replica)
each site's ALB DNS name               that site's :class:`SiteApp` (127.0.0.1:port)
Route 53 records + health checks       :class:`DnsResolver` (data plane)
the record name's public health URL    :class:`PublicFront`
====================================  ===============================================

An app finds its database like the real one does at boot: it reads its site's endpoint
parameter (SSM, its region) and connects to the address named there. It reads it again only
when its instances are replaced (an Auto Scaling instance refresh, ``refresh``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moto.rds.models import rds_backends
from moto.ssm.models import ssm_backends

from caresync_dr.drill.app import SiteApp
from caresync_dr.drill.databases import Databases, start_databases
from caresync_dr.drill.deploy import Deployment, deploy_stacks
from caresync_dr.drill.front import PublicFront
from caresync_dr.emulation.autoscaling import InstanceRefreshes, TargetWarmup
from caresync_dr.emulation.rds import ReplicaPromotions, ReplicationStatus
from caresync_dr.emulation.route53 import DnsResolver
from caresync_dr.emulation.server import ACCOUNT_ID, Emulator
from caresync_dr.inventory import Inventory, parse_inventory
from caresync_dr.pg.cluster import PostgresCluster
from caresync_dr.settings import Settings, settings_from_stack_file

log = logging.getLogger(__name__)


def read_parameter(region: str, name: str) -> str | None:
    """An SSM parameter as the emulator holds it (in-process read, no API call)."""
    with contextlib.suppress(Exception):
        param = ssm_backends[ACCOUNT_ID][region].get_parameter(name)
        if param is not None:
            return str(param.value)
    return None


def db_address(region: str, identifier: str) -> str:
    return str(rds_backends[ACCOUNT_ID][region].databases[identifier].address).lower()


@dataclass
class World:
    emulator: Emulator
    settings: Settings  # the dr stack's
    deployment: Deployment
    inventory: Inventory
    databases: Databases
    promotions: ReplicaPromotions
    warmup: TargetWarmup
    apps: dict[str, SiteApp]
    resolver: DnsResolver
    front: PublicFront
    # moto's gaps closed for this drill (caresync_dr.emulation), disarmed by stop().
    shims: list[ReplicaPromotions | ReplicationStatus | InstanceRefreshes | TargetWarmup] = \
        field(default_factory=list)
    clusters_by_address: dict[str, tuple[str, PostgresCluster]] = field(default_factory=dict)
    # What each site's instances read from the endpoint parameter when they booted.
    endpoint_at_boot: dict[str, str | None] = field(default_factory=dict)

    def boot(self, site: str) -> None:
        """(Re)boot a site's instances: they read the endpoint parameter, like the user data."""
        site_inv = self.inventory.primary if site == "primary" else self.inventory.standby
        value = read_parameter(site_inv.region, site_inv.database.endpoint_parameter)
        self.endpoint_at_boot[site] = value
        log.info("%s app instances booted with database endpoint %s", site, value)

    def refreshed(self, region: str, group: str) -> None:
        """An instance refresh of ``group`` finished: its site runs freshly booted instances."""
        for site, site_inv in (("primary", self.inventory.primary),
                               ("standby", self.inventory.standby)):
            if site_inv.region == region and site_inv.app.auto_scaling_group_name == group:
                self.boot(site)

    def locate(self, site: str) -> tuple[str, PostgresCluster] | None:
        """(label, cluster) the site's app connects to: the endpoint it read at boot."""
        value = self.endpoint_at_boot.get(site)
        if value is None:
            return None
        host = value.rsplit(":", 1)[0].lower() if value.count(":") == 1 else value.lower()
        return self.clusters_by_address.get(host)

    def serving_site(self) -> str | None:
        answer = self.resolver.current()
        if answer is None:
            return None
        return "primary" if answer.failover == "PRIMARY" else "standby"

    def write_target(self) -> tuple[str, str] | None:
        """Where the app would write now: the answered site's database."""
        site = self.serving_site()
        found = self.locate(site) if site else None
        return None if found is None else (found[0], self.databases.dsn(found[1]))

    def stop(self, keep: bool) -> None:
        for stopper in (self.front.stop, self.resolver.stop,
                        *(app.kill for app in self.apps.values()),
                        *(shim.disarm for shim in self.shims)):
            with contextlib.suppress(Exception):
                stopper()
        self.databases.stop(keep=keep)


def build_world(emulator: Emulator, *, project_dir: Path, promote_seconds: float,
                scale_seconds: float, with_local_replica: bool,
                on_cleanup: Callable[[Callable[[bool], None]], None]) -> World:
    """Deploy, start the data path and the sites; ``on_cleanup`` receives undo actions early."""
    settings = settings_from_stack_file("dr", project_dir)
    app_database = settings_from_stack_file("prod", project_dir).db_name  # the primary's dbName
    started: dict[str, Any] = {}

    def databases() -> None:
        try:
            started["databases"] = start_databases(with_local_replica,
                                                   app_database=app_database)
        except BaseException as exc:  # re-raised in the caller's thread
            started["error"] = exc

    pg_thread = threading.Thread(target=databases, name="start-databases")
    pg_thread.start()  # PostgreSQL initdb/basebackup run while the program deploys
    try:
        deployment = deploy_stacks(emulator, project_dir)
    finally:
        pg_thread.join()
        if "databases" in started:
            dbs_started: Databases = started["databases"]
            on_cleanup(dbs_started.stop)
    if "error" in started:
        raise started["error"]
    dbs: Databases = started["databases"]

    document = read_parameter(settings.standby_region, settings.inventory_parameter)
    if document is None:
        raise RuntimeError(f"the dr stack wrote no failover inventory to "
                           f"{settings.inventory_parameter} in {settings.standby_region}")
    inventory = parse_inventory(document)

    primary_db = inventory.primary.database
    standby_db = inventory.standby.database
    by_address: dict[str, tuple[str, PostgresCluster]] = {
        db_address(inventory.primary.region, primary_db.identifier): ("primary", dbs.primary),
        db_address(inventory.standby.region, standby_db.identifier): ("standby", dbs.standby),
    }
    promotions = ReplicaPromotions(delay_seconds=promote_seconds)
    promotions.bind(inventory.standby.region, standby_db.identifier, dbs.standby.promote)
    if dbs.local_replica is not None:
        if not primary_db.replica_identifiers:
            raise RuntimeError("the prod stack has no in-region read replica to promote")
        replica_id = primary_db.replica_identifiers[0]
        by_address[db_address(inventory.primary.region, replica_id)] = (
            "local_replica", dbs.local_replica)
        promotions.bind(inventory.primary.region, replica_id, dbs.local_replica.promote)
    warmup = TargetWarmup(delay_seconds=scale_seconds)
    shims: list[ReplicaPromotions | ReplicationStatus | InstanceRefreshes | TargetWarmup] = [
        promotions.arm(), ReplicationStatus().arm(), warmup.arm()]

    def disarm(_keep: bool) -> None:
        for shim in shims:
            shim.disarm()

    on_cleanup(disarm)

    world_ref: list[World] = []

    def locator(site: str) -> Callable[[], str | None]:
        def locate() -> str | None:
            found = world_ref[0].locate(site) if world_ref else None
            return None if found is None else world_ref[0].databases.dsn(found[1])
        return locate

    apps = {"primary": SiteApp("primary", inventory.primary.region, locator("primary")),
            "standby": SiteApp("standby", inventory.standby.region, locator("standby"))}
    endpoints = {inventory.primary.app.load_balancer_dns.lower(): apps["primary"].url,
                 inventory.standby.app.load_balancer_dns.lower(): apps["standby"].url}
    resolver = DnsResolver(
        hosted_zone_id=inventory.dns.hosted_zone_id, record_name=inventory.dns.record_name,
        endpoints=endpoints,
        s3_reachable=lambda region: region not in emulator.outage.regions)
    front = PublicFront(resolver)
    world = World(emulator=emulator, settings=settings, deployment=deployment,
                  inventory=inventory, databases=dbs, promotions=promotions, warmup=warmup,
                  apps=apps, resolver=resolver, front=front, shims=shims,
                  clusters_by_address=by_address)
    world_ref.append(world)
    shims.append(InstanceRefreshes(delay_seconds=scale_seconds,
                                   on_complete=world.refreshed).arm())
    for site, app in apps.items():
        world.boot(site)
        app.start()
    resolver.start()
    front.start()
    return world
