"""Rotating a database login's password and its Secrets Manager secret together (decision D1).

The steps are AWS's rotation-function protocol for a single user (Secrets Manager user guide,
"Rotation by Lambda function": createSecret, setSecret, testSecret, finishSecret), without a
Lambda and without a host in the secret (D1 keeps it out; the caller passes the writer's
endpoint):

1. **create**: a new password is stored as the secret's ``AWSPENDING`` version under a
   client request token derived from the run and the secret, so a resumed run finds the same
   version and the same password instead of making another;
2. **set**: ``ALTER ROLE ... PASSWORD`` with a SCRAM verifier computed on this side (the
   password never reaches a server log), as the master user (or, for the master user, as
   itself with whichever of its current, pending or previous password still works);
3. **test**: the new password logs in;
4. **finish**: ``AWSCURRENT`` moves to the new version (the old one becomes ``AWSPREVIOUS``);
5. **verify**: the old password is refused by the server.

Each step reads the state first and skips what is done, so a crash anywhere leaves a state
the next run completes. The secret is written in the region that holds its primary copy; when
that region is down, the caller first promotes the standby replica
(:func:`promote_replica`, ``StopReplicationToReplica``), after which that copy is the one to
write. Secrets Manager replicates every new version of a primary secret to its replicas.
"""

from __future__ import annotations

import json
import logging
import secrets
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from botocore.exceptions import ClientError
from psycopg import sql

from caresync_dr.db.roles import scram_verifier
from caresync_dr.db.secrets import PASSWORD_LENGTH, PASSWORD_SPECIALS
from caresync_dr.db.sessions import Endpoint, LoginRefusedError, connect, login_refused

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

log = logging.getLogger(__name__)
PENDING, CURRENT, PREVIOUS = "AWSPENDING", "AWSCURRENT", "AWSPREVIOUS"
_TOKEN_NAMESPACE = uuid.UUID("5d8f6c1e-3a0b-4f7e-9c55-6a1d2b3c4e5f")


class RotationError(Exception):
    """A rotation cannot go on; the message says which step and why (nothing half-done is
    left that the next run would not complete)."""


def new_password(length: int = PASSWORD_LENGTH) -> str:
    """A random password from the alphabet the stack's generated passwords use (no character
    RDS refuses in a master password), with at least one of each class."""
    alphabet = string.ascii_letters + string.digits + PASSWORD_SPECIALS
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if (any(c.islower() for c in password) and any(c.isupper() for c in password)
                and any(c.isdigit() for c in password)
                and any(c in PASSWORD_SPECIALS for c in password)):
            return password


def rotation_token(run_id: str, secret_name: str) -> str:
    """The ClientRequestToken (a version id) of this run's new version of ``secret_name``."""
    return str(uuid.uuid5(_TOKEN_NAMESPACE, f"{run_id}/{secret_name}"))


@dataclass(frozen=True)
class SecretVersion:
    version_id: str
    value: dict[str, Any]

    @property
    def username(self) -> str:
        return str(self.value["username"])

    @property
    def password(self) -> str:
        return str(self.value["password"])


class SecretStore:
    """A secret's versions in one region (the primary copy, or a promoted replica)."""

    def __init__(self, client: SecretsManagerClient) -> None:
        self.client = client

    def version(self, secret_id: str, stage: str) -> SecretVersion | None:
        try:
            answer = self.client.get_secret_value(SecretId=secret_id, VersionStage=stage)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
        return SecretVersion(answer["VersionId"], json.loads(answer["SecretString"]))

    def stages(self, secret_id: str) -> dict[str, list[str]]:
        described = self.client.describe_secret(SecretId=secret_id)
        return {k: list(v) for k, v in described.get("VersionIdsToStages", {}).items()}

    def primary_region(self, secret_id: str) -> str | None:
        """The region of the secret's primary copy, as this region's copy reports it."""
        described = self.client.describe_secret(SecretId=secret_id)
        region = described.get("PrimaryRegion")
        return str(region) if region else None

    def put_pending(self, secret_id: str, token: str, value: dict[str, Any]) -> None:
        self.client.put_secret_value(SecretId=secret_id, ClientRequestToken=token,
                                     SecretString=json.dumps(value, sort_keys=True),
                                     VersionStages=[PENDING])

    def make_current(self, secret_id: str, version_id: str) -> None:
        current = next((v for v, s in self.stages(secret_id).items() if CURRENT in s), None)
        if current == version_id:
            return
        self.client.update_secret_version_stage(SecretId=secret_id, VersionStage=CURRENT,
                                                MoveToVersionId=version_id,
                                                RemoveFromVersionId=current or "")


