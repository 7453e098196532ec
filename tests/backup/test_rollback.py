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


def tamper_fingerprint(path: Path) -> None:
    """The manifest no longer matches the data: the restored copy must fail verification."""
    import json
    manifest = Path(str(path).replace(".dump.enc", ".manifest.json"))
    fields = json.loads(manifest.read_text())
    fields["tables"]["public.patients"]["fingerprint"] = "0" * 32
    manifest.write_text(json.dumps(fields))


@pytest.mark.parametrize(("damage", "code", "message"), [
    (corrupt, 3, "fails its checksum"),
    (truncate, 3, "truncated or replaced"),
    (truncate_consistently, 3, "truncated"),
    (tamper_fingerprint, 3, "content fingerprint"),
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
