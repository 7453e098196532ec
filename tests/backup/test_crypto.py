"""The chunked AES-256-GCM format: round trips, and every kind of tampering is caught."""

from __future__ import annotations

import io
import os
import struct

import pytest

from caresync_dr.backup.crypto import MAGIC, EncryptingWriter, Header, decrypt_stream
from caresync_dr.backup.errors import IntegrityError

KEY = bytes(range(32))
INFO = {"source": "file", "key_id": "file:sha256:test"}


def seal(data: bytes, chunk_size: int = 64, key: bytes = KEY, pieces: int = 7) -> bytes:
    out = io.BytesIO()
    writer = EncryptingWriter(out, key, INFO, chunk_size=chunk_size)
    step = max(1, len(data) // pieces)
    for start in range(0, len(data), step):
        writer.write(data[start:start + step])
    writer.close()
    return out.getvalue()


def unseal(blob: bytes, key: bytes = KEY) -> bytes:
    def key_for(_: Header) -> bytes:
        return key
    return b"".join(decrypt_stream(io.BytesIO(blob), key_for))


def records(blob: bytes) -> tuple[bytes, list[bytes]]:
    """Split a sealed file into its header and its records (flag + length + ciphertext)."""
    (hlen,) = struct.unpack(">I", blob[len(MAGIC):len(MAGIC) + 4])
    pos = len(MAGIC) + 4 + hlen
    head, recs = blob[:pos], []
    while pos < len(blob):
        (length,) = struct.unpack(">I", blob[pos + 1:pos + 5])
        recs.append(blob[pos:pos + 5 + length])
        pos += 5 + length
    return head, recs


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 640, 1000])
def test_round_trip_at_chunk_boundaries(size: int) -> None:
    data = os.urandom(size)
    assert unseal(seal(data)) == data


def test_ciphertext_hides_plaintext_and_differs_per_file() -> None:
    data = b"patient name: Jane Doe " * 20
    first, second = seal(data), seal(data)
    assert b"Jane Doe" not in first
    assert first != second  # fresh salt, so a fresh chunk key, per file


def test_memory_stays_one_chunk() -> None:
    out = io.BytesIO()
    writer = EncryptingWriter(out, KEY, INFO, chunk_size=64)
    for _ in range(100):
        writer.write(os.urandom(50))
        assert len(writer._buffer) <= 64
    writer.close()


def test_wrong_key_is_named() -> None:
    with pytest.raises(IntegrityError, match="wrong key"):
        unseal(seal(b"x" * 300), key=bytes(32))


def test_flipped_bit_fails_authentication() -> None:
    blob = bytearray(seal(os.urandom(300)))
    blob[-40] ^= 1
    with pytest.raises(IntegrityError, match="fails authentication"):
        unseal(bytes(blob))


def test_dropping_the_final_chunk_is_truncation() -> None:
    head, recs = records(seal(os.urandom(300)))
    assert len(recs) == 5
    with pytest.raises(IntegrityError, match="truncated"):
        unseal(head + b"".join(recs[:-1]))


def test_cut_inside_a_chunk_is_truncation() -> None:
    blob = seal(os.urandom(300))
    with pytest.raises(IntegrityError, match="truncated"):
        unseal(blob[:-10])


def test_reordered_chunks_fail() -> None:
    head, recs = records(seal(os.urandom(300)))
    with pytest.raises(IntegrityError, match="chunk 0 fails authentication"):
        unseal(head + recs[1] + recs[0] + b"".join(recs[2:]))


def test_marking_an_early_chunk_final_fails() -> None:
    """Truncating and setting the final flag on the last kept chunk is still detected."""
    head, recs = records(seal(os.urandom(300)))
    forged = b"\x01" + recs[1][1:]
    with pytest.raises(IntegrityError, match="chunk 1 fails authentication"):
        unseal(head + recs[0] + forged)


def test_data_after_the_final_chunk_fails() -> None:
    with pytest.raises(IntegrityError, match="data follows the final chunk"):
        unseal(seal(b"abc") + b"\x00")


def test_modified_header_fails() -> None:
    blob = seal(os.urandom(100))
    tampered = blob.replace(b'"compression":"none"', b'"compression":"nonf"')
    assert tampered != blob
    with pytest.raises(IntegrityError):
        unseal(tampered)


def test_not_a_backup() -> None:
    with pytest.raises(IntegrityError, match="bad magic"):
        unseal(b"\x1f\x8b plain gzip")


def _change_a_salt_digit(blob: bytes) -> bytes:
    start = blob.index(b'"salt":"') + len(b'"salt":"')
    digit = blob[start:start + 1]
    return blob[:start] + (b"1" if digit == b"0" else b"0") + blob[start + 1:]


def test_a_changed_salt_digit_is_corruption_not_a_wrong_key() -> None:
    """Issue 10 item 15: the key check depends on the salt, so a damaged salt looked exactly like
    a wrong key. The header's own checksum tells them apart."""
    blob = seal(os.urandom(300))
    with pytest.raises(IntegrityError, match="header is corrupt") as error:
        unseal(_change_a_salt_digit(blob))
    assert "wrong key:" not in str(error.value)
    with pytest.raises(IntegrityError, match=r"wrong key: .* does not match it$"):
        unseal(blob, key=bytes(32))  # and a wrong key is still called one, without hedging


def test_the_header_meta_is_bound_to_the_data() -> None:
    out = io.BytesIO()
    writer = EncryptingWriter(out, KEY, INFO, meta={"name": "backup_20260101_000000"})
    writer.write(b"data")
    writer.close()
    blob = out.getvalue()
    assert unseal(blob) == b"data"
    forged = blob.replace(b"backup_20260101_000000", b"backup_20260102_000000")
    with pytest.raises(IntegrityError, match="header is corrupt"):
        unseal(forged)
