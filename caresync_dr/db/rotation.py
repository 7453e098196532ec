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

A credential with two logins (the app's: AWS's **alternating users** strategy, Secrets Manager
user guide, "Lambda function rotation strategies") differs in steps 1, 2 and 5. The pending
version names the login the secret does *not* name now (``caresync_app`` <->
``caresync_app_clone``); step 2 first makes sure both logins and their NOLOGIN group exist as
:mod:`caresync_dr.db.roles` specifies (the first rotation after the change creates the clone:
the migration), refuses to move the app if the two logins could differ
(:func:`~caresync_dr.db.roles.switch_problems`) or if the target login still has sessions (the
previous instance refresh has not finished), then sets the password. Step 5 depends on why the
rotation runs:

* **scheduled** (``retire_previous=False``): the previous login's password must still work.
  Every app instance booted before the rotation holds it and keeps opening connections with it
  until the instance refresh replaces the instance; it stays valid until the next rotation
  changes that login's password.
* **breach** (``retire_previous=True``, the default): the previous login also gets a new
  random password that is stored nowhere, so *every* old password is refused at once
  (containment); the app's old instances then fail until the refresh replaces them.

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
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
from botocore.exceptions import ClientError
from psycopg import sql

from caresync_dr.db import pgaudit
from caresync_dr.db.roles import (
    OWNER_ROLE,
    LoginRole,
    role_statements,
    scram_verifier,
    switch_problems,
)
from caresync_dr.db.secrets import PASSWORD_LENGTH, PASSWORD_SPECIALS
from caresync_dr.db.sessions import (
    OWN_APPLICATION_NAME,
    Endpoint,
    LoginRefusedError,
    connect,
    login_refused,
    role_exists,
    sessions_of,
)

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
    created: datetime | None = None   # CreatedDate (GetSecretValue)

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
        return self._get_value(SecretId=secret_id, VersionStage=stage)

    def version_by_id(self, secret_id: str, version_id: str) -> SecretVersion | None:
        return self._get_value(SecretId=secret_id, VersionId=version_id)

    def _get_value(self, **selector: str) -> SecretVersion | None:
        """GetSecretValue of one version (by stage or id); None when there is none."""
        try:
            answer = self.client.get_secret_value(**selector)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise
        return SecretVersion(answer["VersionId"], json.loads(answer["SecretString"]),
                             answer.get("CreatedDate"))

    def older_versions(self, secret_id: str, keep: tuple[str, ...]) -> list[SecretVersion]:
        """Every version of the secret, deprecated ones included, except those labelled with
        a stage in ``keep`` (Secrets Manager keeps versions without a label as deprecated
        until it removes them; ListSecretVersionIds ``IncludeDeprecated``)."""
        answer = self.client.list_secret_version_ids(SecretId=secret_id, IncludeDeprecated=True,
                                                     MaxResults=100)
        found = []
        for entry in answer.get("Versions", []):
            if set(entry.get("VersionStages", [])) & set(keep):
                continue
            version = self.version_by_id(secret_id, entry["VersionId"])
            if version is not None:
                found.append(version)
        return found

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
    """A login and the secret holding its password; ``alternating`` when the secret alternates
    between the two logins of that role (AWS's alternating users)."""

    role: str
    secret_id: str
    master: bool = False
    alternating: LoginRole | None = None

    @property
    def logins(self) -> tuple[str, ...]:
        return self.alternating.logins if self.alternating else (self.role,)


@dataclass
class RotationResult:
    role: str
    secret_id: str
    version_id: str
    old_version_id: str | None
    new_password_works: bool
    old_password_refused: bool | None   # None: there was no old password to try
    sentence: str
    old_must_work: bool = False   # a scheduled alternating rotation: the previous login stays
    login: str = ""               # the login the secret names now

    @property
    def ok(self) -> bool:
        """The new password logs in, and the old one is refused (or, when it must keep
        working, is not)."""
        if not self.new_password_works:
            return False
        if self.old_password_refused is None:
            return True
        return self.old_password_refused is not self.old_must_work


AdminConnect = Callable[[], "psycopg.Connection[Any]"]


def _set_password(conn: psycopg.Connection[Any], role: str, password: str) -> None:
    verifier = scram_verifier(conn, role, password)
    conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role),
                                                             sql.Literal(verifier)))


def table_owner(conn: psycopg.Connection[Any]) -> str:
    """Who creates the tables, so whose default privileges to grant: the NOLOGIN owner role
    when the database has one (roles.py), else the master user (this session's)."""
    return OWNER_ROLE if role_exists(conn, OWNER_ROLE) else str(conn.info.user)


