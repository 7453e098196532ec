"""rollback.sh on a real PostgreSQL 15: exact round trips, and bad backups change nothing."""

from __future__ import annotations

import gzip
import os
import re
import subprocess
from pathlib import Path

import psycopg
import pytest

from caresync_dr.commands import rollback as restore_script
from caresync_dr.pg.cluster import PostgresCluster
from tests.backup.helpers import backup, state

pytestmark = pytest.mark.postgres
ROOT = Path(__file__).resolve().parents[2]


def databases(server: PostgresCluster, prefix: str) -> set[str]:
    return set(server.psql(
        f"SELECT datname FROM pg_database WHERE datname LIKE '{prefix}%'").split())


def data_only_dump(server: PostgresCluster, url: str) -> str:
    """An independent byte-level view of all table data (pg_dump's plain COPY output)."""
    out = subprocess.run([server.tool("pg_dump"), "--data-only", "--no-comments", "-d", url],
                         check=True, capture_output=True, text=True).stdout
    # pg_dump 15.14+ brackets its output with a random \restrict key; the data is what counts
    return "\n".join(line for line in out.splitlines()
                     if not line.startswith(("\\restrict", "\\unrestrict")))


def test_round_trip_restores_identical_content_and_keeps_the_old_database(
        pg_server: PostgresCluster, live_db: str, key_file: Path, tmp_path: Path) -> None:
    manifest, data = backup(live_db, tmp_path / "b", key_file)
    before, dump_before = state(live_db), data_only_dump(pg_server, live_db)
    assert {n: t.rows for n, t in manifest.tables.items()} == {
        "billing.Invoices": 50, "public.appointments": 600, "public.clinical_notes": 400,
        "public.patients": 300}
    assert manifest.tables == before
    live = live_db.rsplit("/", 1)[1]
    with psycopg.connect(live_db, autocommit=True) as conn:  # damage after the backup
        conn.execute("DELETE FROM clinical_notes; UPDATE patients SET name = 'x'")
    assert state(live_db) != before

    code = restore_script.main([str(data), "--database-url", live_db,
                                "--key-file", str(key_file), "--report",
                                str(tmp_path / "r.json")])

    assert code == 0
    assert state(live_db) == before
    assert data_only_dump(pg_server, live_db) == dump_before
    olds = databases(pg_server, f"{live}_old_")
    assert len(olds) == 1  # the damaged one, kept for the operator
    assert pg_server.psql("SELECT count(*) FROM clinical_notes", olds.pop()) == "0"
    assert databases(pg_server, f"{live}_restore_") == set()


