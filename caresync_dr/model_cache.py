"""botocore's JSON data files, kept parsed on disk like Python's bytecode.

Every process that builds a botocore client parses that service's model (EC2's is 4 MB of
JSON) and, once, the 1.2 MB endpoint table: about 0.07 CPU-s for the seven clients
failover.py builds before its promotion request, at every start. Here each file is stored once
more, as :mod:`marshal` data (what ``.pyc`` files hold) with every repeated string stored once
(a model repeats ``"shape"``, ``"structure"``, ``"member"``... tens of thousands of times),
which loads about 3x faster than the JSON.

- An entry is found by the source file's path, modification time and size, and this
  interpreter's version (marshal's format is version-specific): a botocore upgrade misses and
  parses afresh.
- Each entry carries its length and CRC-32: a damaged file is never used, nor one that holds
  anything but a JSON object (what every botocore data file is).
- Entries are written atomically (a temporary file, then a rename), so concurrent processes
  never read half an entry; a miss is written when the process exits (:meth:`ModelCache.flush`,
  from the source again), so it costs the run that missed nothing on its way.
- Only a directory this user owns and nobody else may write is used: default
  ``$XDG_CACHE_HOME/caresync-dr/botocore-models``, else ``~/.cache/caresync-dr/...``; the
  environment variable :data:`ENV_CACHE_DIR` names another, ``off`` switches the cache off.
  (The test suite points it at a directory of its own session: tests/conftest.py.)
- Its size is bounded: entries live in one subdirectory per *generation* (the installed
  botocore's version, the interpreter's version and marshal's format), and a process that
  wrote entries then removes every other generation's (an upgrade leaves nothing behind) and,
  beyond :data:`MAX_BYTES`, its own generation's oldest (a reinstall of the same version).
  Pruning removes only names this cache gives (:data:`ENTRY_NAME`, :data:`GENERATION_NAME`):
  the directory may hold other files.

When the cache cannot be used, files are parsed as before: it only ever saves time.
"""

from __future__ import annotations

import atexit
import contextlib
import gzip
import hashlib
import json
import logging
import marshal
import os
import re
import stat
import struct
import sys
import tempfile
import threading
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from caresync_dr.startup import collection_paused

log = logging.getLogger(__name__)
ENV_CACHE_DIR = "CARESYNC_DR_MODEL_CACHE"
HEADER = struct.Struct("<QI")   # the payload's length and CRC-32
SUFFIX = ".marshal"
GENERATION_PREFIX = "botocore-"
# The only names pruning removes: the directory may be shared with other files
# (ENV_CACHE_DIR names any directory of this user).
ENTRY_NAME = re.compile(r"[0-9a-f]{32}" + re.escape(SUFFIX))
GENERATION_NAME = re.compile(re.escape(GENERATION_PREFIX)
                             + r"[0-9][0-9A-Za-z.+-]*-py[0-9]+\.[0-9]+\.[0-9]+-marshal[0-9]+")
# The files of the ~30 services the commands and drills load take ~10 MB. Entries are keyed by
# the source's path as given, so each worktree's venv link, and each reinstall of the same
# botocore (new mtimes), adds a set: this bounds them.
MAX_BYTES = 64 * 1024 * 1024


def current_generation() -> str:
    """The subdirectory name of the installed botocore's entries for this interpreter."""
    import botocore

    python = ".".join(str(part) for part in sys.version_info[:3])
    return f"{GENERATION_PREFIX}{botocore.__version__}-py{python}-marshal{marshal.version}"


def default_directory(environ: Mapping[str, str] | None = None) -> Path | None:
    """Where entries go: :data:`ENV_CACHE_DIR`, else the user's cache directory; None when
    switched off (``off``, ``0``, ``no``, empty) or no home directory is known."""
    env = os.environ if environ is None else environ
    configured = env.get(ENV_CACHE_DIR)
    if configured is not None:
        off = configured.strip().lower() in ("", "off", "0", "no")
        return None if off else Path(configured)
    base = env.get("XDG_CACHE_HOME") or (
        os.path.join(env["HOME"], ".cache") if env.get("HOME") else None)
    return Path(base) / "caresync-dr" / "botocore-models" if base else None


