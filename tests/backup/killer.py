"""Run a restore command and SIGKILL it at a named point (the kill-point tests' child process).

    python -m tests.backup.killer [--pause] POINT restore|restore_check ARGS...

The point is reached through the real code path: a function the restore calls is wrapped so
that the process kills itself (SIGKILL: no cleanup, no finally, no atexit) at that moment. With
``--pause`` it prints PAUSED instead and waits there, for the test to send it a signal.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import psycopg

from caresync_dr.backup import copier, plain_sql, restore, rollback, tools

PAUSE = sys.argv[1:2] == ["--pause"]


def die() -> None:
    sys.stderr.flush()
    if PAUSE:
        print("PAUSED", file=sys.stderr, flush=True)
        time.sleep(60)
        return
    os.kill(os.getpid(), signal.SIGKILL)


def _after_calls(module: Any, name: str, count: int = 1) -> None:
    """Die when ``module.name`` is called for the ``count``-th time, before it runs."""
    real = getattr(module, name)
    calls = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] >= count:
            die()
        return real(*args, **kwargs)

    setattr(module, name, wrapper)


def _while_tool_runs(what: str) -> None:
    """Die while a pg_restore whose description contains ``what`` is running."""
    real_start = tools.start_tool

    def start(argv: Any, **kwargs: Any) -> Any:
        proc = real_start(argv, **kwargs)
        if what in " ".join(map(str, argv)) or what == "any":
            time.sleep(0.2)
            print(f"child pid {proc.pid}", file=sys.stderr)
            die()
        return proc

    for module in (tools, plain_sql):  # plain_sql holds its own reference
        setattr(module, "start_tool", start)  # noqa: B010


def _in_sql(fragment: str, occurrence: int = 1) -> None:
    """Die right after the ``occurrence``-th statement containing ``fragment`` ran."""
    real = psycopg.Connection.execute
    seen = [0]

    def execute(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(self, query, *args, **kwargs)
        text = query if isinstance(query, str) else query.as_string(self)
        if fragment in text:
            seen[0] += 1
            if seen[0] == occurrence:
                die()
        return result

    psycopg.Connection.execute = execute  # type: ignore[method-assign]


def _after_swap() -> None:
    """Die right after the swap committed, before anything is reported."""
    real = getattr(rollback, "swap")  # noqa: B009

    def swap_then_die(*args: Any, **kwargs: Any) -> None:
        real(*args, **kwargs)
        die()

    setattr(rollback, "swap", swap_then_die)  # noqa: B010


POINTS: dict[str, Callable[[], None]] = {
    "pre-data": lambda: _while_tool_runs("--section=pre-data"),
    "stream": lambda: _after_calls(copier.TableCopier, "on_table_data", 2),
    "post-data": lambda: _while_tool_runs("--section=post-data"),
    "verify": lambda: _after_calls(rollback, "verify_load"),
    "swap-terminate": lambda: _in_sql("pg_terminate_backend"),
    "swap-rename": lambda: _in_sql("RENAME TO"),
    "after-swap": _after_swap,
    "plain-sql": lambda: _while_tool_runs("psql"),
    "decrypt": lambda: _after_calls(getattr(restore, "Progress"), "add", 1),  # noqa: B009
}


def main(argv: list[str]) -> int:
    point, command, *rest = argv[1:] if PAUSE else argv
    POINTS[point]()
    if command == "restore":
        from caresync_dr.commands import rollback as script
    else:
        from caresync_dr.commands import restore_check as script  # type: ignore[no-redef]
    return int(script.main(rest))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