def test_seed_invocation_runs_without_prompts(pg_server: PostgresCluster, live_db: str,
                                              key_file: Path, tmp_path: Path) -> None:
    _, data = backup(live_db, tmp_path / "b", key_file)
    env = dict(os.environ, DATABASE_URL=live_db, CARESYNC_BACKUP_KEY_FILE=str(key_file))
    result = subprocess.run([str(ROOT / "scripts" / "rollback.sh"), str(data)], env=env,
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "match the manifest" in result.stdout
    assert "kept as" in result.stdout


def test_plain_sql_gz_from_the_seed_is_accepted(pg_server: PostgresCluster, live_db: str,
                                                tmp_path: Path) -> None:
    before = state(live_db)
    seed_file = tmp_path / "backup_20260101_000000.sql.gz"
    plain = subprocess.run([pg_server.tool("pg_dump"), "-d", live_db], check=True,
                           capture_output=True).stdout
    seed_file.write_bytes(gzip.compress(plain))  # the seed's `pg_dump | gzip`
    pg_server.psql("DELETE FROM clinical_notes", live_db.rsplit("/", 1)[1])

    code = restore_script.main([str(seed_file), "--database-url", live_db])

    assert code == 0
    assert state(live_db) == before


def corrupt(path: Path) -> None:
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def truncate_consistently(path: Path) -> None:
    """Truncate and fix the manifest's size and checksum: only the encryption can notice."""
    import hashlib
    import json
    truncate(path)
    manifest = Path(str(path).replace(".dump.enc", ".manifest.json"))
    fields = json.loads(manifest.read_text())
    fields.update(size_bytes=path.stat().st_size,
                  sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    manifest.write_text(json.dumps(fields))


def change_salt_consistently(path: Path) -> None:
    """A changed digit in the header's salt, checksum fixed up: must read as corruption."""
    import hashlib
    import json
    blob = path.read_bytes()
    at = blob.index(b'"salt":"') + len(b'"salt":"')
    path.write_bytes(blob[:at] + (b"1" if blob[at:at + 1] == b"0" else b"0") + blob[at + 1:])
    manifest = Path(str(path).replace(".dump.enc", ".manifest.json"))
    fields = json.loads(manifest.read_text())
    fields.update(sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    manifest.write_text(json.dumps(fields))


def tamper_segments(path: Path) -> None:
    """Point two tables' segments at each other's chunks: chunk indexes are the nonces."""
    import json
    manifest = Path(str(path).replace(".dump.enc", ".manifest.json"))
    fields = json.loads(manifest.read_text())
    first, second = fields["segments"][0], fields["segments"][1]
    first["offset"], second["offset"] = second["offset"], first["offset"]
    manifest.write_text(json.dumps(fields))


def tamper_checksum(path: Path) -> None:
    """Only the manifest's SHA-256 differs: every chunk still decrypts and the whole load
    succeeds, and the restore still must not be used (the checksum is verified while the data
    loads, and before anything is swapped in)."""
    import json
    manifest = Path(str(path).replace(".dump.enc", ".manifest.json"))
    fields = json.loads(manifest.read_text())
    fields["sha256"] = ("0" if fields["sha256"][0] != "0" else "1") + fields["sha256"][1:]
    manifest.write_text(json.dumps(fields))


def tamper_fingerprint(path: Path) -> None:
    """The manifest no longer matches the data: the restored copy must fail verification."""
    import json
    manifest = Path(str(path).replace(".dump.enc", ".manifest.json"))
    fields = json.loads(manifest.read_text())
    fields["tables"]["public.patients"]["fingerprint"] = "0" * 32
    manifest.write_text(json.dumps(fields))


@pytest.mark.parametrize(("damage", "code", "message"), [
    (corrupt, 3, "fails its checksum"),
    (tamper_checksum, 3, "fails its checksum"),
    (truncate, 3, "truncated or replaced"),
    (truncate_consistently, 3, "truncated"),
    (change_salt_consistently, 3, "header is corrupt"),
    (tamper_segments, 3, "fails authentication"),
    (tamper_fingerprint, 3, "SHA-256 differs from the manifest"),
    (lambda p: p.unlink(), 2, "does not exist"),
    (lambda p: Path(str(p).replace(".dump.enc", ".manifest.json")).unlink(), 2,
     "manifest .* does not exist"),
])
def test_bad_backup_fails_safely(  # noqa: PLR0917 (fixtures and parameters)
        pg_server: PostgresCluster, live_db: str, key_file: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str], damage: object, code: int, message: str) -> None:
    _, data = backup(live_db, tmp_path / "b", key_file)
    pg_server.psql("INSERT INTO billing.\"Invoices\" VALUES (999, 1, '1 day')",
                   live_db.rsplit("/", 1)[1])  # live differs from the backup
    before = state(live_db)
    damage(data)  # type: ignore[operator]

    result = restore_script.main([str(data), "--database-url", live_db,
                                  "--key-file", str(key_file)])

    assert result == code
    assert re.search(message, capsys.readouterr().err)
    assert state(live_db) == before
    live = live_db.rsplit("/", 1)[1]
    assert databases(pg_server, f"{live}_") == set()  # no scratch or old database left


def test_wrong_key_is_refused(pg_server: PostgresCluster, live_db: str, key_file: Path,
                              tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from caresync_dr.backup.keys import generate_key_file
    _, data = backup(live_db, tmp_path / "b", key_file)
    other = tmp_path / "other.key"
    generate_key_file(other)
    before = state(live_db)

    assert restore_script.main([str(data), "--database-url", live_db,
                                "--key-file", str(other)]) == 3
    assert "wrong key" in capsys.readouterr().err
    assert state(live_db) == before


def test_corrupt_sql_gz_is_refused(pg_server: PostgresCluster, live_db: str,
                                   tmp_path: Path) -> None:
    seed_file = tmp_path / "latest.sql.gz"
    seed_file.write_bytes(gzip.compress(b"CREATE TABLE x (i int);\n" * 1000)[:-20])
    before = state(live_db)
    assert restore_script.main([str(seed_file), "--database-url", live_db]) == 3
    assert state(live_db) == before


def test_dry_run_changes_nothing(pg_server: PostgresCluster, live_db: str, key_file: Path,
                                 tmp_path: Path) -> None:
    _, data = backup(live_db, tmp_path / "b", key_file)
    pg_server.psql("DELETE FROM clinical_notes", live_db.rsplit("/", 1)[1])
    before = state(live_db)
    assert restore_script.main([str(data), "--database-url", live_db, "--key-file",
                                str(key_file), "--dry-run"]) == 0
    # a directory means its newest backup: `./scripts/rollback.sh /backups`
    assert restore_script.main([str(data.parent), "--database-url", live_db, "--key-file",
                                str(key_file), "--dry-run"]) == 0
    assert state(live_db) == before
    assert databases(pg_server, live_db.rsplit("/", 1)[1] + "_") == set()


def rewrite_manifest(data: Path, **changes: object) -> None:
    import json
    manifest = Path(str(data).replace(".dump.enc", ".manifest.json"))
    fields = json.loads(manifest.read_text())
    fields.update(changes)
    manifest.write_text(json.dumps(fields))


def loaded_as(report: Path) -> str:
    import json
    return str(json.loads(report.read_text())["result"]["loaded_as"])


def test_backups_from_before_segments_restore_as_one_stream(
        pg_server: PostgresCluster, live_db: str, key_file: Path, tmp_path: Path) -> None:
    _, data = backup(live_db, tmp_path / "b", key_file)
    before = state(live_db)
    report = tmp_path / "r.json"
    assert restore_script.main([str(data), "--database-url", live_db, "--key-file",
                                str(key_file), "--no-swap", "--report", str(report)]) == 0
    assert loaded_as(report) == "parallel segments"
    rewrite_manifest(data, segments=[])
    pg_server.psql("DELETE FROM clinical_notes", live_db.rsplit("/", 1)[1])
    assert restore_script.main([str(data), "--database-url", live_db, "--key-file",
                                str(key_file), "--report", str(report)]) == 0
    assert loaded_as(report) == "one stream"
    assert state(live_db) == before


def test_backups_with_server_fingerprints_v1_still_verify(
        pg_server: PostgresCluster, live_db: str, key_file: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Manifests of the first version recorded the server's md5 sums, verified by reading the
    restored tables again; a wrong one is still caught."""
    from caresync_dr.backup.verify import fingerprints_of
    _, data = backup(live_db, tmp_path / "b", key_file)
    v1 = {name: {"rows": t.rows, "fingerprint": t.fingerprint}
          for name, t in fingerprints_of(live_db).items()}
    rewrite_manifest(data, tables=v1, fingerprint_method="server-md5-sum/v1",
                     database_state=None, segments=[])
    assert restore_script.main([str(data), "--database-url", live_db, "--key-file",
                                str(key_file), "--no-swap"]) == 0
    v1["public.patients"]["fingerprint"] = "0" * 32
    rewrite_manifest(data, tables=v1)
    assert restore_script.main([str(data), "--database-url", live_db, "--key-file",
                                str(key_file), "--no-swap"]) == 3
    assert "public.patients: content fingerprint" in capsys.readouterr().err


def test_an_archive_with_large_objects_restores_from_an_anonymous_file(
        pg_server: PostgresCluster, live_db: str, key_file: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Large objects are not table data: such an archive is not streamed but decrypted into an
    O_TMPFILE (no name on disk) and restored by pg_restore --jobs from it."""
    live = live_db.rsplit("/", 1)[1]
    pg_server.psql("SELECT lo_from_bytea(0, '\\x00ffcafe'::bytea)", live)
    before = state(live_db)
    _, data = backup(live_db, tmp_path / "b", key_file)
    pg_server.psql("DELETE FROM clinical_notes", live)
    report = tmp_path / "r.json"
    assert restore_script.main([str(data), "--database-url", live_db, "--key-file",
                                str(key_file), "--report", str(report)]) == 0
    assert loaded_as(report) == "anonymous file"
    assert "cannot be streamed (BLOBS entries (large objects))" in capsys.readouterr().err
    assert state(live_db) == before
    assert pg_server.psql("SELECT encode(lo_get(oid), 'hex') FROM pg_largeobject_metadata",
                          live) == "00ffcafe"


def test_a_decrypted_backup_is_an_archive_pg_restore_reads_itself(
        pg_server: PostgresCluster, live_db: str, key_file: Path, tmp_path: Path) -> None:
    """The backup re-frames pg_dump's table data into 1 MiB chunks; to pg_restore it is the
    same archive (the way out if this project's tools are ever unavailable)."""
    from caresync_dr.backup.keys import no_kms, resolver
    from caresync_dr.backup.manifest import read_manifest
    from caresync_dr.backup.restore import decrypted_chunks
    manifest, data = backup(live_db, tmp_path / "b", key_file)
    plain = tmp_path / "plain.dump"
    with plain.open("wb") as out:
        for chunk in decrypted_chunks(data, read_manifest(Path(str(data).replace(
                ".dump.enc", ".manifest.json"))), resolver(key_file, no_kms)):
            out.write(chunk)
    target = live_db + "_by_pg_restore"
    pg_server.psql(f'CREATE DATABASE "{target.rsplit("/", 1)[1]}"')
    subprocess.run([pg_server.tool("pg_restore"), "--exit-on-error", "-j2", "-d", target,
                    str(plain)], check=True, capture_output=True)
    assert state(target) == state(live_db) == manifest.tables