def parse_json_file(path: str) -> Any:
    """A botocore data file (``.json`` or ``.json.gz``) parsed into plain dicts and lists."""
    opener: Any = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as stream:
        return json.loads(stream.read().decode("utf-8"))


class ModelCache:
    """Parsed JSON files by source (path, modification time, size). ``directory`` None: a
    cache that finds nothing and writes nothing. Entries go to ``directory / generation``
    (default :func:`current_generation`); ``max_bytes`` bounds that generation's size."""

    def __init__(self, directory: Path | None, generation: str | None = None,
                 max_bytes: int = MAX_BYTES) -> None:
        self.directory = directory
        self.generation = generation or current_generation()
        self.max_bytes = max_bytes
        self._usable: bool | None = None
        self._missed: dict[str, os.stat_result] = {}
        self._derived: dict[Path, Any] = {}
        self._mutex = threading.Lock()
        self._flush_registered = False

    def usable(self) -> bool:
        """The directory exists (created 0700 if need be), is this user's and nobody else may
        write it: its entries are trusted data, like bytecode."""
        if self._usable is None:
            self._usable = (self.directory is not None and _private_directory(self.directory)
                            and _private_directory(self.directory / self.generation))
        return self._usable

    def entry(self, source: str, info: os.stat_result) -> Path | None:
        """Where ``source`` as it is now (``info``) is kept; None when the cache is off."""
        if not self.usable():
            return None
        assert self.directory is not None
        key = "\0".join((os.path.abspath(source), str(info.st_mtime_ns), str(info.st_size),
                         str(marshal.version), sys.version))
        return self.directory / self.generation / (
            hashlib.blake2b(key.encode(), digest_size=16).hexdigest() + SUFFIX)

    def load(self, source: str, info: os.stat_result) -> Any | None:
        """The parsed data of ``source`` as kept earlier, or None (no entry, a damaged one, or
        the cache is off). A miss is remembered and written by :meth:`flush`."""
        path = self.entry(source, info)
        if path is None:
            return None
        data = read_entry(path)
        if not isinstance(data, dict):      # every botocore data file is a JSON object
            data = None
            with self._mutex:
                self._missed[source] = info
                self._flush_at_exit()
        return data

    def keep(self, path: Path, data: Any) -> None:
        """Write ``data`` at ``path`` (an :meth:`entry`) with :meth:`flush`, not now: data
        derived from a missed file costs the run that missed nothing on its way either."""
        with self._mutex:
            self._derived[path] = data
            self._flush_at_exit()

    def _flush_at_exit(self) -> None:
        if not self._flush_registered:
            atexit.register(self.flush)
            self._flush_registered = True

    def flush(self) -> int:
        """Write an entry for every file this process missed (parsed again from its source,
        which must not have changed since) and every :meth:`keep`; returns how many were
        written. Best effort."""
        with self._mutex:
            missed, self._missed = self._missed, {}
            derived, self._derived = self._derived, {}
        written = sum(1 for path, data in derived.items() if write_entry(path, data))
        for source, info in missed.items():
            try:
                now = os.stat(source)
            except OSError:
                continue
            if (now.st_mtime_ns, now.st_size) != (info.st_mtime_ns, info.st_size):
                continue
            path = self.entry(source, now)
            try:
                data = parse_json_file(source)
            except (OSError, ValueError) as exc:
                log.debug("model cache: cannot parse %s: %s", source, exc)
                continue
            if path is not None and write_entry(path, data):
                written += 1
        if written:
            self.prune()
        return written

    def prune(self) -> int:
        """Remove other generations' entries (and those of the flat layout before
        generations), then this generation's oldest beyond ``max_bytes``; returns how many
        entries were removed. Only entry files are removed, never a temporary file another
        process is writing. Best effort."""
        if not self.usable():
            return 0
        assert self.directory is not None
        removed = sum(_remove_entries(path) for path in self._other_generations())
        removed += _remove_entries(self.directory, keep=0, rmdir=False)
        removed += _remove_entries(self.directory / self.generation, keep=self.max_bytes,
                                   rmdir=False)
        if removed:
            log.debug("model cache %s: %d old entries removed", self.directory, removed)
        return removed

    def _other_generations(self) -> list[Path]:
        assert self.directory is not None
        try:
            return [path for path in self.directory.iterdir()
                    if GENERATION_NAME.fullmatch(path.name) and path.name != self.generation
                    and path.is_dir() and not path.is_symlink()]
        except OSError:
            return []