def promote_replica(client: SecretsManagerClient, secret_id: str) -> bool:
    """Make this region's replica a standalone secret (``StopReplicationToReplica``), so it can
    be written while the primary's region is down. True when it was promoted now, False when it
    already was standalone (it names itself, or nothing, as the primary region). The primary's
    old copy is left as it was: when its region returns, it is stale (runbook, "After the
    primary region returns")."""
    described = client.describe_secret(SecretId=secret_id)
    primary = described.get("PrimaryRegion")
    here = client.meta.region_name
    if not primary or primary == here:
        return False
    client.stop_replication_to_replica(SecretId=secret_id)
    return True


@dataclass(frozen=True)
class Credential:
    """A login and the secret holding its password."""

    role: str
    secret_id: str
    master: bool = False


@dataclass
class RotationResult:
    role: str
    secret_id: str
    version_id: str
    old_version_id: str | None
    new_password_works: bool
    old_password_refused: bool | None   # None: there was no old password to try
    sentence: str


AdminConnect = Callable[[], "psycopg.Connection[Any]"]


def _set_password(conn: psycopg.Connection[Any], role: str, password: str) -> None:
    verifier = scram_verifier(conn, role, password)
    conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role),
                                                             sql.Literal(verifier)))


def master_connection(store: SecretStore, secret_id: str, endpoint: Endpoint
                      ) -> tuple[psycopg.Connection[Any], str]:
    """The master user logged in with whichever of its secret's versions works now: current,
    then pending (a rotation of the master that set the password but had not finished), then
    previous (finished but a replica region still serves the older copy). Returns the
    connection and the stage that worked; :class:`RotationError` when none does."""
    tried = []
    for stage in (CURRENT, PENDING, PREVIOUS):
        version = store.version(secret_id, stage)
        if version is None:
            continue
        try:
            return connect(endpoint, version.username, version.password), stage
        except LoginRefusedError as exc:
            tried.append(f"{stage}: {exc}")
    raise RotationError(f"no version of {secret_id} logs in to {endpoint} as the master user "
                        f"({'; '.join(tried) or 'the secret has no versions'})")


def rotate(store: SecretStore, credential: Credential, token: str, endpoint: Endpoint,
           admin: AdminConnect) -> RotationResult:
    """Rotate one credential (the module docstring's five steps); idempotent for one token.

    ``admin`` opens a connection that may ALTER the role (the master user's); for the master
    credential itself the role alters its own password over a connection logged in as itself.
    Raises :class:`RotationError` (or AWS/psycopg errors) naming the step that failed.
    """
    current = store.version(credential.secret_id, CURRENT)
    if current is None:
        raise RotationError(f"{credential.secret_id} has no AWSCURRENT version")
    if current.version_id == token:
        # Finished by an earlier attempt of this run: only the verification is left.
        previous = store.version(credential.secret_id, PREVIOUS)
        return _verified(credential, token, current, previous, endpoint)
    pending = store.version(credential.secret_id, PENDING)
    if pending is None or pending.version_id != token:
        value = {**current.value, "password": new_password()}
        store.put_pending(credential.secret_id, token, value)      # 1. create
        pending = store.version(credential.secret_id, PENDING)
        if pending is None or pending.version_id != token:
            raise RotationError(f"{credential.secret_id}: the pending version {token} was "
                                "not stored")
    if login_refused(endpoint, pending.username, pending.password):
        with admin() as conn:                                       # 2. set
            _set_password(conn, credential.role, pending.password)
        log.info("%s: the new password is set in the database", credential.role)
    if login_refused(endpoint, pending.username, pending.password):   # 3. test
        raise RotationError(f"{credential.role}: the new password was set but does not log "
                            f"in to {endpoint}")
    store.make_current(credential.secret_id, token)                 # 4. finish
    return _verified(credential, token, pending, current, endpoint)


def _verified(credential: Credential, token: str, new: SecretVersion,
              old: SecretVersion | None, endpoint: Endpoint) -> RotationResult:
    works = not login_refused(endpoint, new.username, new.password)   # 5. verify
    refused = None if old is None or old.password == new.password else login_refused(
        endpoint, old.username, old.password)
    what = ("the old password is refused" if refused else
            "THE OLD PASSWORD STILL LOGS IN" if refused is False else "there was no old one")
    return RotationResult(
        role=credential.role, secret_id=credential.secret_id, version_id=token,
        old_version_id=old.version_id if old else None, new_password_works=works,
        old_password_refused=refused,
        sentence=f"{credential.role}: rotated ({credential.secret_id} version {token[:8]} is "
                 f"AWSCURRENT), the new password logs in, {what}")
