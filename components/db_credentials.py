"""The database credentials (decision D1), created by the prod stack in the primary region.

Two self-managed Secrets Manager secrets, ``caresync/db/master`` (the RDS master user) and
``caresync/db/app`` (the app's login role ``caresync_app``), encrypted with the primary site key
and replicated by Secrets Manager into the standby region with the *standby* site key, so the
standby app authenticates with nothing from the primary region. Not the RDS-managed master
secret: RDS refuses read replicas of a source whose password it manages in Secrets Manager.

Passwords are generated once (``pulumi_random.RandomPassword``); the secret versions ignore
later changes of their value (``ignore_changes``), so a rotation is never rolled back by
``pulumi up``. The replica needs the standby key, which only exists after ``pulumi up -s dr``:
bootstrap step 1 creates the secrets unreplicated and step 3 adds the replicas (an in-place
``ReplicateSecretToRegions``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from caresync_dr.db.roles import APP_ROLE
from caresync_dr.db.secrets import (
    APP_SECRET_NAME,
    MASTER_SECRET_NAME,
    PASSWORD_LENGTH,
    PASSWORD_SPECIALS,
    secret_value,
)


@dataclass(frozen=True)
class SecretReplica:
    """Where Secrets Manager keeps a read-only copy: the standby region, with its site key."""

    region: str
    kms_key_arn: str


@dataclass(frozen=True)
class DatabaseCredentialsArgs:
    site: str
    kms_key_arn: pulumi.Input[str]
    master_username: str
    db_name: str
    replica: SecretReplica | None  # None until the dr stack has published its key (step 3)


class DatabaseCredentials(pulumi.ComponentResource):
    master_password: pulumi.Output[str]
    master_secret: aws.secretsmanager.Secret
    app_secret: aws.secretsmanager.Secret

    def __init__(self, name: str, args: DatabaseCredentialsArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:DatabaseCredentials", name, None, opts)
        self.master_secret, self.master_password = self._secret(
            f"{name}-master", MASTER_SECRET_NAME, args.master_username,
            "CareSync RDS master user (run the role SQL as this user)", args)
        self.app_secret, _ = self._secret(
            f"{name}-app", APP_SECRET_NAME, APP_ROLE.name,
            f"CareSync app login role {APP_ROLE.name}", args)
        self.register_outputs({"masterSecretArn": self.master_secret.arn,
                               "appSecretArn": self.app_secret.arn})

    def _secret(self, logical: str, secret_name: str, username: str, description: str,
                args: DatabaseCredentialsArgs) -> tuple[aws.secretsmanager.Secret,
                                                        pulumi.Output[str]]:
        child = pulumi.ResourceOptions(parent=self)
        password = random.RandomPassword(
            f"{logical}-password", length=PASSWORD_LENGTH, special=True,
            override_special=PASSWORD_SPECIALS, min_lower=1, min_upper=1, min_numeric=1,
            min_special=1, opts=child)
        replicas = None if args.replica is None else [aws.secretsmanager.SecretReplicaArgs(
            region=args.replica.region, kms_key_id=args.replica.kms_key_arn)]
        secret = aws.secretsmanager.Secret(
            f"{logical}-secret", name=secret_name, description=description,
            kms_key_id=args.kms_key_arn, recovery_window_in_days=30, replicas=replicas,
            tags={"caresync:site": args.site}, opts=child)
        aws.secretsmanager.SecretVersion(
            f"{logical}-secret-value", secret_id=secret.id,
            secret_string=password.result.apply(
                lambda p: secret_value(username, p, args.db_name)),
            # A rotation writes a new version; pulumi up must not put the first one back.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["secretString"]))
        return secret, password.result
