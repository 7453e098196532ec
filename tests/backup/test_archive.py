"""archive.py reads pg_dump's custom format as pg_restore does; schema_steps.py knows which
post-data entries may run while tables are still loading."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from caresync_dr.backup.archive import ArchiveStream, Reframer, fingerprints
from caresync_dr.backup.errors import IntegrityError
from caresync_dr.backup.schema_steps import SchemaSteps
from caresync_dr.pg.cluster import PostgresCluster
from tests.backup.helpers import state

pytestmark = pytest.mark.postgres


@pytest.fixture
def archive(pg_server: PostgresCluster, live_db: str, tmp_path: Path) -> bytes:
    live = live_db.rsplit("/", 1)[1]
    pg_server.psql("CREATE TABLE public.audit (id int REFERENCES billing.\"Invoices\"(id));"
                   "INSERT INTO public.audit VALUES (1), (2);"
                   "CREATE MATERIALIZED VIEW public.counts AS SELECT count(*) FROM patients;",
                   live)
    out = tmp_path / "a.dump"
    subprocess.run([pg_server.tool("pg_dump"), "-Fc", "-Z0", "-d", live_db, "-f", str(out)],
                   check=True)
    return out.read_bytes()


def read(data: bytes, step: int) -> ArchiveStream:
    stream = ArchiveStream()
    for start in range(0, len(data), step):
        stream.feed(data[start:start + step])
    stream.close()
    return stream


def test_the_table_of_contents_is_pg_restores(pg_server: PostgresCluster, archive: bytes,
                                             tmp_path: Path) -> None:
    (tmp_path / "a.dump").write_bytes(archive)
    listing = subprocess.run([pg_server.tool("pg_restore"), "-l", str(tmp_path / "a.dump")],
                             check=True, capture_output=True, text=True).stdout
    listed = {int(m.group(1)): m.group(2) for m in
              re.finditer(r"^(\d+); \d+ \d+ (.*)$", listing, re.MULTILINE)}
    head = read(archive, 1 << 20).head
    assert head is not None
    shown = [e for e in head.entries if e.dump_id in listed]
    assert [e.dump_id for e in shown] == list(listed)  # every listed entry, in its order
    hidden = {e.desc for e in head.entries if e.dump_id not in listed}
    # pg_restore -l does not list the session settings and the database's own entries
    assert hidden <= {"ENCODING", "STDSTRINGS", "SEARCHPATH", "DATABASE", "DATABASE PROPERTIES",
                      "COMMENT"}, hidden
    for entry in shown:
        assert listed[entry.dump_id].startswith(f"{entry.desc} "), (entry, listed[entry.dump_id])
        assert f" {entry.tag} " in listed[entry.dump_id]


def test_any_feeding_gives_the_same_figures_and_they_are_the_databases(
        archive: bytes, live_db: str) -> None:
    whole = fingerprints(read(archive, 1 << 20))
    assert fingerprints(read(archive, 7)) == whole == fingerprints(read(archive, 4093))
    assert {n: (t.rows, t.fingerprint) for n, t in state(live_db).items()} == whole


@pytest.mark.parametrize("cut", [10, 3000, -7, -1])
def test_a_cut_archive_is_refused(archive: bytes, cut: int) -> None:
    with pytest.raises(IntegrityError, match=r"ends inside|no data for"):
        read(archive[:cut], 4096)


def test_reframing_keeps_the_data_and_the_figures(archive: bytes) -> None:
    head = read(archive, 1 << 20).head
    assert head is not None
    out = bytearray()
    blocks: list[int] = []
    reframer = Reframer(out.extend, head, on_block=lambda dump_id, _: blocks.append(dump_id),
                        chunk_size=1000)
    body = ArchiveStream(reframer, head=head)
    body.feed(archive[len(head.raw):])
    body.close()
    again = read(bytes(out), 1 << 16)
    assert fingerprints(again) == fingerprints(read(archive, 1 << 20))
    assert blocks == [d for _, d in again.block_starts]


def test_post_data_entries_wait_for_the_tables_they_need(archive: bytes) -> None:
    head = read(archive, 1 << 20).head
    assert head is not None
    steps = SchemaSteps(head, "postgresql://unused@127.0.0.1/x")
    try:
        data = {e.tag: e.dump_id for e in head.table_data}
        named = {e.dump_id: f"{e.desc} {e.tag}" for e in head.entries}

        def ready(*tables: str) -> set[str]:
            return {named[d] for d in steps.ready({data[t] for t in tables})}

        assert ready() == set()
        notes = ready("clinical_notes")
        assert "INDEX clinical_notes_patient_id_idx" in notes
        assert not any(n.startswith("FK CONSTRAINT") for n in notes)  # patients not loaded
        both = ready("clinical_notes", "patients")
        assert "FK CONSTRAINT clinical_notes clinical_notes_patient_id_fkey" in both
        everything = ready(*data)
        assert "FK CONSTRAINT audit audit_id_fkey" in everything
        assert not any(n.startswith("MATERIALIZED VIEW DATA") for n in everything)  # last
    finally:
        steps.close()
