"""The ``--report`` file: checked before any work, written atomically on every exit.

A report path is usable when it is, or will be, a regular file (not a directory, a device
such as ``/dev/stdout`` or ``/dev/full``, a FIFO or a socket, nor a symbolic link to one) and
its nearest existing ancestor is a writable directory (missing parents are created when the
report is written). It is checked before the command does anything, so a bad path is one line
and exit 2 with nothing written. A write goes to a unique temporary file beside the target and
is renamed over it: a reader never sees half a report, and a failed write leaves no ``.tmp``
behind. A symbolic link is followed: the file it points to is replaced, the link stays (a
rename over the link itself would replace it, and over ``/dev/stdout`` break the machine).
"""

from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from caresync_dr.cli.errors import ExitCode, UsageError

# How much of an existing output file is read to tell a JSON document from anything else.
JSON_SNIFF_BYTES = 4096
# JSON files that are inputs, never a report: a backup's manifest (caresync_dr.backup.manifest,
# MANIFEST_SUFFIX), which the restore checks the backup against.
INPUT_SUFFIXES = (".manifest.json",)


def _not_regular(path: Path) -> str | None:
    """What ``path`` (a symbolic link followed) is when it exists and is neither a regular
    file nor a directory: "a character device", "a FIFO"...; None otherwise."""
    try:
        mode = path.stat().st_mode
    except OSError:   # missing, or a dangling link: a regular file will be created
        return None
    for test, kind in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return None


def _target(path: Path) -> Path:
    """The file a write to ``path`` replaces: the end of its symbolic links, else itself."""
    return path.resolve() if path.is_symlink() else path


def writable_directory(flag: str, path: Path) -> Path:
    """``path`` is, or can be created as, a directory files can be created in (tried with an
    unnamed temporary file; nothing is left behind, a missing directory is not created here).
    Raises :class:`UsageError` naming ``flag`` and the problem."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path} is not a directory")
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{flag} {path} cannot be created: {ancestor} is a file, not a "
                         "directory")
    try:
        tempfile.TemporaryFile(dir=ancestor, prefix=".caresync-probe-").close()
    except OSError as exc:
        raise UsageError(f"{flag} {path}: cannot create files in {ancestor}: "
                         f"{exc.strerror or exc}") from None
    return path


def writable_file(flag: str, path: Path) -> Path:
    """``path`` can be written as a file: it is not a directory, a device, a FIFO or a socket
    (nor a symbolic link to one), and the nearest existing ancestor of the file it names is a
    directory a file can be created in (tried with an unnamed temporary file, gone when
    closed: bad input changes nothing). Returns ``path`` as given.
    Raises :class:`UsageError` naming ``flag`` and the problem."""
    given = path
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a directory; give a file name")
    kind = _not_regular(path)
    if kind is not None:
        raise UsageError(f"{flag} {path} is {kind}, not a regular file; give a file name")
    path = _target(path)
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{flag} {path} cannot be created: {ancestor} is a file, not a "
                         "directory")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path} cannot be created: {ancestor} is not writable")
    # access() answers yes to root for any directory, /proc and read-only mounts included:
    # only creating a file there says whether one can be (it is removed at once).
    try:
        tempfile.TemporaryFile(dir=ancestor, prefix=".caresync-probe-").close()
    except OSError as exc:
        raise UsageError(f"{flag} {path} cannot be created in {ancestor}: "
                         f"{exc.strerror or exc}") from None
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{flag} {path} exists and is not writable")
    if path.exists() and path.name.endswith(INPUT_SUFFIXES):
        raise UsageError(f"{flag} {given} is a backup's manifest: it would be replaced; give "
                         "another path")
    if path.exists() and not _json_or_empty(path):
        raise UsageError(f"{flag} {given} exists and is not a JSON document (a backup, a key, "
                         "a stack file?): it would be replaced; give another path")
    return given


def _json_or_empty(path: Path) -> bool:
    """The file is empty or starts like a JSON document (a previous report, journal or plan):
    what a report may replace. Only its start is read (it may be a large backup)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(JSON_SNIFF_BYTES)
    except OSError:
        return True       # unreadable: the write itself will say why
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return not start or start[:1] in (b"{", b"[")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a unique temporary file in the same directory, mode
    0600 whatever the umask: reports and manifests name tables, hosts and key ARNs (issue 10
    item 7). An existing file is replaced, never rewritten in place with its old mode; a
    symbolic link is followed (the file it names is replaced, the link stays).
    Raises OSError naming ``path`` (also for a failed write: a full disk), also when ``path``
    is a directory, a device, a FIFO or a socket (it is never replaced); the temporary file
    is removed whatever happens."""
    kind = _not_regular(path)
    if kind is not None or path.is_dir():
        raise OSError(errno.EINVAL if kind else errno.EISDIR,
                      f"not a regular file ({kind or 'a directory'})", str(path))
    path = _target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of our own (O_EXCL: never another writer's file), readable by the owner only.
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is None:   # a failed write or close (a full disk) names no file
            raise type(exc)(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json_report(path: Path, report: dict[str, Any]) -> None:
    """Write a machine-readable report atomically (a reader never sees half a file)."""
    write_text_atomic(path, json.dumps(report, indent=2, sort_keys=True, default=str) + "\n")


def finish_report(report: dict[str, Any], code: ExitCode, started: float,
                  path: Path | None) -> int:
    """End a run: stamp ``exit_code`` and ``duration_seconds`` (since the ``time.monotonic()``
    reading ``started``) on ``report``, write it to ``path`` if one was given, return the code."""
    report.update(exit_code=int(code), duration_seconds=round(time.monotonic() - started, 3))
    if path is not None:
        write_json_report(path, report)
    return int(code)
