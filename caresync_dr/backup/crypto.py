"""Streaming authenticated encryption: AES-256-GCM in fixed-size chunks.

File layout::

    MAGIC (8 bytes) | header length (u32 BE) | header (canonical JSON)
    record*: final flag (1 byte) | ciphertext length (u32 BE) | ciphertext (chunk + 16-byte tag)

The header carries its own SHA-256 (``header_sha256``, over the canonical JSON of the other
fields), so a changed byte in the salt, the key reference or the key check is reported as a
corrupt header, not as a wrong key; the key check then tells a wrong key apart. ``meta`` (the
backup's name and start time) is bound to the data the same way as everything in the header.

Each file gets a random salt; the chunk key is HKDF-SHA256(master key, salt), so nonces (the
chunk index) never repeat under one key even when a key file encrypts many backups. Every chunk's
associated data binds the header hash, the chunk index and the final flag: a reordered, dropped,
truncated or extended file fails authentication instead of decrypting to something else. Memory
use is one chunk, whatever the file size.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from caresync_dr.backup.errors import IntegrityError, KeyUnavailableError

MAGIC = b"CSDRBAK1"
CIPHER = "AES-256-GCM"
DEFAULT_CHUNK_SIZE = 1 << 20  # 1 MiB: large enough for full speed, small enough for flat memory
MAX_CHUNK_SIZE = 64 << 20
TAG_SIZE = 16
KEY_SIZE = 32
_RECORD = struct.Struct(">BI")
_HKDF_INFO = b"caresync-dr backup chunk key v1"


def _chunk_key(master: bytes, salt: bytes) -> bytes:
    if len(master) != KEY_SIZE:
        raise KeyUnavailableError(f"an AES-256 key is {KEY_SIZE} bytes, this one is {len(master)}")
    return HKDF(algorithm=hashes.SHA256(), length=KEY_SIZE, salt=salt,
                info=_HKDF_INFO).derive(master)


def _key_check(chunk_key: bytes) -> str:
    """A value that tells "wrong key" apart from "corrupted chunk" before any data is read."""
    return hmac.new(chunk_key, b"key-check", hashlib.sha256).hexdigest()[:32]


def _canonical(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def _header_sha256(fields: dict[str, Any]) -> str:
    return hashlib.sha256(_canonical({k: v for k, v in fields.items()
                                      if k != "header_sha256"})).hexdigest()


def _aad(header_hash: bytes, index: int, final: bool) -> bytes:
    return header_hash + struct.pack(">QB", index, 1 if final else 0)


def _nonce(index: int) -> bytes:
    return b"\0\0\0\0" + struct.pack(">Q", index)


class Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


@dataclass(frozen=True)
class Header:
    """What a reader needs before decrypting: the key reference and the chunking."""

    key: dict[str, Any]
    chunk_size: int
    salt: bytes
    key_check: str
    compression: str
    raw: bytes
    meta: dict[str, Any] = field(default_factory=dict)
    self_checked: bool = False  # the header carried (and matched) its own checksum

    @property
    def digest(self) -> bytes:
        return hashlib.sha256(self.raw).digest()

    @property
    def key_label(self) -> str:
        """The key's name for messages: a key file's id, or the KMS key ARNs of the wraps."""
        if "key_id" in self.key:
            return str(self.key["key_id"])
        wraps = self.key.get("wraps")
        if isinstance(wraps, list):
            return " or ".join(str(w.get("key_arn", "?")) for w in wraps if isinstance(w, dict))
        return "?"


class EncryptingWriter:
    """A file-like sink: ``write`` plaintext, ``close`` to seal the final chunk."""

    def __init__(self, out: Writable, master_key: bytes, key_info: dict[str, Any], *,
                 compression: str = "none", chunk_size: int = DEFAULT_CHUNK_SIZE,
                 meta: dict[str, Any] | None = None) -> None:
        if not 0 < chunk_size <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk size must be 1..{MAX_CHUNK_SIZE} bytes")
        salt = os.urandom(32)
        key = _chunk_key(master_key, salt)
        header: dict[str, Any] = {
            "version": 1, "cipher": CIPHER, "chunk_size": chunk_size, "salt": salt.hex(),
            "key": key_info, "key_check": _key_check(key), "compression": compression,
        }
        if meta:
            header["meta"] = meta
        header["header_sha256"] = _header_sha256(header)
        raw = _canonical(header)
        out.write(MAGIC + struct.pack(">I", len(raw)) + raw)
        self._out = out
        self.offset = len(MAGIC) + 4 + len(raw)  # where the next chunk's record starts
        self._aead = AESGCM(key)
        self._header_hash = hashlib.sha256(raw).digest()
        self._chunk_size = chunk_size
        self._buffer = bytearray()
        self._index = 0
        self._closed = False
        self.plaintext_bytes = 0

    def write(self, data: bytes) -> int:
        if self._closed:
            raise ValueError("write to a closed EncryptingWriter")
        self._buffer += data
        self.plaintext_bytes += len(data)
        while len(self._buffer) > self._chunk_size:
            # Strictly more than a chunk buffered: this chunk is certainly not the final one.
            chunk = bytes(self._buffer[:self._chunk_size])
            del self._buffer[:self._chunk_size]
            self._emit(chunk, final=False)
        return len(data)

    def _emit(self, chunk: bytes, final: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._index), chunk,
                                    _aad(self._header_hash, self._index, final))
        self._out.write(_RECORD.pack(1 if final else 0, len(sealed)) + sealed)
        self.offset += _RECORD.size + len(sealed)
        self._index += 1

    def boundary(self) -> tuple[int, int]:
        """End the current chunk here (a shorter, non-final one) so that what is written next
        starts a chunk of its own: (its index, its record's offset in the file). A reader can
        then decrypt from there without reading what came before (:func:`decrypt_stream`'s
        ``start``)."""
        if self._closed:
            raise ValueError("boundary of a closed EncryptingWriter")
        if self._buffer:
            self._emit(bytes(self._buffer), final=False)
            self._buffer.clear()
        return self._index, self.offset

    def close(self) -> None:
        """Write the last chunk (possibly empty) with the final flag; the file is then complete."""
        if not self._closed:
            self._emit(bytes(self._buffer), final=True)
            self._buffer.clear()
            self._closed = True


def _read_exact(inp: BinaryIO, size: int, what: str) -> bytes:
    data = inp.read(size)
    if len(data) != size:
        raise IntegrityError(f"backup is truncated: {what} ends after {len(data)} of {size} bytes")
    return data


def read_header(inp: BinaryIO) -> Header:
    magic = inp.read(len(MAGIC))
    if magic != MAGIC:
        raise IntegrityError("not a caresync-dr encrypted backup (bad magic bytes); "
                             "a plain pg_dump .sql.gz is restored without a manifest")
    (length,) = struct.unpack(">I", _read_exact(inp, 4, "the header length"))
    if length > 1 << 20:
        raise IntegrityError(f"backup header claims {length} bytes: corrupt")
    raw = _read_exact(inp, length, "the header")
    try:
        fields = json.loads(raw)
        if not isinstance(fields, dict):
            raise TypeError("not a JSON object")
        if "header_sha256" in fields and fields["header_sha256"] != _header_sha256(fields):
            raise IntegrityError("backup header is corrupt: it does not match its own checksum "
                                 "(a changed salt, key reference or key check); this is damage "
                                 "to the file, not a wrong key")
        header = Header(key=dict(fields["key"]), chunk_size=int(fields["chunk_size"]),
                        salt=bytes.fromhex(fields["salt"]), key_check=str(fields["key_check"]),
                        compression=str(fields.get("compression", "none")), raw=raw,
                        meta=dict(fields.get("meta") or {}),
                        self_checked="header_sha256" in fields)
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise IntegrityError(f"backup header is corrupt: {exc}") from exc
    if fields.get("cipher") != CIPHER or not 0 < header.chunk_size <= MAX_CHUNK_SIZE:
        raise IntegrityError(f"backup header is corrupt or from an unknown version: {fields!r}")
    return header


def decrypt_stream(inp: BinaryIO, master_key_for: Callable[[Header], bytes], *,
                   start: tuple[int, int] | None = None,
                   stop: int | None = None) -> Iterator[bytes]:
    """Yield authenticated plaintext chunks; raise :class:`IntegrityError` on any tampering.

    A caller must consume the whole iterator before trusting the data: truncation is only
    detectable at the end. ``start`` = (chunk index, file offset) begins at a chunk that
    :meth:`EncryptingWriter.boundary` started (a wrong pair fails authentication: the index is
    the nonce); ``stop`` ends before that chunk index, which must then not be the final one.
    """
    header = read_header(inp)
    key = _chunk_key(master_key_for(header), header.salt)
    if not hmac.compare_digest(_key_check(key), header.key_check):
        raise IntegrityError(
            f"wrong key: this backup was encrypted with {header.key_label} "
            f"({header.key.get('source', '?')}) and the key given does not match it" +
            ("" if header.self_checked else
             " (or its header is damaged: backups from before header checksums cannot tell)"))
    aead = AESGCM(key)
    limit = header.chunk_size + TAG_SIZE
    index = 0
    if start is not None:
        index, offset = start
        inp.seek(offset)
    while True:
        if stop is not None and index >= stop:
            return
        prefix = inp.read(_RECORD.size)
        if not prefix:
            raise IntegrityError(f"backup is truncated: it ends after chunk {index} "
                                 "without the final chunk")
        if len(prefix) != _RECORD.size:
            raise IntegrityError(f"backup is truncated inside the record header of chunk {index}")
        flag, length = _RECORD.unpack(prefix)
        if flag not in (0, 1) or not TAG_SIZE <= length <= limit:
            raise IntegrityError(f"backup is corrupt: chunk {index} has an invalid record header")
        sealed = _read_exact(inp, length, f"chunk {index}")
        try:
            plain = aead.decrypt(_nonce(index), sealed, _aad(header.digest, index, flag == 1))
        except InvalidTag:
            raise IntegrityError(f"backup is corrupt: chunk {index} fails authentication "
                                 "(modified, reordered or truncated data)") from None
        yield plain
        index += 1
        if flag == 1:
            if inp.read(1):
                raise IntegrityError("backup is corrupt: data follows the final chunk")
            return
