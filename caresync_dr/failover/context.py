"""Everything one failover run shares: inventory, options, clients per region, journal, facts."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from caresync_dr.aws import BEST_EFFORT, STANDBY, AwsClients, RegionClients, new_core_session
from caresync_dr.failover import probes
from caresync_dr.failover.errors import UsageError
from caresync_dr.failover.options import RunOptions
from caresync_dr.inventory import Inventory, SiteInventory
from caresync_dr.operations.context import RunContext
from caresync_dr.operator_permissions import api_operations
from caresync_dr.startup import resume_collection

if TYPE_CHECKING:

    from caresync_dr.aws import AwsSession

# Every service a run builds a client of (its RegionClients methods; the notifier's SNS and
# Secrets Manager): what a host's model cache must hold for a quick start (aws.warm_model_cache).
CLIENT_SERVICES = ("ssm", "rds", "cloudwatch", "s3", "autoscaling", "elbv2", "ec2", "route53",
                   "sns", "secretsmanager")
# Services whose clients a run builds from a model cut to what its role may call
# (caresync_dr.model_trim): EC2's whole model (~750 operations) costs ~20 ms of CPU before the
# promotion request, for the one operation the preflight calls.
CUT_MODEL_SERVICES = ("ec2",)
ROUTE53_CONTROL_REGION = "us-east-1"   # Route 53's API lives only there


def client_operations() -> dict[str, frozenset[str]]:
    """What :data:`CUT_MODEL_SERVICES`' clients offer: the operator role's grants."""
    return api_operations("failover", CUT_MODEL_SERVICES)

# The longest a read of the database being promoted is reused (a confirmation prompt may sit
# between the preflight's read and the promotion).
DATABASE_READ_REUSE_SECONDS = 5.0


@dataclass(frozen=True)
class DatabaseRead:
    """One DescribeDBInstances of the database being promoted, and when it was made: the
    run's count of started changes (:attr:`RunContext.changes_started`) and the monotonic
    clock."""

    identifier: str
    state: probes.DbState | None
    changes: int
    at: float


def is_reversed(inventory: Inventory, options: RunOptions) -> bool:
    """A regional failover while the standby site writes (``activeSite`` standby)."""
    return options.scope == "region" and inventory.active_site == "standby"


class FailoverContext(RunContext):
    """The run's shared state (the engine's :class:`RunContext`: run id, start, facts,
    journal, stop). ``target`` is the site being promoted: the standby site for
    ``--scope region``, the primary site (its in-region replica) for ``--scope database``."""

    def __init__(self, inventory: Inventory, options: RunOptions,
                 session: AwsSession | None = None) -> None:
        super().__init__()
        self.inventory = inventory
        self.options = options
        session = session if session is not None else new_core_session(
            operations=client_operations())
        self.session = session
        # The promoted region must answer; the writer's region may be the one that failed,
        # except for --scope database, where it is the healthy region being repaired. After a
        # failback (reversed) the roles of the two regions swap.
        reversed_ = is_reversed(inventory, options)
        standby_budget = BEST_EFFORT if reversed_ else STANDBY
        self.standby = RegionClients(AwsClients(inventory.standby.region, standby_budget,
                                                session))
        primary_budget = STANDBY if options.scope == "database" or reversed_ else BEST_EFFORT
        self.primary = RegionClients(AwsClients(inventory.primary.region, primary_budget,
                                                session))
        self.route53 = RegionClients(AwsClients(ROUTE53_CONTROL_REGION, BEST_EFFORT, session))
        self._run_over = threading.Event()
        self._database_read: DatabaseRead | None = None
        self._database_mutex = threading.Lock()
        # The promote step's write-ahead record carried promotion_requested_at (its apply
        # then saves no journal write of its own before the request).
        self.promotion_request_journaled = False

    def target_database_state(self, *, fresh: bool = False, applying: bool = False
                              ) -> probes.DbState | None:
        """The database being promoted (None: it does not exist), read once for the way to
        the promotion request: the preflight reads it (``fresh``), the promote step's check
        reuses that read, and its ``apply`` (``applying``) the check's, as long as this run
        started no change since (the apply's own excepted) and the read is at most
        :data:`DATABASE_READ_REUSE_SECONDS` old. Under the run's lock nothing of ours changes
        it meanwhile; a change by someone else in those milliseconds is what a second read
        could also miss an instant before the request (RDS then refuses the request, and the
        step reads again). An apply consumes the read: every later read asks AWS."""
        db_id = self.target_database
        allowed = self.changes_started - (1 if applying else 0)
        with self._database_mutex:
            seen = self._database_read
            if applying:
                self._database_read = None
            if (not fresh and seen is not None and seen.identifier == db_id
                    and seen.changes == allowed
                    and time.monotonic() - seen.at <= DATABASE_READ_REUSE_SECONDS):
                return seen.state
        changes = self.changes_started
        state = probes.describe_database(self.target_clients.rds(), db_id)
        if not applying:
            with self._database_mutex:
                self._database_read = DatabaseRead(db_id, state, changes, time.monotonic())
        return state

    def prewarm(self) -> threading.Thread:
        """Create the clients a run uses, in the order it first needs them, in a background
        thread: building a botocore client (service model, endpoint rules, the client class)
        costs milliseconds to tens of milliseconds of CPU each -- EC2's model alone 0.05-0.1
        s, once per process --, and this overlaps it with the journal, lock and preflight
        reads, which wait on the network. Creating a client makes no AWS call; one a step
        needs first is simply created there.

        Only what the preflight and the steps up to the promotion request read is built
        before that request: everything else (the fencing's EC2 and Auto Scaling clients in
        the old writer's region, Route 53's control plane, the verify step's HTTP client)
        waits until the promotion is requested (``critical_sent``), so its CPU does not delay
        the request on a busy machine. (The notifier builds its own clients, on the hook
        thread, after that request too.)"""
        target = self.target_clients
        other = self.primary if target is self.standby else self.standby
        # What the preflight and the promotion read: the switch (S3: is the run already
        # done?), the promotion's RDS, then concurrently the app tier (Auto Scaling, ELB,
        # EC2's launch template) and the replica's lag (CloudWatch). EC2's client, the
        # costliest (~0.03 s of CPU), is built before CloudWatch's: built last, it overlapped
        # the preflight's reads and delayed each answer's parsing (6 alternating drills:
        # median ratio 1.047 with it last, 1.0425 before CloudWatch).
        # The steps beside the promotion (the scale-up, the fencing of the old primary) start
        # once it is requested (the runner hurries to it), so the fencing's clients come
        # after it, with Route 53's.
        before_promotion: list[Callable[[], object]] = [
            self.standby.s3, target.rds, target.ssm, target.autoscaling, target.elbv2,
            target.ec2, target.cloudwatch]
        after_promotion: list[Callable[[], object]] = [
            self.writer_clients.ec2, other.autoscaling, self.route53.route53]

        def create() -> None:
            for factory in before_promotion:
                if self.stop.is_set():
                    return
                with contextlib.suppress(Exception):  # a step reports its own client's error
                    factory()
            while not (self.critical_sent.wait(0.5) or self.stop.is_set()
                       or self._run_over.is_set()):
                pass
            resume_collection()      # paused by failover.py's first line (caresync_dr.startup)
            if self._run_over.is_set() or self.stop.is_set():
                return
            for factory in after_promotion:
                with contextlib.suppress(Exception):
                    factory()
            with contextlib.suppress(ImportError):
                import requests  # noqa: F401

        thread = threading.Thread(target=create, daemon=True, name="prewarm-clients")
        thread.start()
        return thread

    def run_over(self) -> None:
        """The command has returned: nothing more to build ahead."""
        self._run_over.set()

    # --- the site being promoted ---------------------------------------------------------
    @property
    def reversed(self) -> bool:
        """After a failback re-protected the primary site (``activeSite`` standby in the
        inventory), the region failover's direction is standby -> primary: the primary site's
        new generation is the replica, and the region that may have failed is the standby's
        (issue 15). Everything the run reads and writes then lives in the primary region."""
        return is_reversed(self.inventory, self.options)

    @property
    def writer(self) -> SiteInventory:
        """The site whose database writes today: the one a regional failover fences."""
        return self.inventory.standby if self.reversed else self.inventory.primary

    @property
    def writer_clients(self) -> RegionClients:
        return self.standby if self.reversed else self.primary

    @property
    def books(self) -> RegionClients:
        """Where the run keeps its lock, journal and incident timeline: the region that must
        answer (the standby region; the primary region when reversed)."""
        return self.primary if self.reversed else self.standby

    @property
    def incident_bucket(self) -> str | None:
        """The bucket (in :attr:`books`' region) that receives the incident timeline; None
        when a reversed run's inventory predates ``primaryBackupBucket``."""
        if self.reversed:
            return self.inventory.primary_backup_bucket
        return self.inventory.backup_bucket

    @property
    def target(self) -> SiteInventory:
        if self.reversed:
            return self.inventory.primary
        return self.inventory.standby if self.options.scope == "region" else self.inventory.primary

    @property
    def target_site(self) -> str:
        """The promoted site's name (``standby`` or ``primary``), as in its key's alias."""
        return "standby" if self.options.scope == "region" and not self.reversed else "primary"

    @property
    def target_clients(self) -> RegionClients:
        if self.reversed:
            return self.primary
        return self.standby if self.options.scope == "region" else self.primary

    @property
    def target_database(self) -> str:
        """The instance to promote."""
        if self.reversed:
            return self.inventory.primary.database.identifier
        if self.options.scope == "region":
            return self.inventory.standby.database.identifier
        replicas = self.inventory.primary.database.replica_identifiers
        if not replicas:
            raise UsageError("inventory primary.database.replicaIdentifiers is empty: "
                             "--scope database needs an in-region read replica")
        return replicas[0]

    @property
    def target_source(self) -> str:
        """What the instance to promote replicates from today (identifier or ARN)."""
        if self.reversed:
            return self.inventory.standby.database.arn
        if self.options.scope == "region":
            return self.inventory.primary.database.arn
        return self.inventory.primary.database.identifier

    @property
    def switch_value(self) -> str:
        """What the traffic switch must hold for the target site to serve (``FAILOVER``: the
        standby site; a reversed failover or a switchover home: ``PRIMARY``)."""
        sw = self.inventory.traffic_switch
        return sw.primary_value if self.reversed else sw.failover_value

    @property
    def backup_retention_days(self) -> int:
        return self.target.database.backup_retention_days

    @property
    def wait_timeout(self) -> float:
        configured = self.options.timing.wait_timeout_seconds
        return configured if configured is not None else self.inventory.objectives.rto_minutes * 60

    @property
    def health_url(self) -> str:
        return self.options.health_url or self.inventory.dns.public_health_url
