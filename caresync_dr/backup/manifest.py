"""The manifest beside each backup: what it holds and how to check it."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from caresync_dr.backup.errors import BackupNotFoundError, IntegrityError
from caresync_dr.backup.verify import TableFingerprint
from caresync_dr.cli.reporting import write_text_atomic

NAME_FORMAT = "backup_%Y%m%d_%H%M%S"
NAME_RE = re.compile(r"^backup_(\d{8}_\d{6})")
DATA_SUFFIX = ".dump.enc"          # pg_dump custom format, zstd-compressed, AES-256-GCM chunks
MANIFEST_SUFFIX = ".manifest.json"
FORMAT = "pg_dump-custom+zstd+aes-256-gcm-chunked/v1"
FINGERPRINT_V1 = "server-md5-sum/v1"


def backup_name(when: datetime) -> str:
    return when.astimezone(UTC).strftime(NAME_FORMAT)


def name_time(name: str) -> datetime | None:
    """The UTC time in a backup's name, or None if the name is not a backup's."""
    match = NAME_RE.match(name)
    if not match:
        return None
    return datetime.strptime(match.group(1), "%Y%m%d_%H%M%S").replace(tzinfo=UTC)


@dataclass
class Manifest:
    name: str
    database: str
    data_file: str
    sha256: str
    size_bytes: int
    dump_bytes: int
    server_version: str
    pg_dump_version: str
    started_at: str
    finished_at: str
    key: dict[str, Any]
    tables: dict[str, TableFingerprint] = field(default_factory=dict)
    format: str = FORMAT
    compression: str = "zstd"
    # How ``tables`` was computed: v1, md5 of every row read by the server in the dump's
    # snapshot (verified by reading the restored tables again); v2, the rows and SHA-256 of the
    # COPY text pg_dump wrote (verified as the data streams into the server, archive.py).
    fingerprint_method: str = FINGERPRINT_V1
    # The database's own state (dbstate.DatabaseState), read in the dump's snapshot; None in
    # backups from before it was recorded (restored with the server's defaults, unverified).
    database_state: dict[str, Any] | None = None
    # Where each pg_dump data block starts in the encrypted file: its own zstd frame from its
    # own chunk (create._Framer), so tables can be restored in parallel. Empty in older backups.
    segments: list[dict[str, int]] = field(default_factory=list)

    def to_json(self) -> str:
        data = asdict(self)
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "manifest") -> Manifest:
        try:
            data = json.loads(text)
            data["tables"] = {name: TableFingerprint(rows=int(t["rows"]),
                                                     fingerprint=str(t["fingerprint"]))
                              for name, t in data.get("tables", {}).items()}
            manifest = cls(**data)
        except (ValueError, TypeError, KeyError) as exc:
            raise IntegrityError(f"{source} is not a valid backup manifest: {exc}") from exc
        if manifest.format != FORMAT:
            raise IntegrityError(f"{source} has unknown format {manifest.format!r}")
        return manifest

    def write(self, directory: Path) -> Path:
        """Write ``<name>.manifest.json`` atomically, mode 0600."""
        path = directory / f"{self.name}{MANIFEST_SUFFIX}"
        write_text_atomic(path, self.to_json())
        return path


def read_manifest(path: Path) -> Manifest:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BackupNotFoundError(f"manifest {path} does not exist; an encrypted backup cannot "
                                  "be verified without it") from None
    return Manifest.from_json(text, str(path))