def _prepare_switch(conn: psycopg.Connection[Any], role: LoginRole, current: str, target: str,
                    password: str, *, check_sessions: bool) -> None:
    """In one transaction: both logins and their group as roles.py specifies them (creating
    the clone on the first rotation), ``current``'s own pgAudit setting copied to ``target``,
    then ``target``'s new password; rolled back, with :class:`RotationError`, when the logins
    could differ or, with ``check_sessions``, when ``target`` still has sessions."""
    with conn.transaction():
        verifier = scram_verifier(conn, target, password)
        for change in role_statements(role, database=str(conn.info.dbname),
                                      owner=table_owner(conn),
                                      password_verifiers={target: verifier}):
            conn.execute(sql.Composed([change.statement]))
        problems = switch_problems(conn, role, current, target)
        if check_sessions:
            open_sessions = [s for s in sessions_of(conn, target)
                             if s.application != OWN_APPLICATION_NAME]
            if open_sessions:
                problems.append(
                    f"{target} still has {len(open_sessions)} session(s) open (clients "
                    f"{', '.join(sorted({str(s.client) for s in open_sessions}))}): instances "
                    "that booted two rotations ago still run; finish the last instance refresh "
                    "first, or its instances could not open new connections")
        if problems:
            raise RotationError(f"{role.secret_name} is not moved to login {target}: "
                                + "; ".join(problems) + " (nothing was changed)")
        audit = pgaudit.role_audit_classes(conn, current)
        if audit != pgaudit.role_audit_classes(conn, target):
            conn.execute(pgaudit.role_audit_statement(target, audit))


def switch_refusals(conn: psycopg.Connection[Any], role: LoginRole, current: str,
                    target: str) -> list[str]:
    """:func:`switch_problems` as they would be once both logins and their group exist as
    roles.py specifies (the migration made in a transaction that is rolled back): nothing
    is changed."""
    with conn.transaction(force_rollback=True):
        for change in role_statements(role, database=str(conn.info.dbname),
                                      owner=table_owner(conn)):
            conn.execute(sql.Composed([change.statement]))
        return switch_problems(conn, role, current, target)


def _breach_login(credential: Credential, current: str, target: str,
                  admin: AdminConnect) -> str:
    """The login a breach moves the app to: ``target``, unless the logins could differ
    (:func:`switch_problems`, read in a transaction rolled back, the clone made first when
    missing): then ``current``, rotated in place. Containment comes first; the scheduled
    rotation refuses instead (:func:`_prepare_switch`)."""
    assert credential.alternating is not None
    with admin() as conn:
        problems = switch_refusals(conn, credential.alternating, current, target)
    if not problems:
        return target
    log.warning("%s: the app stays on login %s, its password rotated in place, because %s "
                "could differ from it: %s", credential.secret_id, current, target,
                "; ".join(problems))
    return current


def _next_login(credential: Credential, current: SecretVersion) -> str:
    if credential.alternating is None:
        return current.username
    try:
        return credential.alternating.other_login(current.username)
    except ValueError as exc:
        raise RotationError(f"{credential.secret_id} names user {current.username}, not one "
                            f"of {', '.join(credential.logins)}") from exc


def _retire(credential: Credential, new: SecretVersion, old: SecretVersion | None,
            endpoint: Endpoint, admin: AdminConnect) -> None:
    """A breach: the login the secret named before gets a random password stored nowhere (the
    other login already has a new one), so no earlier password of this secret logs in."""
    if old is None or old.username == new.username:
        return
    if login_refused(endpoint, old.username, old.password):
        return
    with admin() as conn:
        _set_password(conn, old.username, new_password())
    log.info("%s: its previous password is refused now (a new one, stored nowhere)",
             old.username)


