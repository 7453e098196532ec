"""The few SSM Parameter Store calls the engine's bookkeeping needs (lock, journal).

Reads and writes are separate functions, as in the failover's ``probes``/``actions``: the dry-run
recorder tells them apart by operation name, not by which module calls them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def read_parameter(ssm: SSMClient, name: str) -> str | None:
    """The parameter's value, decrypted when it is a SecureString (SSM ignores
    ``WithDecryption`` for String parameters), or None when it does not exist."""
    found = read_parameter_dated(ssm, name)
    return None if found is None else found[0]


def read_parameter_dated(ssm: SSMClient, name: str) -> tuple[str, datetime | None] | None:
    """(value, LastModifiedDate as SSM's clock reports it), or None when it does not exist.
    SecureStrings are decrypted."""
    found = read_parameter_version(ssm, name)
    return None if found is None else (found[0], found[1])


def read_parameter_version(ssm: SSMClient, name: str
                           ) -> tuple[str, datetime | None, int | None] | None:
    """(value, LastModifiedDate, Version), or None when it does not exist. ``name`` may select
    a version (``name:7``: SSM's parameter version selector). SecureStrings are decrypted."""
    try:
        parameter = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return None
        raise
    modified = parameter.get("LastModifiedDate")
    if modified is not None and modified.tzinfo is None:
        modified = modified.replace(tzinfo=UTC)
    version = parameter.get("Version")
    return str(parameter.get("Value", "")), modified, None if version is None else int(version)


def put_parameter(ssm: SSMClient, name: str, value: str, overwrite: bool = True,
                  key_id: str | None = None) -> int | None:
    """Write the parameter; returns the Version SSM gave the write (None if it said none).
    Overwrite=False makes the put atomic create-only (used for the lock).

    ``key_id`` writes a SecureString encrypted with that key (an alias is fine). It must be
    given on every overwrite: without it SSM re-encrypts with the account's default
    ``aws/ssm`` key, and a String overwrite would store the value in plain text.
    """
    if key_id is None:
        answer = ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=overwrite,
                                   Tier="Intelligent-Tiering")
    else:
        answer = ssm.put_parameter(Name=name, Value=value, Type="SecureString", KeyId=key_id,
                                   Overwrite=overwrite, Tier="Intelligent-Tiering")
    version = answer.get("Version")
    return None if version is None else int(version)
