"""Temp clusters whose owner was killed: found by the owner recorded in them, stopped, removed.

Every temp directory :mod:`caresync_dr.pg.cluster` creates holds :data:`OWNER_FILE`: the
creating process's PID, its start time (``/proc/<pid>/stat`` field 22, clock ticks since boot)
and the boot id. A PID alone is not an owner: Linux recycles PIDs, so a directory is an orphan
only when no process with that PID *and* that start time runs in this boot. A killed drill
(SIGKILL, OOM, a closed terminal) runs no cleanup, so its directories and their postmasters stay;
:func:`sweep` stops each such postmaster with ``pg_ctl stop -m immediate`` (the data is
throwaway) and removes the directory, one sentence each. It never touches a directory whose
owner lives (tests of other worktrees share ``/tmp`` and run at the same time), one without an
owner record (being created right now, or made by an older version: left alone, said so), one
kept for inspection (``--keep``), or one another user recorded. Like
:mod:`caresync_dr.backup.leftovers`, which clears what a killed restore leaves.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

OWNER_FILE = ".caresync-owner.json"
DRILL_PREFIX = "caresync-drill-"
_owned: list[Path] = []   # what this process recorded, for :func:`keep_owned`


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (``/proc/<pid>/stat`` field 22); None
    when no such process runs (a zombie nobody reaped is dead too)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # fields[0] is field 3 (state); field 22 is fields[19]
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


@dataclass(frozen=True)
class Owner:
    """The process that created a directory, told apart from a later one with its PID."""

    pid: int
    start_ticks: int
    boot_id: str
    kept: bool = False

    @classmethod
    def current(cls) -> Owner:
        pid = os.getpid()
        return cls(pid=pid, start_ticks=start_ticks(pid) or 0, boot_id=boot_id())

    def alive(self) -> bool:
        return self.boot_id == boot_id() and start_ticks(self.pid) == self.start_ticks


def record_owner(directory: Path) -> None:
    """Write this process into ``directory`` as its owner (root-owned file even when the
    directory belongs to the server user, so the server user cannot forge one)."""
    marker = directory / OWNER_FILE
    marker.write_text(json.dumps(asdict(Owner.current())) + "\n")
    _owned.append(directory)


def owned_temp_dir(prefix: str) -> Path:
    """``tempfile.mkdtemp(prefix=...)`` with this process recorded as its owner."""
    directory = Path(tempfile.mkdtemp(prefix=prefix))
    record_owner(directory)
    return directory


def keep_owned() -> None:
    """``--keep``: mark every directory this process recorded as kept for inspection, so no
    later sweep removes it once this process has exited."""
    for directory in _owned:
        with contextlib.suppress(OSError):
            owner = read_owner(directory)
            if owner is not None:
                (directory / OWNER_FILE).write_text(
                    json.dumps(asdict(Owner(owner.pid, owner.start_ticks, owner.boot_id,
                                            kept=True))) + "\n")


def read_owner(directory: Path) -> Owner | None:
    """The recorded owner; None when there is none, it is unreadable, or it is not this
    user's (only a record written by this user may lead to a removal)."""
    marker = directory / OWNER_FILE
    try:
        if marker.is_symlink() or marker.stat().st_uid != os.getuid():
            return None
        data = json.loads(marker.read_text())
        return Owner(pid=int(data["pid"]), start_ticks=int(data["start_ticks"]),
                     boot_id=str(data["boot_id"]), kept=bool(data.get("kept", False)))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _stop_postmasters(directory: Path) -> list[str]:
    from caresync_dr.pg.cluster import PostgresCluster, find_pg_bin, postmaster_pid

    stopped = []
    for pid_file in sorted(directory.glob("*/postmaster.pid")):
        data_dir = pid_file.parent
        pid = postmaster_pid(data_dir)   # a stale file's PID may be anyone's now
        if pid is None:
            continue
        PostgresCluster(data_dir=data_dir, port=0, bin_dir=find_pg_bin()).stop(mode="immediate")
        if postmaster_pid(data_dir) is not None:   # pg_ctl failed: the data is going anyway
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        stopped.append(f"postmaster {pid}")
    return stopped


def sweep(base: Path | None = None, prefix: str = DRILL_PREFIX) -> list[str]:
    """Stop and remove the ``prefix*`` directories under ``base`` (default: the temp dir)
    whose recorded owner is dead; returns one sentence per directory removed (logged as a
    warning) or left alone for a reason an operator may need (no owner record, kept)."""
    done = []
    for path in sorted((base or Path(tempfile.gettempdir())).glob(f"{prefix}*")):
        if path.is_symlink() or not path.is_dir():
            continue
        owner = read_owner(path)
        if owner is None:
            if not (path / OWNER_FILE).exists():
                done.append(f"left {path}: it records no owner (being created, or made by an "
                            "older version); remove it by hand once no drill uses it")
            continue
        if owner.alive():
            continue
        if owner.kept:
            done.append(f"left {path}: kept for inspection (--keep) by process {owner.pid}")
            continue
        stopped = _stop_postmasters(path)
        shutil.rmtree(path, ignore_errors=True)
        done.append(f"removed {path} of killed process {owner.pid}"
                    + (f" (stopped {', '.join(stopped)})" if stopped else ""))
    for sentence in done:
        log.log(logging.WARNING if sentence.startswith("removed") else logging.INFO,
                "%s", sentence)
    return done
