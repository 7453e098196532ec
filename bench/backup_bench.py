#!/usr/bin/env python3
"""Benchmark (not a test): this project's backup+restore against the seed's baseline.

Generates a CareSync-like database (patients, appointments, clinical notes with text, indexes and
foreign keys) of about --size-mb on disk in a throwaway PostgreSQL 15 cluster, then on the same
data times:

  baseline backup   pg_dump DB | gzip > base.sql.gz
  baseline restore  gunzip -c base.sql.gz | psql (into a fresh database)
  project backup    caresync_dr.backup.create.take_backup (pg_dump -Fc -Z0 | zstd | AES-256-GCM,
                    per-table fingerprints in the dump's snapshot)
  project restore   the steps of caresync_dr.backup.rollback.rollback(..., swap_in=False):
                    restore.prepared (checksum, decrypt), restore.load (pg_restore --jobs), then
                    restore.verify_restored against the manifest (reported apart)

and prints a JSON report with times, ratios (targets: restore <= 0.5x, backup <= 1.1x) and each
restore's CPU seconds (server + clients; restore_cpu_floor_ratio = CPU s / cores / baseline time,
the ratio no schedule on this machine can beat).
Usage: venv/bin/python bench/backup_bench.py [--size-mb 1024] [--jobs 2] [--report out.json]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from typing import Any

import psycopg

from caresync_dr.backup.create import BackupOptions, take_backup
from caresync_dr.backup.keys import generate_key_file, key_from_file, no_kms, resolver
from caresync_dr.backup.restore import load, prepared, verify_restored
from caresync_dr.cli import setup_logging
from caresync_dr.pg.cluster import PostgresCluster, temp_cluster

log = logging.getLogger("bench")

SCHEMA = """
CREATE TABLE patients (
    id bigint PRIMARY KEY, mrn text NOT NULL UNIQUE, first_name text NOT NULL,
    last_name text NOT NULL, born date NOT NULL, email text, phone text, address text,
    created_at timestamptz NOT NULL);
CREATE TABLE appointments (
    id bigint PRIMARY KEY, patient_id bigint NOT NULL REFERENCES patients(id),
    provider text NOT NULL, starts_at timestamptz NOT NULL, status text NOT NULL,
    reason text);
CREATE TABLE clinical_notes (
    id bigint PRIMARY KEY, patient_id bigint NOT NULL REFERENCES patients(id),
    appointment_id bigint REFERENCES appointments(id), author text NOT NULL,
    created_at timestamptz NOT NULL, body text NOT NULL);
CREATE INDEX patients_name_idx ON patients (last_name, first_name);
CREATE INDEX appointments_patient_idx ON appointments (patient_id);
CREATE INDEX appointments_starts_idx ON appointments (starts_at);
CREATE INDEX clinical_notes_patient_idx ON clinical_notes (patient_id);
CREATE INDEX clinical_notes_created_idx ON clinical_notes (created_at);
SELECT setseed(0.42);
CREATE TEMP TABLE sentences AS
  SELECT i, (SELECT string_agg(w[1 + floor(random() * array_length(w, 1))::int], ' ' ORDER BY k)
               FROM generate_series(1, 10 + i % 9) k) || '.' AS s
    FROM generate_series(0, 2047) i,
         LATERAL (SELECT ARRAY['patient','reports','denies','chest','pain','shortness','of',
           'breath','mild','moderate','severe','history','hypertension','diabetes','type','2',
           'prescribed','metformin','lisinopril','500mg','daily','follow-up','in','two','weeks',
           'blood','pressure','elevated','normal','labs','ordered','A1c','CBC','lipid','panel',
           'no','acute','distress','alert','oriented','vitals','stable','heart','rate','regular',
           'lungs','clear','abdomen','soft','non-tender','plan','continue','current','therapy',
           'referred','to','cardiology','education','provided','on','diet','and','exercise']
           || ARRAY[i::text]) AS v(w);
ANALYZE sentences;
"""

BATCH = """
INSERT INTO patients
  SELECT g, 'MRN' || lpad(g::text, 10, '0'), 'First' || (g * 7 % 5003), 'Last' || (g * 13 % 20011),
         date '1940-01-01' + (g * 37 % 29000)::int, 'p' || g || '@example.org',
         '+1-555-' || lpad((g % 10000000)::text, 7, '0'), g || ' Main Street, Springfield',
         timestamptz '2020-01-01' + g * interval '17 seconds'
    FROM generate_series(%(lo)s::bigint, %(hi)s) g;
