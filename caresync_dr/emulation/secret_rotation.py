"""Secrets Manager rotation and replica promotion as AWS does them, where moto 5.2 cuts corners.

What real AWS does, and what moto does instead:

* ``GetSecretValue`` without a version or stage returns the version labelled ``AWSCURRENT``
  (Secrets Manager API reference, GetSecretValue, ``VersionStage``: "If you don't specify
  either a VersionStage or VersionId, Secrets Manager returns the AWSCURRENT version"). moto
  returns the version it remembered as the default, which ``UpdateSecretVersionStage`` does not
  move: after a rotation that finishes with UpdateSecretVersionStage (every rotation function's
  finishSecret), moto keeps serving the *old* password, in the primary region and in every
  replica. While armed, moving ``AWSCURRENT`` moves moto's default too.
* ``StopReplicationToReplica`` (API reference: "Removes the link between the replica secret
  and the primary secret and promotes the replica to a primary secret in the replica Region")
  is not implemented by moto. While armed, it is: the replica becomes a standalone secret in
  its region with the same ARN, versions, stages and replica key; the primary no longer lists
  that region; neither copy follows the other afterwards.

* ``ListSecretVersionIds`` leaves out versions without a staging label unless
  ``IncludeDeprecated`` is true (API reference, ListSecretVersionIds, ``IncludeDeprecated``:
  "By default, versions without staging labels aren't included"). moto lists every version.
  While armed, it filters as AWS does. (The rotation's verification asks with
  ``IncludeDeprecated``: an alternating secret's version before the previous one names the
  other login and must be refused too.)

Replicas of a primary secret already read the primary's versions in moto (they share them), so
a new version is visible in the replica's region at once; real AWS replicates within seconds.
"""

from __future__ import annotations

import copy
import json

from moto.secretsmanager.exceptions import InvalidParameterException
from moto.secretsmanager.models import (
    FakeSecret,
    ReplicaSecret,
    SecretsManagerBackend,
)
from moto.secretsmanager.responses import SecretsManagerResponse

_MOTO_UPDATE_STAGE = SecretsManagerBackend.update_secret_version_stage


def _update_secret_version_stage(self: SecretsManagerBackend, secret_id: str,
                                 version_stage: str, remove_from_version_id: str,
                                 move_to_version_id: str) -> tuple[str, str]:
    answer = _MOTO_UPDATE_STAGE(self, secret_id, version_stage, remove_from_version_id,
                                move_to_version_id)
    secret = self.secrets[secret_id]
    if version_stage == "AWSCURRENT" and move_to_version_id:
        target = secret.source if isinstance(secret, ReplicaSecret) else secret
        target.set_default_version_id(move_to_version_id)
    return answer


def _promote(backend: SecretsManagerBackend, secret_id: str) -> str:
    secret = backend.secrets[secret_id]
    if not isinstance(secret, ReplicaSecret):
        raise InvalidParameterException(
            "StopReplicationToReplica: the secret in this region is not a replica")
    source = secret.source
    standalone: FakeSecret = copy.copy(source)
    standalone.arn = secret.arn
    standalone.region = secret.region
    standalone.versions = copy.deepcopy(source.versions)
    standalone.replicas = []
    standalone.kms_key_id = secret.config.get("KmsKeyId") or source.kms_key_id
    source.replicas = [r for r in source.replicas if r is not secret]
    dict.pop(backend.secrets, secret.arn, None)
    backend.secrets[standalone.arn] = standalone
    return standalone.arn


def _stop_replication_to_replica(self: SecretsManagerResponse) -> str:
    arn = _promote(self.backend, self._get_param("SecretId"))
    return json.dumps({"ARN": arn})


_MOTO_LIST_VERSIONS = SecretsManagerResponse.list_secret_version_ids


def _list_secret_version_ids(self: SecretsManagerResponse) -> str:
    answer = json.loads(_MOTO_LIST_VERSIONS(self))
    if not self._get_param("IncludeDeprecated"):
        answer["Versions"] = [v for v in answer["Versions"] if v.get("VersionStages")]
    return json.dumps(answer)


class SecretRotationShim:
    """Arm while a test or drill needs real Secrets Manager rotation and promotion."""

    def __init__(self) -> None:
        self.armed = False

    def arm(self) -> SecretRotationShim:
        if not self.armed:
            SecretsManagerBackend.update_secret_version_stage = (  # type: ignore[method-assign]
                _update_secret_version_stage)
            SecretsManagerResponse.stop_replication_to_replica = (  # type: ignore[attr-defined]
                _stop_replication_to_replica)
            SecretsManagerResponse.list_secret_version_ids = (  # type: ignore[method-assign]
                _list_secret_version_ids)
            self.armed = True
        return self

    def disarm(self) -> None:
        if self.armed:
            SecretsManagerBackend.update_secret_version_stage = (  # type: ignore[method-assign]
                _MOTO_UPDATE_STAGE)
            del SecretsManagerResponse.stop_replication_to_replica  # type: ignore[attr-defined]
            SecretsManagerResponse.list_secret_version_ids = (  # type: ignore[method-assign]
                _MOTO_LIST_VERSIONS)
            self.armed = False

    def __enter__(self) -> SecretRotationShim:
        return self.arm()

    def __exit__(self, *exc: object) -> None:
        self.disarm()
