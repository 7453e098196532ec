"""Throwaway PostgreSQL clusters for tests, drills and benchmarks.

Starts real servers from the system's binaries (``/usr/lib/postgresql/<v>/bin``, or ``PG_BIN``).
``initdb`` refuses to run as root, so as root every server command runs as the ``postgres``
user through ``runuser`` in a directory that user owns. Servers listen on 127.0.0.1 only, with
``trust`` authentication except for the roles named in :meth:`PostgresCluster.require_password`
(SCRAM): never use this module for anything but local, disposable data.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from caresync_dr.pg.orphans import owned_temp_dir

log = logging.getLogger(__name__)

SERVER_USER = "postgres"
HOW_TO_GET_POSTGRES = (
    "install the PostgreSQL 15 server (Debian: apt-get install postgresql-15) "
    "or point PG_BIN at a directory holding initdb, pg_ctl and postgres"
)


class PostgresNotFoundError(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def find_pg_bin() -> Path:
    """The directory with initdb/pg_ctl/postgres: ``PG_BIN``, else the newest system install."""
    env = os.environ.get("PG_BIN")
    candidates = [Path(env)] if env else []
    system = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                    key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
                    reverse=True)
    # Prefer 15, the version CareSync runs on RDS, when several are installed.
    candidates += sorted(system, key=lambda p: p.parent.name != "15")
    for directory in candidates:
        if all((directory / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            return directory
    raise PostgresNotFoundError(f"no PostgreSQL server binaries found; {HOW_TO_GET_POSTGRES}")


def postmaster_pid(data_dir: Path) -> int | None:
    """The PID of ``data_dir``'s running postmaster, or None.

    ``postmaster.pid`` outlives a killed server, and its PID is soon another process's: this
    machine recycles PIDs within minutes (``kernel.pid_max`` 32768, busy test suites). pg_ctl
    signals whatever has that PID (``stop`` SIGINT/SIGQUIT, ``reload`` SIGHUP, ``promote``
    SIGUSR1), so a stale file made it stop or crash another suite's server. Only a live,
    non-zombie process whose working directory is ``data_dir`` (a postmaster's always is) counts.
    """
    try:
        pid = int((data_dir / "postmaster.pid").read_text().splitlines()[0])
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except (OSError, ValueError, IndexError):
        return None
    return pid if state not in ("Z", "X") and cwd == data_dir.resolve() else None


def free_port() -> int:
    """A TCP port of 127.0.0.1 free right now. Only a probe: anyone may bind it before the
    caller does (prefer binding port 0 yourself where the server allows it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# How many ports a server start tries when the one chosen is taken meanwhile.
PORT_ATTEMPTS = 3


def port_taken(port: int) -> bool:
    """Something holds ``port`` on 127.0.0.1 (a listener, or a connection's local end)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _as_server_user(argv: Sequence[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", SERVER_USER, "--", *argv]
    return list(argv)


def _chown_to_server_user(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, user=SERVER_USER, group=SERVER_USER)


@dataclass
class PostgresCluster:
    """One local server: its data directory, port and socket directory."""

    data_dir: Path
    port: int
    bin_dir: Path = field(default_factory=find_pg_bin)
    superuser: str = "postgres"
    log_file: Path | None = None

    @property
    def socket_dir(self) -> Path:
        return self.data_dir.parent / f"sock-{self.port}"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.superuser}@127.0.0.1:{self.port}/{dbname}"

    def tool(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _run(self, argv: Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(_as_server_user(argv), check=True, capture_output=True, text=True,
                              timeout=timeout)

    def _prepare_dirs(self) -> None:
        for directory in (self.data_dir.parent, self.socket_dir):
            directory.mkdir(parents=True, exist_ok=True)
            _chown_to_server_user(directory)
        self.data_dir.parent.chmod(0o755)
        if self.log_file is None:
            self.log_file = self.data_dir.parent / f"postgres-{self.port}.log"

    def init(self, *, fast: bool = True, extra_conf: dict[str, str] | None = None,
             wal_segment_mb: int | None = None) -> None:
        """``initdb`` a fresh cluster ready for streaming replication.

        ``fast`` turns off fsync: fine for throwaway data, wrong for anything kept.
        ``wal_segment_mb`` (1 to 1024, a power of two) sizes the WAL files: small ones keep a
        WAL archive small when segments are switched often (``caresync_dr.pg.archive``).
        """
        self._prepare_dirs()
        segments = [] if wal_segment_mb is None else [f"--wal-segsize={wal_segment_mb}"]
        self._run([self.tool("initdb"), "-D", str(self.data_dir), "-U", self.superuser,
                   "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-instructions",
                   *segments])
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "wal_level": "replica",
            "max_wal_senders": "10",
            "hot_standby": "on",
            "wal_keep_size": "'256MB'",
            "fsync": "off" if fast else "on",
            "synchronous_commit": "on",
            "full_page_writes": "off" if fast else "on",
        }
        conf.update(extra_conf or {})
        self.append_conf(conf)
        with (self.data_dir / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")

    def require_password(self, roles: Sequence[str]) -> None:
        """TCP logins as these roles need their password (``scram-sha-256``), like RDS.

        pg_hba.conf is matched top-down, first match wins, so the lines go above initdb's
        ``trust`` lines. A running server reloads; standbys made afterwards inherit the file."""
        hba = self.data_dir / "pg_hba.conf"
        lines = "".join(f"host all {role} 127.0.0.1/32 scram-sha-256\n" for role in roles)
        text = hba.read_text()
        with hba.open("w") as out:  # rewriting in place keeps the file's owner
            out.write(lines + text)
        if postmaster_pid(self.data_dir) is not None:
            self._run([self.tool("pg_ctl"), "-D", str(self.data_dir), "reload"])

    def append_conf(self, conf: dict[str, str]) -> None:
        # Appending keeps the file's owner, so root may write it for the server user.
        with (self.data_dir / "postgresql.conf").open("a") as conf_file:
            conf_file.writelines(f"{key} = {value}\n" for key, value in conf.items())

    def start(self, timeout: float = 60) -> None:
        """Start the server on :attr:`port`. A port taken since it was chosen (``free_port``
        only probes: another process, e.g. another test run on this machine, may bind it
        before the server does) gets the server a new free port, up to
        :data:`PORT_ATTEMPTS` times; read :attr:`port` after starting."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            if self.log_file is None or not self.socket_dir.is_dir():
                self._prepare_dirs()
            try:
                self._run([self.tool("pg_ctl"), "-D", str(self.data_dir), "-l",
                           str(self.log_file), "-o", f"-p {self.port} -k {self.socket_dir}",
                           "-w", "-t", str(int(timeout)), "start"], timeout=timeout + 10)
            except subprocess.CalledProcessError:
                # This data directory's own server holding the port (a start again while
                # it runs, a wait that timed out) is not another process's: keep its port.
                if attempt == PORT_ATTEMPTS or postmaster_pid(self.data_dir) is not None \
                        or not port_taken(self.port):
                    raise
                taken, self.port = self.port, free_port()
                log.warning("port %d was taken before postgres could bind it (another process "
                            "on this machine); starting on %d instead", taken, self.port)
                continue
            break
        log.debug("postgres started on port %d (%s)", self.port, self.data_dir)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``immediate`` is a crash (no checkpoint), like a host dying. A
        server that is not running (killed: its ``postmaster.pid`` is stale) is left alone."""
        if postmaster_pid(self.data_dir) is None:
            return
        try:
            self._run([self.tool("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w",
                       "-t", "60", "stop"], timeout=70)
        except subprocess.CalledProcessError as exc:
            log.warning("pg_ctl stop failed for %s: %s", self.data_dir, exc.stderr.strip())

    def kill(self) -> None:
        """SIGKILL the postmaster: the hardest failure, nothing is flushed or shut down."""
        pid = postmaster_pid(self.data_dir)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)

    def promote(self, timeout: float = 60) -> None:
        if postmaster_pid(self.data_dir) is None:
            raise RuntimeError(f"cannot promote {self.data_dir}: its server is not running")
        self._run([self.tool("pg_ctl"), "-D", str(self.data_dir), "-w", "-t", str(int(timeout)),
                   "promote"], timeout=timeout + 10)

    def is_running(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL with the server's own psql; returns unaligned, tuples-only output."""
        result = subprocess.run(
            [self.tool("psql") if (self.bin_dir / "psql").exists() else "psql",
             "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", self.dsn(dbname), "-c", sql],
            check=True, capture_output=True, text=True, timeout=120)
        return result.stdout.strip()

    def base_backup_standby(self, data_dir: Path, port: int) -> PostgresCluster:
        """A streaming-replication standby of this server (``pg_basebackup -R``), not started."""
        standby = PostgresCluster(data_dir=data_dir, port=port, bin_dir=self.bin_dir,
                                  superuser=self.superuser)
        standby._prepare_dirs()
        self._run([self.tool("pg_basebackup"), "-D", str(data_dir), "-h", "127.0.0.1",
                   "-p", str(self.port), "-U", self.superuser, "-R", "-X", "stream",
                   "-c", "fast"], timeout=300)
        standby.append_conf({"port": str(port)})
        return standby

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.is_running():
                return
            time.sleep(0.1)
        raise TimeoutError(f"postgres on port {self.port} did not accept connections")


def run_as_server_user(argv: Sequence[str], timeout: float = 300
                       ) -> subprocess.CompletedProcess[str]:
    """Run a command as the server user (as root through ``runuser``), checked."""
    return subprocess.run(_as_server_user(argv), check=True, capture_output=True, text=True,
                          timeout=timeout)


def server_owned_temp_dir(prefix: str) -> Path:
    """A fresh temp dir the server user owns, this process recorded as its owner
    (:mod:`caresync_dr.pg.orphans` removes it once this process is dead)."""
    base = owned_temp_dir(prefix)
    _chown_to_server_user(base)
    base.chmod(0o755)
    return base


def temp_cluster(prefix: str = "caresync-pg-", *, wal_segment_mb: int | None = None,
                 extra_conf: dict[str, str] | None = None) -> PostgresCluster:
    """A cluster in a fresh temp dir the server user owns (initialised, not started)."""
    base = server_owned_temp_dir(prefix)
    cluster = PostgresCluster(data_dir=base / "data", port=free_port())
    cluster.init(wal_segment_mb=wal_segment_mb, extra_conf=extra_conf)
    return cluster