INSERT INTO appointments
  SELECT g, 1 + (g * 7919) %% %(hi)s, 'Dr. ' || (g %% 97),
         timestamptz '2021-01-01' + g * interval '5 minutes',
         (ARRAY['booked','completed','cancelled','no-show'])[1 + g %% 4],
         'visit reason ' || (g %% 211)
    FROM generate_series(%(lo)s::bigint * 4 - 3, %(hi)s * 4) g;
INSERT INTO clinical_notes
  SELECT g, 1 + (g * 104729) %% %(hi)s, (g - 1) / 3 * 4 + 1, 'Dr. ' || (g %% 97),
         timestamptz '2021-01-01' + g * interval '7 minutes',
         s1.s || ' ' || s2.s || ' ' || s3.s || ' ' || s4.s || ' ' || s5.s || ' ' || s6.s || ' '
         || s7.s || ' Note #' || g
    FROM generate_series(%(lo)s::bigint * 3 - 2, %(hi)s * 3) g
    JOIN sentences s1 ON s1.i = g * 31 %% 2048 JOIN sentences s2 ON s2.i = g * 131 %% 2048
    JOIN sentences s3 ON s3.i = g * 521 %% 2048 JOIN sentences s4 ON s4.i = g * 1031 %% 2048
    JOIN sentences s5 ON s5.i = g * 2053 %% 2048 JOIN sentences s6 ON s6.i = g * 4099 %% 2048
    JOIN sentences s7 ON s7.i = g * 8209 %% 2048;
