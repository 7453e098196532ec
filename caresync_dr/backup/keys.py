"""Where the AES-256 key comes from: a fresh KMS data key per backup, or a local key file.

With KMS only the *encrypted* data key is stored (in the file header and the manifest); restoring
asks KMS to decrypt it, so access to backups is governed by the KMS key policy and audited in
CloudTrail. A key file is for local use and tests: 32 raw bytes or 64 hex characters.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.backup.crypto import KEY_SIZE, Header
from caresync_dr.backup.errors import IntegrityError, KeyUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

log = logging.getLogger(__name__)
KEY_FILE_ENV = "CARESYNC_BACKUP_KEY_FILE"


@dataclass(frozen=True)
class DataKey:
    """A plaintext key for this process only, and what is recorded about it (never the key)."""

    plaintext: bytes
    info: dict[str, Any]


def read_key_file(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise KeyUnavailableError(f"key file {path} does not exist") from None
    except OSError as exc:
        raise KeyUnavailableError(f"key file {path} cannot be read: {exc.strerror}") from None
    if len(raw) == KEY_SIZE:
        key = raw
    else:
        try:
            key = bytes.fromhex(raw.decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            key = b""
        if len(key) != KEY_SIZE:
            raise KeyUnavailableError(
                f"key file {path} must hold {KEY_SIZE} raw bytes or {2 * KEY_SIZE} hex characters")
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("key file %s is readable by group or others; chmod 600 it", path)
    return key


def file_key_id(key: bytes) -> str:
    """Names a key without revealing it: lets a restore say "wrong key" precisely."""
    return "file:sha256:" + hashlib.sha256(b"caresync-dr key id" + key).hexdigest()[:16]


def key_from_file(path: Path) -> DataKey:
    key = read_key_file(path)
    return DataKey(plaintext=key, info={"source": "file", "key_id": file_key_id(key)})


def generate_key_file(path: Path) -> None:
    """Create a new random key file, mode 600; refuses to overwrite an existing one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(os.urandom(KEY_SIZE).hex() + "\n")


def key_from_kms(kms: KMSClient, key_id: str, region: str) -> DataKey:
    try:
        answer = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    except (ClientError, BotoCoreError) as exc:
        raise KeyUnavailableError(f"KMS GenerateDataKey with {key_id} failed: {exc}") from exc
    return DataKey(plaintext=answer["Plaintext"], info={
        "source": "kms", "key_id": answer["KeyId"], "region": region,
        "encrypted_data_key": base64.b64encode(answer["CiphertextBlob"]).decode(),
    })


def no_kms(region: str) -> KMSClient:
    """For local-only use: a KMS-encrypted backup then fails with a clear message."""
    raise KeyUnavailableError(f"this backup's data key is in KMS ({region}); "
                              "run with AWS credentials for that region")


def resolver(key_file: Path | None,
             kms_for_region: Callable[[str], KMSClient]) -> Callable[[Header], bytes]:
    """The master key for a backup header: the key file, or KMS decrypting the stored data key."""
    def master_key_for(header: Header) -> bytes:
        source = header.key.get("source")
        if source == "file":
            path = key_file or (Path(os.environ[KEY_FILE_ENV]) if KEY_FILE_ENV in os.environ
                                else None)
            if path is None:
                raise KeyUnavailableError(
                    f"this backup was encrypted with a key file ({header.key.get('key_id')}); "
                    f"pass --key-file or set {KEY_FILE_ENV}")
            key = read_key_file(path)
            if file_key_id(key) != header.key.get("key_id"):
                raise IntegrityError(
                    f"wrong key: {path} is {file_key_id(key)}, the backup was encrypted with "
                    f"{header.key.get('key_id')}")
            return key
        if source == "kms":
            blob = base64.b64decode(str(header.key.get("encrypted_data_key", "")))
            region = str(header.key.get("region", ""))
            try:
                answer = kms_for_region(region).decrypt(
                    CiphertextBlob=blob, KeyId=str(header.key.get("key_id")))
            except (ClientError, BotoCoreError) as exc:
                raise KeyUnavailableError(
                    f"KMS could not decrypt the backup's data key ({header.key.get('key_id')} in "
                    f"{region}): {exc}") from exc
            return answer["Plaintext"]
        raise KeyUnavailableError(f"backup header names an unknown key source {source!r}")
    return master_key_for
