"""pg_restore on an archive that has no name on disk, and what it says went wrong.

The archive (here only ever a table of contents: schema, no rows) is an anonymous file
(``O_TMPFILE``): it has no name and disappears with the last process holding it, even after
SIGKILL; pg_restore reads it through ``/proc/self/fd/N``.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from caresync_dr.backup.archive import ArchiveHead
from caresync_dr.backup.errors import BackupError
from caresync_dr.backup.tools import client_command, pg_tool, run_tool

log = logging.getLogger(__name__)

# Session settings for the restore's own connections (never the server's configuration): bigger
# sort memory makes index builds faster; work_mem lets the foreign-key validation queries hash in
# memory instead of spilling to disk; a crash mid-restore is harmless (the scratch database is
# dropped and redone), so commits need not wait for the WAL flush.
RESTORE_SETTINGS = {"maintenance_work_mem": "512MB", "work_mem": "128MB",
                    "synchronous_commit": "off"}
RESTORE_PGOPTIONS = " ".join(f"-c {k}={v}" for k, v in RESTORE_SETTINGS.items())


def anonymous_file(directory: Path | None = None) -> int:
    """A read-write file descriptor of a file with no name (``O_TMPFILE``, mode 600): its
    contents vanish when the last descriptor closes, however the process ends."""
    where = str(directory or tempfile.gettempdir())
    try:
        return os.open(where, os.O_TMPFILE | os.O_RDWR, 0o600)
    except (AttributeError, OSError):  # a filesystem without O_TMPFILE: name it, then unlink
        fd, path = tempfile.mkstemp(dir=where, prefix=".caresync-restore-")
        os.unlink(path)
        return fd


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class PgRestore:
    """Runs pg_restore on an archive held by an anonymous file descriptor."""

    def __init__(self, archive_fd: int, target_url: str, bin_dir: Path | None,
                 work_dir: Path | None, continue_on_error: bool, *,
                 head: ArchiveHead | None = None) -> None:
        self.fd = archive_fd
        self.head = head
        self.target_url = target_url
        self.bin_dir = bin_dir
        self.work_dir = work_dir
        self.continue_on_error = continue_on_error
        self.failed: list[str] = []

    def run(self, *options: str, entries: Iterable[int] | None = None, what: str) -> None:
        dsn, env = client_command(self.target_url)
        env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " " + RESTORE_PGOPTIONS).strip()
        fds = [self.fd]
        argv = [pg_tool("pg_restore", self.bin_dir), *options, "--dbname", dsn]
        if not self.continue_on_error:
            argv.append("--exit-on-error")
        list_fd = -1
        if entries is not None:
            list_fd = anonymous_file(self.work_dir)
            write_all(list_fd, "".join(f"{i};\n" for i in entries).encode())
            os.lseek(list_fd, 0, os.SEEK_SET)
            fds.append(list_fd)
            argv += ["--use-list", f"/proc/self/fd/{list_fd}"]
        argv.append(f"/proc/self/fd/{self.fd}")
        clock = time.monotonic()
        try:
            code, errors = run_tool(argv, env=env, pass_fds=fds)
        finally:
            if list_fd >= 0:
                os.close(list_fd)
        log.info("pg_restore %s: %.1f s", what, time.monotonic() - clock)
        if code != 0:
            if not self.continue_on_error:
                raise BackupError(f"pg_restore ({what}) failed (exit {code}): {errors[-2000:]}")
            self.failed += failed_objects(errors, self.head) or [errors[-500:]]


def failed_objects(pg_restore_errors: str, head: ArchiveHead | None = None) -> list[str]:
    """Each object pg_restore could not restore, as "<kind> <schema> <name>: <error>".

    pg_restore reports ``could not execute query: ERROR: ...`` then ``Command was: <SQL>``
    (in parallel mode without naming the TOC entry): the statement is matched back to the
    archive's entry that holds it.
    """
    by_statement: dict[str, str] = {}
    for entry in head.entries if head else ():
        first = entry.defn.strip().splitlines()[0] if entry.defn.strip() else ""
        if first:
            by_statement.setdefault(first, f"{entry.desc} {entry.namespace} {entry.tag}".replace(
                "  ", " "))
    failed: list[str] = []
    error = ""
    for line in pg_restore_errors.splitlines():
        if "could not execute query:" in line:
            error = line.split("could not execute query:", 1)[1].strip()
        elif line.startswith("Command was:") and error:
            command = line.removeprefix("Command was:").strip()
            failed.append(f"{by_statement.get(command, command)}: {error}")
            error = ""
        elif line.startswith("pg_restore: error:") and not error:
            failed.append(line.removeprefix("pg_restore: error:").strip())
    return failed
