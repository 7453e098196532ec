"""What the operator sees before a change: the plan, and the question that guards the run."""

from __future__ import annotations

from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.failover.context import FailoverContext
from caresync_dr.failover.errors import RefusedError
from caresync_dr.failover.plan import build_plan


def confirm(ctx: FailoverContext, stdin: TextIO, prompt_out: TextIO) -> None:
    """Ask the operator to type the stack name; anything else refuses (nothing changed)."""
    stack = ctx.options.stack
    prompt_out.write(f"\nThis promotes {ctx.target_database} in {ctx.target.region} and "
                     f"moves traffic. Type the stack name ({stack}) to go on: ")
    prompt_out.flush()
    answer = stdin.readline()
    if not answer:
        raise RefusedError("no confirmation: stdin is closed or not a terminal; run from a "
                           "terminal, or pass --yes to run unattended. Nothing was changed")
    if answer.strip() != stack:
        raise RefusedError(f"confirmation {answer.strip()!r} does not match the stack name "
                           f"{stack!r}; nothing was changed")


def plan_rows(ctx: FailoverContext, live: bool) -> list[dict[str, Any]]:
    """The steps in order. ``live``: also each step's check of the state it sees now (dry run);
    a real run skips that, so an unreachable region does not delay it before it starts."""
    rows: list[dict[str, Any]] = []
    for stage in build_plan(ctx.options.scope):
        for step in stage.steps:
            row: dict[str, Any] = {
                "step": step.name, "title": step.title, "bestEffort": step.best_effort,
                "concurrent": len(stage.steps) > 1, "background": stage.background,
                "expectedSeconds": step.expected_seconds}
            if live:
                try:
                    verdict = step.check(ctx)
                    row["sees"], row["sentence"] = verdict.kind, verdict.sentence
                except (ClientError, BotoCoreError) as exc:
                    row["sees"], row["sentence"] = "unknown", f"cannot read state: {exc}"
            rows.append(row)
    return rows


def render_plan(ctx: FailoverContext, rows: list[dict[str, Any]]) -> str:
    lines = [f"Plan ({ctx.options.scope} failover, stack {ctx.options.stack}):"]
    for number, row in enumerate(rows, 1):
        flags = ("best effort" if row["bestEffort"] else "required")
        flags += " | concurrently" if row["concurrent"] else ""
        flags += " | background, never waited on" if row["background"] else ""
        lines.append(f"  {number}. {row['title']} [{flags}; ~{row['expectedSeconds']:.0f} s]")
        if "sees" in row:
            lines.append(f"       {row['sees']}: {row['sentence']}")
    return "\n".join(lines)