"""


def generate(cluster: PostgresCluster, db: str, size_mb: int) -> dict[str, Any]:
    cluster.psql(f"CREATE DATABASE {db}")
    target = size_mb * 1024 * 1024
    clock = time.monotonic()
    with psycopg.connect(cluster.dsn(db), autocommit=True) as conn:
        conn.execute(SCHEMA)
        lo, step = 1, 20000
        while True:
            conn.execute(BATCH.replace("%(lo)s", str(lo)).replace("%(hi)s", str(lo + step - 1))
                         .replace("%%", "%"))
            size = int(conn.execute("SELECT pg_database_size(current_database())")
                       .fetchone()[0])  # type: ignore[index]
            log.info("generated %d patients, database %d MiB", lo + step - 1, size >> 20)
            if size >= target:
                break
            lo += step
        conn.execute("VACUUM ANALYZE")
        counts = {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0])  # type: ignore[index]
                  for t in ("patients", "appointments", "clinical_notes")}
        size = int(conn.execute("SELECT pg_database_size(current_database())")
                   .fetchone()[0])  # type: ignore[index]
    return {"rows": counts, "database_bytes": size,
            "generate_seconds": round(time.monotonic() - clock, 1)}


def server_cpu_seconds(cluster: PostgresCluster) -> float:
    """CPU seconds used so far by the server: the postmaster, the backends it has reaped
    (their time is added to its cutime/cstime) and its live children (checkpointer, WAL
    writer, ...). Linux /proc only."""
    ticks = os.sysconf("SC_CLK_TCK")
    pid = int((cluster.data_dir / "postmaster.pid").read_text().split()[0])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            child_fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # exited meanwhile: counted in cutime once reaped
            continue
        total += int(child_fields[11]) + int(child_fields[12])
    return total / ticks


class CpuMeter:
    """CPU seconds of the server plus this process and its reaped children, between two
    points: the work a restore does, whatever else runs on the machine."""

    def __init__(self, cluster: PostgresCluster) -> None:
        self.cluster = cluster
        self.start = self._now()

    def _now(self) -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (server_cpu_seconds(self.cluster) + own.ru_utime + own.ru_stime
                + kids.ru_utime + kids.ru_stime)

    def seconds(self) -> float:
        time.sleep(0.3)  # let the postmaster reap the finished backends
        return self._now() - self.start


def timed_shell(command: str) -> float:
    clock = time.monotonic()
    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True)
    return time.monotonic() - clock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=1024, help="database size (default 1024)")
    parser.add_argument("--jobs", type=int, default=2, help="pg_restore --jobs (default 2)")
    parser.add_argument("--compress-level", type=int, default=3, help="zstd level (default 3)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="interleaved rounds; medians are reported (default 3)")
    parser.add_argument("--report", type=Path, help="also write the JSON report here")
    parser.add_argument("--no-fsync", action="store_true",
                        help="run the server with fsync off (faster, less realistic)")
    args = parser.parse_args(argv)
    setup_logging()
    cluster = temp_cluster(prefix="caresync-bench-")
    if not args.no_fsync:  # RDS runs with fsync on; so does this benchmark unless asked not to
        cluster.append_conf({"fsync": "on", "full_page_writes": "on"})
    cluster.start()
    work = Path(tempfile.mkdtemp(prefix="caresync-bench-work-"))
    try:
        report: dict[str, Any] = {"size_mb_requested": args.size_mb, "jobs": args.jobs,
                                  "repeat": args.repeat, "load_average_before": os.getloadavg(),
                                  "compress_level": args.compress_level, "cpus": os.cpu_count(),
                                  "fsync": not args.no_fsync}
        report["data"] = generate(cluster, "caresync", args.size_mb)
        tool = cluster.tool
        src = cluster.dsn("caresync")
        key = work / "bench.key"
        generate_key_file(key)
        samples: dict[str, list[float]] = {name: [] for name in (
            "baseline_backup", "project_backup", "baseline_restore", "project_restore",
            "project_restore_decrypt", "project_restore_load", "project_verify",
            "baseline_restore_cpu", "project_restore_cpu")}
        # Interleaved rounds: the machine may be shared, so each round measures both sides
        # under the same conditions, and the report gives every sample and the median.
        for round_no in range(1, args.repeat + 1):
            log.info("round %d of %d", round_no, args.repeat)
            base_file = work / "base.sql.gz"
            samples["baseline_backup"].append(timed_shell(
                f"{tool('pg_dump')} -d '{src}' | gzip > {base_file}"))
            clock = time.monotonic()
            manifest, data = take_backup(BackupOptions(
                src, work / f"backups-{round_no}", key_from_file(key),
                compress_level=args.compress_level))
            samples["project_backup"].append(time.monotonic() - clock)

            cluster.psql("CREATE DATABASE base_restore")
            cluster.psql("CHECKPOINT")
            meter = CpuMeter(cluster)
            samples["baseline_restore"].append(timed_shell(
                f"gunzip -c {base_file} | {tool('psql')} -X -q -v ON_ERROR_STOP=1 "
                f"-d '{cluster.dsn('base_restore')}' >/dev/null"))
            samples["baseline_restore_cpu"].append(meter.seconds())
            cluster.psql("DROP DATABASE base_restore")

            # The same steps as rollback(..., swap_in=False), timed apart so that the restore's
            # CPU seconds exclude the verification (reported on its own).
            restored = cluster.dsn("project_restore")
            cluster.psql("CREATE DATABASE project_restore TEMPLATE template0")
            cluster.psql("CHECKPOINT")
            meter = CpuMeter(cluster)
            clock = time.monotonic()
            with prepared(data, resolver(key, no_kms), work) as ready:
                decrypted = time.monotonic()
                load(ready, restored, jobs=args.jobs)
                loaded = time.monotonic()
                samples["project_restore_cpu"].append(meter.seconds())
                verified_from = time.monotonic()
                problems = verify_restored(ready, restored)
                if problems:
                    raise SystemExit(f"restored copy does not verify: {problems}")
                samples["project_verify"].append(time.monotonic() - verified_from)
            cluster.psql("DROP DATABASE project_restore")
            samples["project_restore_decrypt"].append(decrypted - clock)
            samples["project_restore_load"].append(loaded - decrypted)
            samples["project_restore"].append(loaded - clock)
            shutil.rmtree(data.parent)
            report["sizes_bytes"] = {"baseline_sql_gz": base_file.stat().st_size,
                                     "project_dump_enc": manifest.size_bytes,
                                     "project_dump_plain": manifest.dump_bytes}
        median = {name: statistics.median(values) for name, values in samples.items()}
        report["samples_s"] = samples
        report["median_s"] = median
        report["backup_ratio"] = median["project_backup"] / median["baseline_backup"]
        report["restore_ratio"] = median["project_restore"] / median["baseline_restore"]
        report["restore_incl_verify_ratio"] = ((median["project_restore"]
                                                + median["project_verify"])
                                               / median["baseline_restore"])
        report["per_round_ratios"] = {
            "backup": [p / b for p, b in zip(samples["project_backup"],
                                             samples["baseline_backup"], strict=True)],
            "restore": [p / b for p, b in zip(samples["project_restore"],
                                              samples["baseline_restore"], strict=True)]}
        # Work, not wall time: CPU seconds of server + clients per restore. On this machine's
        # cores no schedule can finish a restore faster than its CPU seconds / cores.
        cores = os.cpu_count() or 1
        report["restore_cpu_floor_ratio"] = (median["project_restore_cpu"] / cores
                                             / median["baseline_restore"])
        report["targets"] = {"backup_ratio_max": 1.1, "restore_ratio_max": 0.5,
                             "backup_met": report["backup_ratio"] <= 1.1,
                             "restore_met": report["restore_ratio"] <= 0.5}
        report["load_average_after"] = os.getloadavg()
        text = json.dumps(report, indent=2, default=str)
        print(text)
        if args.report:
            args.report.write_text(text + "\n")
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(cluster.data_dir.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
