"""What one ``app.py`` run knows: its options, the site it acts on, and typed AWS clients."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import boto3

from caresync_dr.app import rollout
from caresync_dr.app.rollout import ModeName, RefreshMode
from caresync_dr.aws import STANDBY, AwsClients
from caresync_dr.names import app_name, in_region_parameter
from caresync_dr.operations.context import RunContext
from caresync_dr.operations.polling import PollPolicy
from caresync_dr.settings import Settings

Action = Literal["restart", "deploy", "rollback"]


@dataclass(frozen=True)
class AppOptions:
    action: Action
    stack: str
    mode: Literal["run", "dry-run"] = "run"
    yes: bool = False
    resume: bool = False
    force: bool = False               # deploy a version that was rolled back before
    report: Path | None = None
    journal_file: Path | None = None
    version: int | None = None        # deploy: the template version (default: the latest)
    to_version: int | None = None     # rollback: the version to go back to
    to_ami: str | None = None         # rollback: a new version of the current one, this AMI
    poll_seconds: float = 5.0
    poll_max_seconds: float = 20.0
    wait_timeout: float = 3600.0      # a refresh, bake time included
    heartbeat_seconds: float = 10.0

    def policy(self, timeout: float | None = None) -> PollPolicy:
        return PollPolicy(interval=self.poll_seconds, max_interval=self.poll_max_seconds,
                          timeout=timeout or self.wait_timeout)


class AppContext(RunContext):
    """The site's app tier in its own region: every read and change of the run goes there."""

    def __init__(self, options: AppOptions, settings: Settings,
                 session: boto3.Session | None = None) -> None:
        super().__init__()
        self.options = options
        self.settings = settings
        self.session = session or boto3.Session()
        self.site = settings.site
        self.region = settings.region
        self.clients = AwsClients(self.region, STANDBY, self.session)
        self.group = app_name(self.site)

    @property
    def refresh_mode(self) -> RefreshMode:
        name: ModeName = self.options.action
        return rollout.MODES[name]

    def lock_parameter(self) -> str:
        """One lock for every in-region operation of the site (app.py and pitr.py): both
        replace the site's app instances."""
        return in_region_parameter(self.site, "lock")

    def journal_parameter(self) -> str:
        """One journal per action: an unfinished restart must not stand in the way of the
        rollback that follows it."""
        return in_region_parameter(self.site, f"app-{self.options.action}-journal")
