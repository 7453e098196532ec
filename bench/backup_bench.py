#!/usr/bin/env python3
"""Benchmark (not a test): this project's backup and restore against what an expert would run.

For each --size-mb (default: 1024 and 4096, in one run), generates a CareSync-like database
(patients, appointments, clinical notes with text, indexes and foreign keys) of about that size
on disk in a throwaway PostgreSQL 15 cluster (fsync on, as on RDS), then, round after round and
side by side (the machine is shared, so each round measures everything under the same load):

  reference backup   pg_dump -Fc -f ref.dump                  (gzip in pg_dump's one process)
  project backup     backup.create.take_backup: pg_dump -Fc -Z0 | fingerprints + zstd +
                     AES-256-GCM, in this process
  reference restore  pg_restore --jobs J -d fresh ref.dump    (no decryption, no verification)
  project restore    backup.rollback.rollback(..., swap_in=False): checksum, decryption,
                     streaming load, post-data with --jobs J, and verification, all included
  seed restore       gunzip -c | psql, with --seed (the seed plan's baseline; slow at 4 GB)

and prints one JSON report: every sample, medians, each restore's CPU seconds (server and
clients), and the ratios issue 11 asks for:

  restore_vs_cpu_floor        project restore / (its CPU seconds / cores)       target <= 1.15
  restore_vs_pg_restore       project restore / reference restore              target <= 1.0
  backup_vs_pg_dump_fc        project backup / reference backup                target <= 1.1

Usage: venv/bin/python bench/backup_bench.py [--size-mb 1024 4096] [--repeat 1] [--jobs 2]
       [--seed] [--compare-no-split] [--report out.json]
State the machine's load (reported as load_average_before/after) with any figure.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import contextlib
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import psycopg

from caresync_dr.backup import loader
from caresync_dr.backup.create import BackupOptions, take_backup
from caresync_dr.backup.keys import generate_key_file, key_from_file, no_kms, resolver
from caresync_dr.backup.rollback import rollback
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


@contextlib.contextmanager
def _no_split() -> Iterator[None]:
    """The restore as it was before tables could be split over two COPY sessions."""
    saved = loader.MIN_SPLIT_BYTES
    loader.MIN_SPLIT_BYTES = 1 << 62
    try:
        yield
    finally:
        loader.MIN_SPLIT_BYTES = saved


def timed_shell(command: str) -> float:
    clock = time.monotonic()
    subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True)
    return time.monotonic() - clock


def measure_size(cluster: PostgresCluster, args: argparse.Namespace, size_mb: int,
                 work: Path, key: Path) -> dict[str, Any]:
    db = f"caresync_{size_mb}"
    report: dict[str, Any] = {"size_mb_requested": size_mb,
                              "data": generate(cluster, db, size_mb),
                              "load_average_at_start": os.getloadavg()}
    tool, src = cluster.tool, cluster.dsn(db)
    names = ["reference_backup", "project_backup", "reference_restore", "project_restore",
             "reference_restore_cpu", "project_restore_cpu", "seed_restore", "seed_restore_cpu",
             "project_restore_no_split", "project_restore_no_split_cpu"]
    samples: dict[str, list[float]] = {name: [] for name in names}
    steps: list[dict[str, float]] = []
    ref_file = work / "ref.dump"
    for round_no in range(1, args.repeat + 1):
        log.info("%d MB: round %d of %d", size_mb, round_no, args.repeat)
        ref_file.unlink(missing_ok=True)
        samples["reference_backup"].append(timed_shell(
            f"{tool('pg_dump')} -Fc -d '{src}' -f {ref_file}"))
        clock = time.monotonic()
        manifest, data = take_backup(BackupOptions(
            src, work / f"backups-{size_mb}-{round_no}", key_from_file(key),
            compress_level=args.compress_level))
        samples["project_backup"].append(time.monotonic() - clock)

        cluster.psql("CREATE DATABASE ref_restore TEMPLATE template0")
        cluster.psql("CHECKPOINT")
        meter = CpuMeter(cluster)
        samples["reference_restore"].append(timed_shell(
            f"{tool('pg_restore')} --jobs {args.jobs} --exit-on-error "
            f"-d '{cluster.dsn('ref_restore')}' {ref_file}"))
        samples["reference_restore_cpu"].append(meter.seconds())
        cluster.psql("DROP DATABASE ref_restore")

        cluster.psql("CHECKPOINT")
        meter = CpuMeter(cluster)
        clock = time.monotonic()
        result = rollback(data, src, resolver(key, no_kms), jobs=args.jobs, swap_in=False,
                          scratch_label="bench")
        samples["project_restore"].append(time.monotonic() - clock)
        samples["project_restore_cpu"].append(meter.seconds())
        steps.append(result.seconds)
        cluster.psql(f'DROP DATABASE "{result.restored_as}"')

        if args.compare_no_split:  # the same restore, never splitting a table over two COPYs
            cluster.psql("CHECKPOINT")
            meter = CpuMeter(cluster)
            clock = time.monotonic()
            with _no_split():
                result = rollback(data, src, resolver(key, no_kms), jobs=args.jobs,
                                  swap_in=False, scratch_label="bench")
            samples["project_restore_no_split"].append(time.monotonic() - clock)
            samples["project_restore_no_split_cpu"].append(meter.seconds())
            cluster.psql(f'DROP DATABASE "{result.restored_as}"')

        if args.seed:
            seed_file = work / "seed.sql.gz"
            timed_shell(f"{tool('pg_dump')} -d '{src}' | gzip > {seed_file}")
            cluster.psql("CREATE DATABASE seed_restore")
            cluster.psql("CHECKPOINT")
            meter = CpuMeter(cluster)
            samples["seed_restore"].append(timed_shell(
                f"gunzip -c {seed_file} | {tool('psql')} -X -q -v ON_ERROR_STOP=1 "
                f"-d '{cluster.dsn('seed_restore')}' >/dev/null"))
            samples["seed_restore_cpu"].append(meter.seconds())
            cluster.psql("DROP DATABASE seed_restore")
            seed_file.unlink()
        shutil.rmtree(data.parent)
        report["sizes_bytes"] = {"reference_dump": ref_file.stat().st_size,
                                 "project_dump_enc": manifest.size_bytes,
                                 "project_dump_plain": manifest.dump_bytes}
    cluster.psql(f"DROP DATABASE {db}")
    report["load_average_at_end"] = os.getloadavg()
    samples = {k: v for k, v in samples.items() if v}
    median = {name: statistics.median(values) for name, values in samples.items()}
    cores = os.cpu_count() or 1
    report.update(samples_s=samples, median_s=median, project_restore_steps_s=steps)
    floor = median["project_restore_cpu"] / cores
    report["ratios"] = {
        "restore_vs_cpu_floor": median["project_restore"] / floor,
        "restore_vs_pg_restore": median["project_restore"] / median["reference_restore"],
        "backup_vs_pg_dump_fc": median["project_backup"] / median["reference_backup"],
        "reference_restore_vs_its_cpu_floor": (median["reference_restore"]
                                               / (median["reference_restore_cpu"] / cores)),
    }
    if "project_restore_no_split" in median:
        report["ratios"]["no_split_restore_vs_pg_restore"] = (
            median["project_restore_no_split"] / median["reference_restore"])
        report["ratios"]["no_split_restore_vs_cpu_floor"] = (
            median["project_restore_no_split"] / (median["project_restore_no_split_cpu"] / cores))
    if "seed_restore" in median:
        report["ratios"]["restore_vs_seed_gunzip_psql"] = (median["project_restore"]
                                                           / median["seed_restore"])
    report["targets"] = {"restore_vs_cpu_floor": 1.15, "restore_vs_pg_restore": 1.0,
                         "backup_vs_pg_dump_fc": 1.1}
    report["met"] = {k: report["ratios"][k] <= v for k, v in report["targets"].items()}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, nargs="+", default=[1024, 4096],
                        help="database sizes, each measured in this run (default 1024 4096)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="--jobs of both restores (default 2)")
    parser.add_argument("--compress-level", type=int, default=3, help="zstd level (default 3)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds per size; medians are reported (default 1)")
    parser.add_argument("--seed", action="store_true",
                        help="also time the seed's gunzip | psql restore")
    parser.add_argument("--compare-no-split", action="store_true",
                        help="also time the project restore without splitting a table over "
                             "two COPY sessions (the restore before that change)")
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
        key = work / "bench.key"
        generate_key_file(key)
        report: dict[str, Any] = {"jobs": args.jobs, "repeat": args.repeat,
                                  "compress_level": args.compress_level, "cpus": os.cpu_count(),
                                  "fsync": not args.no_fsync,
                                  "load_average_before": os.getloadavg(), "sizes": []}
        for size_mb in args.size_mb:
            report["sizes"].append(measure_size(cluster, args, size_mb, work, key))
        report["load_average_after"] = os.getloadavg()
        report["summary"] = {f"{r['size_mb_requested']} MB": r["ratios"]
                             for r in report["sizes"]}
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