def master_connection(store: SecretStore, secret_id: str, endpoint: Endpoint
                      ) -> tuple[psycopg.Connection[Any], str]:
    """The master user logged in with whichever of its secret's versions works now: current,
    then pending (a rotation of the master that set the password but had not finished), then
    previous (finished but a replica region still serves the older copy), then every
    version without a label (a run that set the password and died before finishing, whose
    pending version a later run with another token replaced: Secrets Manager keeps it,
    deprecated). Returns the connection and the stage that worked ("deprecated <version id>"
    for the last); :class:`RotationError` when none does."""
    tried = []
    for stage in (CURRENT, PENDING, PREVIOUS):
        version = store.version(secret_id, stage)
        if version is None:
            continue
        try:
            return connect(endpoint, version.username, version.password), stage
        except LoginRefusedError as exc:
            tried.append(f"{stage}: {exc}")
    for version in store.older_versions(secret_id, keep=(CURRENT, PENDING, PREVIOUS)):
        try:
            conn = connect(endpoint, version.username, version.password)
        except LoginRefusedError as exc:
            tried.append(f"deprecated {version.version_id[:8]}: {exc}")
            continue
        log.warning("%s: the master user logs in only with version %s, which has no label "
                    "(an unfinished rotation's); the rotation moves it on", secret_id,
                    version.version_id)
        return conn, f"deprecated {version.version_id}"
    raise RotationError(f"no version of {secret_id} logs in to {endpoint} as the master user "
                        f"({'; '.join(tried) or 'the secret has no versions'})")


def rotate(store: SecretStore, credential: Credential, token: str, endpoint: Endpoint,
           admin: AdminConnect, *, retire_previous: bool = True) -> RotationResult:
    """Rotate one credential (the module docstring's five steps); idempotent for one token.

    ``admin`` opens a connection that may ALTER the role (the master user's); for the master
    credential itself the role alters its own password over a connection logged in as itself.
    ``retire_previous``: every earlier password refused (a breach); False keeps an alternating
    credential's previous login valid (the scheduled rotation; a single login's old password
    is refused either way). Raises :class:`RotationError` (or AWS/psycopg errors) naming the
    step that failed.
    """
    current = store.version(credential.secret_id, CURRENT)
    if current is None:
        raise RotationError(f"{credential.secret_id} has no AWSCURRENT version")
    if current.version_id == token:
        # Finished by an earlier attempt of this run: retiring and verifying may be left.
        previous = store.version(credential.secret_id, PREVIOUS)
        if retire_previous:
            _retire(credential, current, previous, endpoint, admin)
        return _verified(credential, token, current, previous, endpoint,
                     retire_previous=retire_previous)
    pending = store.version(credential.secret_id, PENDING)
    if pending is None or pending.version_id != token:
        login = _next_login(credential, current)
        if retire_previous and login != current.username:
            login = _breach_login(credential, current.username, login, admin)
        value = {**current.value, "username": login, "password": new_password()}
        store.put_pending(credential.secret_id, token, value)      # 1. create
        pending = store.version(credential.secret_id, PENDING)
        if pending is None or pending.version_id != token:
            raise RotationError(f"{credential.secret_id}: the pending version {token} was "
                                "not stored")
    if login_refused(endpoint, pending.username, pending.password):
        with admin() as conn:                                       # 2. set
            if credential.alternating is not None and pending.username != current.username:
                _prepare_switch(conn, credential.alternating, current.username,
                                pending.username, pending.password,
                                check_sessions=not retire_previous)
            else:
                _set_password(conn, pending.username, pending.password)
        log.info("%s: the new password is set in the database", pending.username)
    if login_refused(endpoint, pending.username, pending.password):   # 3. test
        raise RotationError(f"{pending.username}: the new password was set but does not log "
                            f"in to {endpoint}")
    store.make_current(credential.secret_id, token)                 # 4. finish
    if retire_previous:
        _retire(credential, pending, current, endpoint, admin)
    return _verified(credential, token, pending, current, endpoint,
                     retire_previous=retire_previous)


def _verified(credential: Credential, token: str, new: SecretVersion,
              old: SecretVersion | None, endpoint: Endpoint, *,
              retire_previous: bool = True) -> RotationResult:
    works = not login_refused(endpoint, new.username, new.password)   # 5. verify
    refused = None if old is None or old.password == new.password else login_refused(
        endpoint, old.username, old.password)
    must_work = (not retire_previous and old is not None and old.username != new.username)
    if must_work:
        what = (f"the previous login {old.username if old else ''} still logs in until the "
                "app is refreshed" if refused is False else
                f"THE PREVIOUS LOGIN {old.username if old else ''} IS REFUSED: instances not "
                "yet refreshed cannot open connections")
    else:
        what = ("the old password is refused" if refused else
                "THE OLD PASSWORD STILL LOGS IN" if refused is False else
                "there was no old one")
    return RotationResult(
        role=credential.role, secret_id=credential.secret_id, version_id=token,
        old_version_id=old.version_id if old else None, new_password_works=works,
        old_password_refused=refused, old_must_work=must_work, login=new.username,
        sentence=f"{credential.role}: rotated ({credential.secret_id} version {token[:8]} is "
                 f"AWSCURRENT, login {new.username}), the new password logs in, {what}")
