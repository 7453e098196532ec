"""Readiness checks: the rows of ``--check``, and the preflight a real run (and a dry run)
must pass before its first change."""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

from caresync_dr.operations.pools import ReadPool
from caresync_dr.operations.steps import Stage, Touched, all_steps

C = TypeVar("C")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    blocks: bool = True        # a real run refuses when this fails
    overridden: bool = False   # failed, but the operator told us to go on (--force)

    @property
    def result(self) -> str:
        return "OVERRIDE" if self.overridden else ("ok" if self.ok else "FAIL")


def _aws_errors() -> tuple[type[BaseException], ...]:
    if "botocore" not in sys.modules:
        return ()
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


def guard(name: str, blocks: bool, body: Callable[[], Check]) -> Check:
    """A probe that errors is a failed check naming the error, never a crash."""
    try:
        return body()
    except _aws_errors() as exc:
        return Check(name, False, f"could not read: {exc}", blocks)


def resource_checks(plan: tuple[Stage[C], ...], ctx: C) -> list[Check]:
    """One row per resource the plan's steps declare (:meth:`Step.touches`), each read once,
    the reads concurrently (each waits on the network; a run starts sooner), rows in plan
    order."""
    touched: list[Touched] = []
    seen: set[Hashable] = set()
    for step in all_steps(plan):
        for resource in step.touches(ctx):
            if resource.key not in seen:
                seen.add(resource.key)
                touched.append(resource)

    def row(resource: Touched) -> Check:
        def read() -> Check:
            found = resource.read()
            return Check(resource.label, found.ok, found.detail)

        return guard(resource.label, True, read)

    if not touched:
        return []
    with ReadPool(max_workers=min(8, len(touched)), thread_name_prefix="resource-read") as pool:
        return list(pool.map(row, touched))


def refusals(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.blocks and not c.ok and not c.overridden]


def render_table(checks: list[Check]) -> str:
    width = max([len(c.name) for c in checks] + [5])
    lines = [f"{'CHECK'.ljust(width)}  RESULT    DETAIL"]
    lines += [f"{c.name.ljust(width)}  {c.result.ljust(8)}  {c.detail}" for c in checks]
    return "\n".join(lines)
