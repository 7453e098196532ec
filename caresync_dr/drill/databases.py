"""The real data path: a PostgreSQL primary and streaming standbys, killed the hard way.

- ``primary``        the primary site's database (emulated: the prod RDS instance)
- ``standby``        the cross-region replica (emulated: the dr stack's replica), streaming
- ``local_replica``  optional in-region read replica (emulated: the prod stack's replica),
                     only started for the database-failure scenario, which promotes it

The drill's schema lives in the app database (the stack's ``dbName``). Like RDS, the servers
ask the login roles (``caresync_dr.db.roles``) for their passwords (SCRAM over TCP); the
superuser stands in for the RDS master user. All are throwaway clusters in temp dirs
(``caresync_dr.pg.cluster``), fsync off.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from caresync_dr.db.roles import ensure_roles
from caresync_dr.pg.archive import WalArchive
from caresync_dr.pg.cluster import (
    PostgresCluster,
    free_port,
    postmaster_pid,
    server_owned_temp_dir,
    temp_cluster,
)
from caresync_dr.pg.orphans import keep_owned

log = logging.getLogger(__name__)

SCHEMA = """
create table patients (seq bigint primary key, name text not null,
                       written_at timestamptz not null default clock_timestamp());
create table heartbeat (id int primary key, beat bigint not null, at timestamptz not null);
insert into heartbeat values (1, 0, clock_timestamp());
"""


@dataclass
class Databases:
    primary: PostgresCluster
    standby: PostgresCluster
    app_database: str
    local_replica: PostgresCluster | None = None
    dirs: list[Path] = field(default_factory=list)
    # Generations built later (the round trip's re-protection): stopped with the rest.
    extra: list[PostgresCluster] = field(default_factory=list)

    def all(self) -> list[PostgresCluster]:
        return [c for c in (self.primary, self.standby, self.local_replica, *self.extra)
                if c is not None]

    def dsn(self, cluster: PostgresCluster) -> str:
        """The superuser's DSN of the app database on ``cluster``."""
        return cluster.dsn(self.app_database)

    def stop(self, keep: bool = False) -> None:
        """Stop every server and delete the data; ``keep`` leaves both for inspection."""
        if keep:
            keep_owned()  # no later drill's sweep removes them once this process has ended
            log.info("--keep: PostgreSQL servers left running on ports %s (data in %s)",
                     ", ".join(str(c.port) for c in self.all()),
                     ", ".join(str(d) for d in self.dirs))
            return
        running = [c for c in self.all() if postmaster_alive(c)]
        with ThreadPoolExecutor(max_workers=max(1, len(running))) as pool:
            list(pool.map(lambda c: c.stop(mode="immediate"), running))
        for directory in self.dirs:
            shutil.rmtree(directory, ignore_errors=True)


def _standby_of(primary: PostgresCluster, prefix: str) -> tuple[PostgresCluster, Path]:
    base = server_owned_temp_dir(prefix)
    standby = primary.base_backup_standby(base / "data", free_port())
    standby.start()
    return standby, base


def start_databases(with_local_replica: bool, *, app_database: str,
                    password_roles: tuple[str, ...] = (),
                    archive: WalArchive | None = None) -> Databases:
    """Primary with the drill's schema in ``app_database``, plus its streaming standby (and
    in-region replica); ``password_roles`` log in with SCRAM. With ``archive`` the primary
    archives its WAL there (small segments), as RDS keeps every transaction log for PITR."""
    primary = (temp_cluster(prefix="caresync-drill-primary-") if archive is None else
               temp_cluster(prefix="caresync-drill-primary-", wal_segment_mb=1,
                            extra_conf=archive.conf()))
    dirs = [primary.data_dir.parent]
    dbs: Databases | None = None
    try:
        primary.require_password(password_roles)  # before the standbys copy pg_hba.conf
        primary.start()
        primary.psql(f'create database "{app_database}"')
        primary.psql(SCHEMA, dbname=app_database)
        standby, base = _standby_of(primary, "caresync-drill-standby-")
        dirs.append(base)
        dbs = Databases(primary=primary, standby=standby, app_database=app_database, dirs=dirs)
        if with_local_replica:
            dbs.local_replica, base = _standby_of(primary, "caresync-drill-replica-")
            dirs.append(base)
        return dbs
    except BaseException:
        if dbs is not None:
            dbs.stop()
        else:
            primary.stop(mode="immediate")
            for directory in dirs:
                shutil.rmtree(directory, ignore_errors=True)
        raise


def install_roles(primary: PostgresCluster, database: str,
                  passwords: dict[str, str]) -> list[str]:
    """The database's login roles with their secrets' passwords, as the role command does as
    the RDS master user (``caresync_dr.db.roles.ensure_roles``; the drill's superuser stands in
    for the master user and owns the schema); the standbys get them through replication.
    Returns what was done, one line per statement."""
    with psycopg.connect(primary.dsn(database), autocommit=True) as conn:
        done = ensure_roles(conn, passwords, database=database, owner=primary.superuser)
    log.info("roles %s created on the primary with their secrets' passwords (SCRAM)",
             ", ".join(sorted(passwords)))
    return done


def wait_for_role(cluster: PostgresCluster, role: str, timeout: float = 10) -> None:
    """Until a standby has replayed the role (streaming replication is asynchronous)."""
    deadline = time.monotonic() + timeout
    query = f"select count(*) from pg_roles where rolname = '{role}'"
    while cluster.psql(query) != "1":
        if time.monotonic() > deadline:
            raise TimeoutError(f"the standby on port {cluster.port} has not replayed role "
                               f"{role} after {timeout:g} s")
        time.sleep(0.02)


def _children(pid: int) -> list[int]:
    """The processes ``pid`` forked: its main thread's ``children`` file (Linux 4.2+; a
    postmaster forks from its one thread), else a scan of every process's parent."""
    with contextlib.suppress(OSError, ValueError):
        return [int(child) for child in
                Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def postmaster_alive(cluster: PostgresCluster) -> bool:
    """A running postmaster; a killed one may linger as a zombie nobody reaps, which is dead,
    and its stale ``postmaster.pid`` may name a recycled PID (:func:`postmaster_pid`)."""
    return postmaster_pid(cluster.data_dir) is not None


def kill_hard(cluster: PostgresCluster) -> None:
    """SIGKILL the postmaster and every backend at once, like the host losing power."""
    postmaster = postmaster_pid(cluster.data_dir)
    if postmaster is None:
        return
    # Stopped, the postmaster forks no backend while its children are listed (one forked
    # after the listing would go on acknowledging writes). A process group kill would not do:
    # every child of a postmaster makes itself a session leader (InitPostmasterChild's
    # setsid()), so the postmaster's group is the postmaster alone, and its backends would
    # serve until they noticed its death.
    with contextlib.suppress(ProcessLookupError):
        os.kill(postmaster, signal.SIGSTOP)
    for pid in [*_children(postmaster), postmaster]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    log.info("postgres on port %d killed (SIGKILL, postmaster and backends)", cluster.port)
