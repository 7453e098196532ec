"""Everything one breach response shares: the incident, both sites, clients per region, what was
resolved before the first change, and the facts found on the way.

Regions are tried, never assumed: a region that does not answer the first call is marked
unreachable with the reason, and every step that needs it says so instead of hanging. All
clients come from one boto3 session, so the engine's read-only modes see (and block) every AWS
call; database changes go through :meth:`BreachContext.database_change`, which refuses in a
read-only mode the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.aws import BEST_EFFORT, STANDBY, AwsClients, RegionClients
from caresync_dr.breach.inputs import Incident
from caresync_dr.breach.probes import InstanceState
from caresync_dr.breach.sites import Layout, SiteLayout
from caresync_dr.cli.errors import RefusedError
from caresync_dr.db.rotation import Credential
from caresync_dr.db.sessions import Endpoint
from caresync_dr.operations import RunContext

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient

@dataclass
class RegionAccess:
    site: SiteLayout
    clients: RegionClients
    reachable: bool = True
    reason: str = ""


@dataclass(frozen=True)
class Rotation:
    """One credential to rotate and where: the secret is written in ``secret_region``."""

    credential: Credential
    secret_region: str


@dataclass
class DatabaseView:
    """The databases as resolved: the writer and every reachable site's endpoint."""

    endpoints: dict[str, Endpoint] = field(default_factory=dict)   # site -> endpoint (answers)
    unanswered: dict[str, str] = field(default_factory=dict)       # site -> why not
    writer_site: str | None = None
    problem: str = ""       # why there is no writer (unreachable, no credentials...)

    @property
    def writer(self) -> Endpoint | None:
        return self.endpoints.get(self.writer_site) if self.writer_site else None


@dataclass
class Resolved:
    """What every input resolved to, read before the first change."""

    account: str
    key_owners: dict[str, str] = field(default_factory=dict)      # access key -> IAM user
    role_arns: dict[str, str] = field(default_factory=dict)
    instances: dict[str, InstanceState] = field(default_factory=dict)
    database: DatabaseView = field(default_factory=DatabaseView)
    rotations: list[Rotation] = field(default_factory=list)
    disable_login: list[str] = field(default_factory=list)         # db roles without a secret
    secrets_to_promote: list[str] = field(default_factory=list)    # replicas to make writable
    phi_buckets: dict[str, list[str]] = field(default_factory=dict)  # trail region -> buckets
    iam_problem: str = ""       # IAM's control plane (us-east-1) did not answer

    def as_report(self) -> dict[str, Any]:
        return {"account": self.account, "keyOwners": self.key_owners,
                "roles": self.role_arns,
                "instances": {i: {"region": s.region, "vpc": s.vpc_id,
                                  "autoScalingGroup": s.auto_scaling_group,
                                  "volumes": sorted(s.volumes)}
                              for i, s in self.instances.items()},
                "database": {"writerSite": self.database.writer_site,
                             "endpoints": {k: str(v) for k, v in
                                           self.database.endpoints.items()},
                             "unanswered": self.database.unanswered,
                             "problem": self.database.problem},
                "rotations": [{"role": r.credential.role, "secret": r.credential.secret_id,
                               "secretRegion": r.secret_region} for r in self.rotations],
                "disableLogin": self.disable_login,
                "secretsToPromote": self.secrets_to_promote, "phiBuckets": self.phi_buckets,
                "iamProblem": self.iam_problem}


@dataclass(frozen=True)
class BreachOptions:
    project_dir: Path
    db_sslmode: str = "require"
    refresh_app: bool = True
    journal_file: Path | None = None     # the journal's local copy


class BreachContext(RunContext):
    """The run's shared state (the engine's :class:`RunContext`: run id, start, facts saved in
    the journal). ``read_only`` is set for --check and --dry-run."""

    def __init__(self, incident: Incident, layout: Layout, options: BreachOptions,
                 session: boto3.Session | None = None) -> None:
        super().__init__()
        self.incident = incident
        self.layout = layout
        self.options = options
        self.session = session or boto3.Session()
        self.read_only = False
        self.resolved: Resolved | None = None
        self.regions = {
            site.region: RegionAccess(site, RegionClients(AwsClients(
                site.region, STANDBY if site is layout.standby else BEST_EFFORT, self.session)))
            for site in layout.sites}

    # --- regions ----------------------------------------------------------------------------
    def probe_regions(self) -> None:
        """Mark each region reachable or not (one STS call each, a short budget)."""
        for access in self.regions.values():
            try:
                access.clients.sts().get_caller_identity()
                access.reachable, access.reason = True, ""
            except (ClientError, BotoCoreError) as exc:
                access.reachable, access.reason = False, f"{type(exc).__name__}: {exc}"

    def reachable(self) -> list[RegionAccess]:
        return [a for a in self.regions.values() if a.reachable]

    def clients(self, region: str) -> RegionClients:
        access = self.regions[region]
        if not access.reachable:
            raise RefusedError(f"{region} does not answer ({access.reason})")
        return access.clients

    def iam(self) -> IAMClient:
        """IAM's control plane answers in us-east-1 only (every region's client goes there);
        during an outage of us-east-1 IAM changes fail, whichever region the run uses."""
        reachable = self.reachable()
        if not reachable:
            raise RefusedError("no region answers")
        return reachable[0].clients.iam()

    @property
    def resolution(self) -> Resolved:
        if self.resolved is None:
            raise RuntimeError("the incident is not resolved yet (resolve.resolve first)")
        return self.resolved

    def database_change(self, what: str) -> None:
        """Call before a database change: refuses in --check and --dry-run."""
        if self.read_only:
            raise RefusedError(f"read-only mode: {what} was not done")
