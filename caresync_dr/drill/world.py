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

An app finds its database like the real one does at boot (``boot``): it reads its site's
endpoint parameter (SSM) and the app's credentials (Secrets Manager), both in its own region,
and logs in to the address named there as ``caresync_app`` with that password (SCRAM). It boots
again when its instances are replaced (an Auto Scaling instance refresh) or new ones launch
(a scale-up registers new targets).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from moto.autoscaling.models import autoscaling_backends
from moto.rds.models import rds_backends
from moto.ssm.models import ssm_backends
from psycopg.conninfo import make_conninfo

from caresync_dr.db.roles import ROLES
from caresync_dr.drill.app import SiteApp
from caresync_dr.drill.boot import (
    Boot,
    BootConfig,
    Booter,
    read_secret,
)
from caresync_dr.drill.databases import (
    Databases,
    install_roles,
    start_databases,
    wait_for_role,
)
from caresync_dr.drill.deploy import Deployment, deploy_stacks
from caresync_dr.drill.front import PublicFront
from caresync_dr.emulation.autoscaling import InstanceRefreshes, TargetWarmup
from caresync_dr.emulation.rds import ReplicaPromotions, ReplicationStatus
from caresync_dr.emulation.route53 import DnsResolver
from caresync_dr.emulation.secretsmanager import ReplicaKeys
from caresync_dr.emulation.server import ACCOUNT_ID, Emulator
from caresync_dr.inventory import Inventory, SiteInventory, parse_inventory
from caresync_dr.pg.archive import WalArchive
from caresync_dr.pg.cluster import PostgresCluster
from caresync_dr.settings import Settings, settings_from_stack_file

log = logging.getLogger(__name__)


class Shim(Protocol):
    """A moto gap closed for this drill (caresync_dr.emulation): undone by ``disarm``."""

    def disarm(self) -> None: ...



def read_parameter(region: str, name: str) -> str | None:
    """An SSM parameter's value as a reader with kms:Decrypt sees it (in-process read, no API
    call). moto keeps a SecureString wrapped (``kms:<key id>:<value>``, its stand-in for the
    ciphertext); its own ``decrypt`` unwraps it."""
    with contextlib.suppress(Exception):
        param = ssm_backends[ACCOUNT_ID][region].get_parameter(name)
        if param is not None:
            if param.parameter_type == "SecureString":
                return str(param.decrypt(param.value))
            return str(param.value)
    return None


def launch_image(region: str, group: str, version: str | None) -> str | None:
    """The AMI of ``group``'s launch template at ``version`` (None: the group's own)."""
    with contextlib.suppress(Exception):
        found = autoscaling_backends[ACCOUNT_ID][region].autoscaling_groups[group]
        template = found.ec2_launch_template
        number = version or found.provided_launch_template_version
        if template is not None:
            return str(template.get_version(int(str(number))).image_id)
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
    shims: list[Shim] = field(default_factory=list)
    booter: Booter | None = None
    clusters_by_address: dict[str, tuple[str, PostgresCluster]] = field(default_factory=dict)
    # Every boot of each site's instances, and what the last good one read.
    boots: list[Boot] = field(default_factory=list)
    # Replicas whose replication RDS reports broken ("error", ReplicaLag -1): their source died.
    replication_broken: set[str] = field(default_factory=set)
    config_at_boot: dict[str, BootConfig] = field(default_factory=dict)
    # AMIs whose release fails every request (the bad-release drill).
    broken_images: set[str] = field(default_factory=set)
    # Clusters made by emulated point-in-time restores, stopped with the rest.
    restored: list[PostgresCluster] = field(default_factory=list)
    # Called after each replacement of a site's instances: (site, template version).
    on_replaced: list[Callable[[str, str | None], None]] = field(default_factory=list)

    def site_inventory(self, site: str) -> SiteInventory:
        return self.inventory.primary if site == "primary" else self.inventory.standby

    def boot(self, site: str, reason: str) -> Boot:
        """(Re)boot a site's instances, like the user data: endpoint and credentials from the
        site's own region; the app logs in afresh with them. A failed boot changes nothing."""
        assert self.booter is not None
        site_inv = self.site_inventory(site)
        boot = self.booter.boot(site, site_inv.region, site_inv.database.endpoint_parameter,
                                reason)
        self.boots.append(boot)
        if boot.config is not None:
            self.config_at_boot[site] = boot.config
            if site in self.apps:
                self.apps[site].reconnect()
        return boot

    def refreshed(self, region: str, group: str) -> None:
        """An instance refresh of ``group`` finished: its site runs freshly booted instances."""
        for site in ("primary", "standby"):
            site_inv = self.site_inventory(site)
            if site_inv.region == region and site_inv.app.auto_scaling_group_name == group:
                self.boot(site, "instance refresh")

    def replaced(self, region: str, group: str, version: str | None) -> None:
        """An instance refresh replaced ``group``'s instances with ones launched from template
        ``version`` (None: the group's own): they boot that release, a broken one too."""
        for site in ("primary", "standby"):
            site_inv = self.site_inventory(site)
            if site_inv.region != region or site_inv.app.auto_scaling_group_name != group:
                continue
            image = launch_image(region, group, version)
            if site in self.apps:
                self.apps[site].boot_release(image, image in self.broken_images)
            self.boot(site, f"instance refresh (template version {version or 'of the group'}, "
                            f"{image})")
            for hook in self.on_replaced:
                hook(site, version)

    def launched(self, target_group_arn: str, targets: list[str]) -> None:
        """New instances registered with a site's target group: they boot (in a thread, this
        runs inside moto's request)."""
        for site in ("primary", "standby"):
            if self.site_inventory(site).app.target_group_arn == target_group_arn:
                threading.Thread(target=self.boot, args=(site, f"{len(targets)} new instance(s)"),
                                 daemon=True, name=f"boot-{site}").start()

    def serving_group(self, target_group_arn: str) -> bool:
        """The load balancer's health check of a site's targets: its app answers 200."""
        for site in ("primary", "standby"):
            if self.site_inventory(site).app.target_group_arn == target_group_arn:
                app = self.apps.get(site)
                return app is not None and app.running and app.health()[0] == 200
        return True

    def locate(self, site: str) -> tuple[str, PostgresCluster] | None:
        """(label, cluster) the site's app connects to: the endpoint it read at boot."""
        config = self.config_at_boot.get(site)
        return None if config is None else self.clusters_by_address.get(config.host)

    def app_conninfo(self, site: str) -> str | None:
        """How the site's app logs in: its boot's credentials, at the local stand-in."""
        found, config = self.locate(site), self.config_at_boot.get(site)
        if found is None or config is None:
            return None
        return make_conninfo(host="127.0.0.1", port=found[1].port, user=config.user,
                             password=config.password, dbname=config.dbname)

    def serving_site(self) -> str | None:
        answer = self.resolver.current()
        if answer is None:
            return None
        return "primary" if answer.failover == "PRIMARY" else "standby"

    def write_target(self) -> tuple[str, str] | None:
        """Where and how the app writes now: the answered site's database, as its app logs
        in (the app role, with the password its instances read at boot)."""
        site = self.serving_site()
        found = self.locate(site) if site else None
        conninfo = self.app_conninfo(site) if site else None
        return None if found is None or conninfo is None else (found[0], conninfo)

    def stop(self, keep: bool) -> None:
        for stopper in (self.front.stop, self.resolver.stop,
                        *(app.kill for app in self.apps.values()),
                        *(shim.disarm for shim in self.shims)):
            with contextlib.suppress(Exception):
                stopper()
        self.databases.stop(keep=keep)
        if not keep:
            for cluster in self.restored:
                with contextlib.suppress(Exception):
                    cluster.stop(mode="immediate")
                shutil.rmtree(cluster.data_dir.parent, ignore_errors=True)


