"""An app instance's boot, as the launch template's user data does it (components/app_tier.py).

Everything comes from the instance's own region, through the emulator's API: the database
host from the site's SSM parameter (``host:port``, a SecureString that SSM decrypts) and the
app's credentials from the site's copy of the ``caresync/db/app`` secret (decision D1:
``{"engine", "username", "password", "dbname"}``, no host). The clients' user agent carries
``app/caresync-app-<site>``, so the emulator's call log shows every endpoint a boot called,
refused ones included. A boot that cannot read either fails, as the user data does: the
instance starts no app.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.db.roles import APP_ROLE as APP_LOGIN
from caresync_dr.db.secrets import APP_SECRET_NAME
from caresync_dr.emulation.server import AwsRequest, Emulator

log = logging.getLogger(__name__)

APP_ROLE = APP_LOGIN.name  # D1: the app's login role, named in its secret's username


def app_id(site: str) -> str:
    """The user-agent app id (``app/<id>``) of a site's app instances."""
    return f"caresync-app-{site}"


@dataclass(frozen=True)
class BootConfig:
    """What an instance read at boot: where its database is and how it logs in."""

    endpoint: str  # host:port, from the SSM parameter
    user: str
    password: str = field(repr=False)
    dbname: str = ""

    @property
    def host(self) -> str:
        return self.endpoint.rpartition(":")[0].lower() or self.endpoint.lower()


@dataclass
class Boot:
    """One boot of a site's instances: when, what it read, what it called."""

    site: str
    region: str
    reason: str
    started_at: float  # time.monotonic()
    ended_at: float | None = None
    config: BootConfig | None = None
    error: str | None = None
    requests: list[AwsRequest] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.config is not None

    def calls(self) -> list[str]:
        """Each call as ``service.region Operation``, refused ones marked, in order."""
        return [f"{r.endpoint} {r.operation}{' (refused)' if r.refused else ''}"
                for r in self.requests]


def read_secret(emulator: Emulator, region: str, secret_id: str = APP_SECRET_NAME
                ) -> dict[str, str]:
    """A secret's JSON value as an operator reads it (the role command, as the master user)."""
    client = boto3.session.Session().client(
        "secretsmanager", region_name=region, endpoint_url=emulator.endpoint,
        aws_access_key_id="testing", aws_secret_access_key="testing")
    value: dict[str, str] = json.loads(client.get_secret_value(SecretId=secret_id)[
        "SecretString"])
    return value


@dataclass
class Booter:
    """Boots a site's instances against the emulator: one set of clients per site."""

    emulator: Emulator
    secret_id: str = APP_SECRET_NAME
    _clients: dict[tuple[str, str], Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _session: boto3.session.Session = field(default_factory=boto3.session.Session)

    def _client(self, service: str, site: str, region: str) -> Any:
        key = (service, site)
        if key not in self._clients:
            self.emulator.calls.watch(app_id(site))
            self._clients[key] = self._session.client(  # type: ignore[call-overload]
                service, region_name=region, endpoint_url=self.emulator.endpoint,
                aws_access_key_id="testing", aws_secret_access_key="testing",
                config=Config(user_agent_extra=f"app/{app_id(site)}", connect_timeout=1,
                              read_timeout=2,
                              retries={"mode": "standard", "total_max_attempts": 2}))
        return self._clients[key]

    def boot(self, site: str, region: str, parameter: str, reason: str) -> Boot:
        """Read the endpoint parameter and the app secret in ``region``, like the user data."""
        with self._lock:
            boot = Boot(site=site, region=region, reason=reason, started_at=time.monotonic())
            try:
                endpoint = self._client("ssm", site, region).get_parameter(
                    Name=parameter, WithDecryption=True)["Parameter"]["Value"]
                secret = json.loads(self._client("secretsmanager", site, region)
                                    .get_secret_value(SecretId=self.secret_id)["SecretString"])
                boot.config = BootConfig(endpoint=endpoint, user=secret["username"],
                                         password=secret["password"], dbname=secret["dbname"])
            except (ClientError, BotoCoreError, KeyError, TypeError, ValueError) as exc:
                boot.error = f"{type(exc).__name__}: {exc}"
            boot.ended_at = time.monotonic()
            boot.requests = [r for r in self.emulator.calls.of(app_id(site), boot.started_at)
                             if r.at <= boot.ended_at]
        if boot.ok:
            log.info("%s app instances booted (%s) in %s: database %s, user %s", site, reason,
                     region, boot.config.endpoint if boot.config else "-",
                     boot.config.user if boot.config else "-")
        else:
            log.warning("%s app instances failed to boot (%s) in %s: %s", site, reason, region,
                        boot.error)
        return boot
