"""The manifest beside each backup: what it holds and how to check it."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from caresync_dr.backup.dbstate import DatabaseState
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
        """Parse and type-check a manifest: the file is not authenticated (only its name and
        start time are, by the encrypted header), so every field is checked for the shape the
        restore relies on and anything else is :class:`IntegrityError` (corrupt), never a crash
        half-way through a restore."""
        try:
            data = json.loads(text)
            manifest = cls(**_checked_fields(data))
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            raise IntegrityError(f"{source} is not a valid backup manifest: {exc}") from None
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
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BackupNotFoundError(f"manifest {path} does not exist; an encrypted backup cannot "
                                  "be verified without it") from None
    except UnicodeDecodeError:
        raise IntegrityError(f"{path} is not a valid backup manifest: not UTF-8 text") from None
    return Manifest.from_json(text, str(path))


_TEXT_FIELDS = ("name", "database", "data_file", "sha256", "server_version", "pg_dump_version",
                "started_at", "finished_at", "format", "compression", "fingerprint_method")
_COUNT_FIELDS = ("size_bytes", "dump_bytes")
_SEGMENT_KEYS = ("dump_id", "archive_offset", "chunk", "offset")


def _count(value: object, what: str) -> int:
    """A JSON whole number >= 0 (``true`` is not a count)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} is {value!r}, not a whole number >= 0")
    return value


def _checked_fields(data: object) -> dict[str, Any]:
    """The manifest's fields, each of the type :class:`Manifest` declares (ValueError if not)."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    for name in _TEXT_FIELDS:
        if name in data and not isinstance(data[name], str):
            raise ValueError(f"{name} is {data[name]!r}, not text")
    for name in _COUNT_FIELDS:
        if name in data:
            _count(data[name], name)
    if not re.fullmatch(r"[0-9a-f]{64}", str(data.get("sha256", ""))):
        raise ValueError("sha256 is not 64 lowercase hex digits")
    if "started_at" in data:
        started = datetime.fromisoformat(data["started_at"])
        if started.tzinfo is None:
            raise ValueError(f"started_at {data['started_at']!r} has no time zone")
    if not isinstance(data.get("key"), dict):
        raise ValueError("key is not a JSON object")
    tables = data.get("tables", {})
    if not isinstance(tables, dict):
        raise ValueError("tables is not a JSON object")
    fields = dict(data)
    fields["tables"] = {}
    for table, entry in tables.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("fingerprint"), str):
            raise ValueError(f"table {table!r} has no fingerprint")
        fields["tables"][table] = TableFingerprint(
            rows=_count(entry.get("rows"), f"rows of {table}"), fingerprint=entry["fingerprint"])
    state = data.get("database_state")
    if state is not None:
        if not isinstance(state, dict):
            raise ValueError("database_state is not a JSON object")
        try:
            DatabaseState.from_json(state)
        except KeyError as exc:
            raise ValueError(f"database_state lacks {exc}") from None
    segments = data.get("segments", [])
    if not isinstance(segments, list) or not all(
            isinstance(seg, dict) and set(seg) == set(_SEGMENT_KEYS)
            and all(_count(seg[k], f"segment {k}") >= 0 for k in _SEGMENT_KEYS)
            for seg in segments):
        raise ValueError(f"segments must each be {{{', '.join(_SEGMENT_KEYS)}}} whole numbers")
    return fields
