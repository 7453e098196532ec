"""Where the AES-256 key comes from: a fresh KMS data key per backup, or a local key file.

With KMS only the *encrypted* data key is stored (in the file header and the manifest), wrapped
under both sites' keys (``key_wraps``); restoring asks KMS to decrypt it, so access to backups is
governed by the KMS key policies and audited in CloudTrail. A key file is for local use and
tests: 32 raw bytes or 64 hex characters.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from caresync_dr.backup.crypto import KEY_SIZE, Header
from caresync_dr.backup.errors import IntegrityError, KeyUnavailableError
from caresync_dr.backup.key_wraps import SiteKey, new_data_key, unwrap

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

log = logging.getLogger(__name__)
KEY_FILE_ENV = "CARESYNC_BACKUP_KEY_FILE"


@dataclass(frozen=True)
class DataKey:
    """A plaintext key for this process only, and what is recorded about it (never the key).

    ``missing`` names the KMS keys that should have wrapped it and did not (region down)."""

    plaintext: bytes
    info: dict[str, Any]
    missing: tuple[str, ...] = field(default=())


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


def key_from_kms(keys: Sequence[SiteKey],
                 kms_for_region: Callable[[str], KMSClient]) -> DataKey:
    """A fresh data key from the first of ``keys`` that answers, wrapped under all of them."""
    wrapped = new_data_key(keys, kms_for_region)
    return DataKey(plaintext=wrapped.plaintext, info=wrapped.info, missing=wrapped.missing)


def no_kms(region: str) -> KMSClient:
    """For local-only use: a KMS-encrypted backup then fails with a clear message."""
    raise KeyUnavailableError(f"this backup's data key is in KMS ({region}); "
                              "run with AWS credentials for that region")


def resolver(key_file: Path | None, kms_for_region: Callable[[str], KMSClient],
             home_region: str | None = None) -> Callable[[Header], bytes]:
    """The master key for a backup header: the key file, or KMS decrypting a stored wrap of the
    data key (``home_region``'s first, then any other region that answers)."""
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
            return unwrap(header.key, kms_for_region, home_region)
        raise KeyUnavailableError(f"backup header names an unknown key source {source!r}")
    return master_key_for
