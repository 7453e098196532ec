"""botocore's Python names of AWS operations, kept beside the model cache between runs.

Every client build turns each operation name of its service into a method name
(``botocore.xform_name``: two regular-expression substitutions per name; EC2 has ~750
operations). botocore memoises the results in a module dictionary, for one process only: the
seven clients failover.py builds before its promotion request spend ~8 ms of CPU on it at every
start (measured: 60 vs 52 ms for the seven builds, six runs each). :func:`preload` fills that
dictionary from the previous runs' names; :func:`save` keeps what this process added.

The entry is keyed by botocore's ``__init__.py`` as installed (path, modification time, size:
the transformation's code lives there), so an upgrade starts afresh; it lives in the model
cache's directory, under the same trust rules (:mod:`caresync_dr.model_cache`), and a damaged
or unexpected entry is ignored. A name that is not in it is transformed as before.
"""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path
from typing import Any, TypeGuard

import botocore

from caresync_dr.model_cache import ModelCache, read_entry, write_entry

_LOADED = threading.Lock()
_STATE: dict[str, int] = {}       # "loaded": how many names the cache held after preload


def _names() -> dict[tuple[str, str], str] | None:
    names = getattr(botocore, "_xform_cache", None)
    return names if isinstance(names, dict) else None


def _entry(cache: ModelCache) -> Path | None:
    try:
        info = os.stat(botocore.__file__)
    except (OSError, TypeError):
        return None
    return cache.entry(f"{botocore.__file__}#xform-names", info)


def _valid(data: Any) -> TypeGuard[dict[tuple[str, str], str]]:
    return isinstance(data, dict) and all(
        isinstance(k, tuple) and len(k) == 2 and isinstance(k[0], str) and isinstance(k[1], str)
        and isinstance(v, str) for k, v in data.items())


def preload(cache: ModelCache) -> int:
    """Fill botocore's name memo from ``cache`` (once per process) and keep it there again
    when the process exits (:func:`save`); returns how many names were added."""
    names = _names()
    with _LOADED:
        if names is None or "loaded" in _STATE:
            return 0
        path = _entry(cache)
        kept = None if path is None else read_entry(path)
        added = 0
        if _valid(kept):
            before = len(names)
            for key, value in kept.items():
                names.setdefault(key, value)
            added = len(names) - before
        _STATE["loaded"] = len(names)
    atexit.register(save, cache)
    return added


def save(cache: ModelCache) -> bool:
    """Keep botocore's name memo in ``cache`` when this process added names to it since
    :func:`preload` (or ever, without one). Best effort; True when written."""
    names = _names()
    if names is None or len(names) <= _STATE.get("loaded", 0):
        return False
    path = _entry(cache)
    if path is None:
        return False
    snapshot = dict(names)
    if write_entry(path, snapshot):
        _STATE["loaded"] = len(snapshot)
        return True
    return False