def _remove_entries(directory: Path, keep: int = 0, rmdir: bool = True) -> int:
    """Remove ``directory``'s entries, oldest first, until those left take at most ``keep``
    bytes; then the directory itself when ``rmdir`` and it is empty."""
    entries: list[tuple[int, int, Path]] = []
    try:
        for path in directory.iterdir():
            if ENTRY_NAME.fullmatch(path.name):
                with contextlib.suppress(OSError):
                    info = path.lstat()
                    if stat.S_ISREG(info.st_mode):
                        entries.append((info.st_mtime_ns, info.st_size, path))
    except OSError:
        return 0
    entries.sort()
    total = sum(size for _, size, _ in entries)
    removed = 0
    for _, size, path in entries:
        if total <= keep:
            break
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass            # another process removed it
        except OSError as exc:
            log.debug("could not remove the model cache entry %s: %s", path, exc)
            continue
        total -= size
    if rmdir:
        with contextlib.suppress(OSError):
            directory.rmdir()
    return removed


def read_entry(path: Path) -> Any | None:
    """The data kept at ``path`` (an :meth:`ModelCache.entry`), or None: missing, not a
    regular file (a symlink is not followed), damaged (length or CRC-32 differ), or not
    marshal data."""
    try:    # a regular file only, never through a symlink: a FIFO or a device never ends
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            log.debug("model cache entry %s is not a regular file: not used", path)
            return None
        with os.fdopen(fd, "rb", closefd=False) as stream:
            raw = stream.read()
    except OSError:
        return None
    finally:
        os.close(fd)
    header, payload = raw[:HEADER.size], raw[HEADER.size:]
    if len(header) != HEADER.size or HEADER.unpack(header) != (len(payload),
                                                               zlib.crc32(payload)):
        if raw:
            log.debug("model cache entry %s is damaged: not used", path)
        return None
    # Tens of thousands of containers built at once, none of them garbage: the cyclic
    # collector would walk them several times over while they are made. Paused through its
    # one owner: other threads pause and resume it too (failover.py's start-up).
    with collection_paused():
        try:
            return marshal.loads(payload)
        except (EOFError, ValueError, TypeError):
            return None


def write_entry(path: Path, data: Any) -> bool:
    """Keep ``data`` (plain JSON-like data; tuples too) at ``path`` atomically; False when it
    could not be written (best effort: the cache only ever saves time)."""
    try:
        payload = marshal.dumps(_shared_strings(data, {}))
    except ValueError:      # not plain JSON data: nothing to keep
        return False
    try:
        fd, tmp = tempfile.mkstemp(prefix=".entry-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(HEADER.pack(len(payload), zlib.crc32(payload)) + payload)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        log.debug("could not write the model cache entry %s: %s", path, exc)
        return False
    return True


def _shared_strings(data: Any, seen: dict[str, str]) -> Any:
    """``data`` with equal strings made one object, which marshal then writes once."""
    if isinstance(data, dict):
        return {seen.setdefault(k, k) if isinstance(k, str) else k: _shared_strings(v, seen)
                for k, v in data.items()}
    if isinstance(data, list):
        return [_shared_strings(v, seen) for v in data]
    if isinstance(data, str):
        return seen.setdefault(data, data)
    return data


def _private_directory(directory: Path) -> bool:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.stat()
    except OSError:
        return False
    owned = not hasattr(os, "getuid") or info.st_uid == os.getuid()
    private = not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if not (owned and private and stat.S_ISDIR(info.st_mode)):
        log.debug("model cache %s is not a private directory of this user: not used", directory)
        return False
    return True
