"""The database secrets (decision D1): names and the JSON value, shared by stack and tools.

Two self-managed Secrets Manager secrets, created by the prod stack in the primary region and
replicated by Secrets Manager into the standby region (the replica encrypted with the standby
site key): ``caresync/db/master`` (the RDS master user) and ``caresync/db/app`` (the app's login
role). The value follows AWS's rotation-function convention without ``host``: the host differs
per region, and each site's app reads it from its own region's SSM parameter
(``/caresync-dr/<site>/database-host``). Each site reads the secret in its *own* region.
"""

from __future__ import annotations

import json

from caresync_dr.names import APP_SECRET_NAME, MASTER_SECRET_NAME

__all__ = ["APP_SECRET_NAME", "MASTER_SECRET_NAME"]
ENGINE = "postgres"
# Characters RDS refuses in a master password ("/", '"', "@" and space; CreateDBInstance
# MasterUserPassword) and those that break the app's env file (quotes, "$", "\", "`") are
# left out of the special characters the passwords are drawn from.
PASSWORD_SPECIALS = "!#%&*()-_=+[]{}<>:?"
PASSWORD_LENGTH = 32


def secret_value(username: str, password: str, dbname: str) -> str:
    """The secret's JSON: ``{"engine", "username", "password", "dbname"}``, no host."""
    return json.dumps({"engine": ENGINE, "username": username, "password": password,
                       "dbname": dbname}, sort_keys=True)


def secret_arn_pattern(region: str, account_id: str, name: str) -> str:
    """The ARN of secret ``name`` in ``region`` for IAM policies: Secrets Manager appends six
    random characters to the name, matched by ``??????`` (Secrets Manager user guide,
    "Permissions policy examples": the secret's ARN with a wildcard for the suffix)."""
    return f"arn:aws:secretsmanager:{region}:{account_id}:secret:{name}-??????"
