"""What one ``pitr.py`` run knows: the restore time, the checks, the site and its clients."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import boto3

from caresync_dr import names
from caresync_dr.aws import STANDBY, AwsClients
from caresync_dr.operations.context import RunContext
from caresync_dr.operations.polling import PollPolicy
from caresync_dr.pitr.probes import InstanceDetail
from caresync_dr.pitr.verify import Check
from caresync_dr.pitr.window import RestorableWindow
from caresync_dr.settings import Settings


@dataclass(frozen=True)
class PitrOptions:
    stack: str
    restore_time: datetime
    checks: tuple[Check, ...]
    mode: Literal["run", "dry-run"] = "run"
    yes: bool = False
    resume: bool = False
    report: Path | None = None
    journal_file: Path | None = None
    health_url: str | None = None
    poll_seconds: float = 15.0
    poll_max_seconds: float = 60.0
    restore_timeout: float = 4 * 3600.0   # RDS restores take minutes to hours (log replay)
    refresh_timeout: float = 3600.0
    heartbeat_seconds: float = 10.0

    def policy(self, timeout: float) -> PollPolicy:
        return PollPolicy(interval=self.poll_seconds, max_interval=self.poll_max_seconds,
                          timeout=timeout)


@dataclass
class Plan:
    """What the preflight found and decided (re-read, or taken from the journal on resume)."""

    damaged: InstanceDetail | None = None
    target: str | None = None
    generation: int | None = None
    window: RestorableWindow | None = None
    windows: list[RestorableWindow] = field(default_factory=list)
    fence_group: str | None = None
    site_key_arn: str | None = None
    secret: dict[str, Any] | None = None


class PitrContext(RunContext):
    """The active site's database and app tier in its own region."""

    def __init__(self, options: PitrOptions, settings: Settings,
                 session: boto3.Session | None = None) -> None:
        super().__init__()
        self.options = options
        self.settings = settings
        self.session = session or boto3.Session()
        self.site = settings.site
        self.region = settings.region
        self.clients = AwsClients(self.region, STANDBY, self.session)
        self.endpoint_parameter = names.endpoint_parameter_name(self.site)
        self.key_alias = names.site_key_alias(self.site)
        self.plan = Plan()

    def lock_parameter(self) -> str:
        """The in-region lock app.py takes too: both replace the site's app instances."""
        return names.in_region_parameter(self.site, "lock")

    def journal_parameter(self) -> str:
        return names.in_region_parameter(self.site, "pitr-journal")