def build_world(emulator: Emulator, *, project_dir: Path, promote_seconds: float,
                scale_seconds: float, with_local_replica: bool,
                on_cleanup: Callable[[Callable[[bool], None]], None],
                archive: WalArchive | None = None, bake_scale: float = 1.0) -> World:
    """Deploy, start the data path and the sites; ``on_cleanup`` receives undo actions early."""
    settings = settings_from_stack_file("dr", project_dir)
    replica_keys = ReplicaKeys().arm()  # before the deploy creates the secrets' replicas
    on_cleanup(lambda _keep: replica_keys.disarm())
    app_database = settings_from_stack_file("prod", project_dir).db_name  # the primary's dbName
    started: dict[str, Any] = {}

    def databases() -> None:
        try:
            started["databases"] = start_databases(with_local_replica,
                                                   app_database=app_database,
                                                   password_roles=tuple(login for r in ROLES
                                                                        for login in r.logins),
                                                   archive=archive)
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
    passwords: dict[str, str] = {}
    for role in ROLES:  # each from its secret, read in the primary region as the command does
        secret = read_secret(emulator, inventory.primary.region, role.secret_name)
        if (secret.get("username"), secret.get("dbname")) != (role.name, dbs.app_database):
            raise RuntimeError(f"{role.secret_name} names user {secret.get('username')} in "
                               f"{secret.get('dbname')}; expected {role.name} in "
                               f"{dbs.app_database}")
        passwords[role.name] = secret["password"]
    install_roles(dbs.primary, dbs.app_database, passwords)
    for replica in dbs.all()[1:]:
        for role in ROLES:
            wait_for_role(replica, role.name)

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
    broken: set[str] = set()
    shims: list[Shim] = [
        promotions.arm(), warmup.arm(),
        ReplicationStatus(lambda region, ident: "error" if ident in broken
                          else "replicating").arm()]

    def disarm(_keep: bool) -> None:
        for shim in shims:
            shim.disarm()

    on_cleanup(disarm)

    world_ref: list[World] = []

    def locator(site: str) -> Callable[[], str | None]:
        def locate() -> str | None:
            return world_ref[0].app_conninfo(site) if world_ref else None
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
                  booter=Booter(emulator), clusters_by_address=by_address,
                  replication_broken=broken)
    world_ref.append(world)
    warmup.on_registered = world.launched
    warmup.serving = world.serving_group
    shims.append(InstanceRefreshes(delay_seconds=scale_seconds, on_replace=world.replaced,
                                   bake_scale=bake_scale).arm())
    for site, app in apps.items():
        world.boot(site, "deployed")
        app.start()
    resolver.start()
    front.start()
    return world
