"""How the switchover reaches both databases as the RDS master user.

Given ``--source-database-url``/``--target-database-url`` (or their environment variables),
those are used. Otherwise each site's link is built in that site's own region, as its app does
at boot (decision D1): the master user's credentials from the ``caresync/db/master`` secret
(the standby region holds its replica) and the host from the site's endpoint parameter
(``/caresync-dr/<site>/database-host``, ``address`` or ``address:port``). Connections require
TLS (``sslmode=require``): the stack's parameter group sets ``rds.force_ssl``.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from caresync_dr.aws import RegionClients, create_client
from caresync_dr.failover import probes
from caresync_dr.failover.errors import RefusedError, UsageError
from caresync_dr.inventory import SiteInventory
from caresync_dr.names import MASTER_SECRET_NAME
from caresync_dr.switchover.context import DatabaseLink, Site


def describe(conninfo: str) -> str:
    """``user@host:port/dbname``: what reports show of a connection (never the password)."""
    parts = conninfo_to_dict(conninfo)
    return (f"{parts.get('user') or '?'}@{parts.get('host') or parts.get('hostaddr') or '?'}:"
            f"{parts.get('port') or 5432}/{parts.get('dbname') or '?'}")


def read_only(link: DatabaseLink) -> DatabaseLink:
    """The same link whose every session starts read-only (``default_transaction_read_only``):
    ``--check`` and ``--dry-run`` use it, so no statement of theirs can change a database, and
    :func:`~caresync_dr.switchover.fence.fence_writes` refuses to terminate anything over it."""
    conninfo = make_conninfo(link.conninfo, options="-c default_transaction_read_only=on")
    return DatabaseLink(site=link.site, conninfo=conninfo, where=link.where + " (read-only)")


def given(site: Site, conninfo: str) -> DatabaseLink:
    return DatabaseLink(site=site, conninfo=conninfo, where=describe(conninfo))


def from_secret(site: Site, inventory: SiteInventory, clients: RegionClients) -> DatabaseLink:
    """The master user's link to ``site`` from its own region's secret and endpoint parameter.
    Raises :class:`RefusedError` when AWS does not answer, :class:`UsageError` when the secret
    or parameter is missing or malformed. Nothing is changed either way."""
    region = clients.region
    parameter = inventory.database.endpoint_parameter
    try:
        secrets: Any = create_client(clients.aws.session, "secretsmanager", region_name=region,
                                     config=clients.aws.budget.config())
        raw = secrets.get_secret_value(SecretId=MASTER_SECRET_NAME)["SecretString"]
        host = probes.read_parameter(clients.ssm(), parameter)
    except ClientError as exc:
        if probes.error_code(exc) == "ResourceNotFoundException":
            raise UsageError(f"secret {MASTER_SECRET_NAME} not found in {region}: pass the "
                             "database URLs instead (--source-database-url, "
                             "--target-database-url)") from exc
        raise RefusedError(f"cannot read the {site} database's credentials in {region}: "
                           f"{exc}. Nothing was changed") from exc
    except BotoCoreError as exc:
        raise RefusedError(f"cannot read the {site} database's credentials in {region}: "
                           f"{exc}. Nothing was changed") from exc
    if host is None:
        raise UsageError(f"endpoint parameter {parameter} not found in {region}")
    try:
        secret = json.loads(raw)
        user, password, dbname = secret["username"], secret["password"], secret["dbname"]
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"secret {MASTER_SECRET_NAME} in {region} is not the "
                         '{"username", "password", "dbname"} JSON of decision D1') from exc
    address, _, port = host.partition(":")
    conninfo = make_conninfo(host=address, port=port or "5432", user=user, password=password,
                             dbname=dbname, sslmode="require")
    return DatabaseLink(site=site, conninfo=conninfo, where=describe(conninfo))
