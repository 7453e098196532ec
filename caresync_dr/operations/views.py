"""What the operator sees before a change: the plan, and the question that guards the run."""

from __future__ import annotations

from typing import Any, TextIO, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.cli.errors import RefusedError
from caresync_dr.operations.steps import Stage

C = TypeVar("C")


def confirm(question: str, expected: str, stdin: TextIO, prompt_out: TextIO) -> None:
    """Ask the operator to type ``expected`` (the stack name); anything else refuses (nothing
    changed). A closed stdin (no terminal) refuses too: unattended runs pass ``--yes``."""
    prompt_out.write(f"\n{question} Type the stack name ({expected}) to go on: ")
    prompt_out.flush()
    answer = stdin.readline()
    if not answer:
        raise RefusedError("no confirmation: stdin is closed or not a terminal; run from a "
                           "terminal, or pass --yes to run unattended. Nothing was changed")
    if answer.strip() != expected:
        raise RefusedError(f"confirmation {answer.strip()!r} does not match the stack name "
                           f"{expected!r}; nothing was changed")


def plan_rows(plan: tuple[Stage[C], ...], ctx: C, live: bool) -> list[dict[str, Any]]:
    """The steps in order. ``live``: also each step's check of the state it sees now (dry run);
    a real run skips that, so an unreachable region does not delay it before it starts."""
    rows: list[dict[str, Any]] = []
    for stage in plan:
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


def render_plan(title: str, rows: list[dict[str, Any]]) -> str:
    lines = [f"Plan ({title}):"]
    for number, row in enumerate(rows, 1):
        flags = ("best effort" if row["bestEffort"] else "required")
        flags += " | concurrently" if row["concurrent"] else ""
        flags += " | background, never waited on" if row["background"] else ""
        lines.append(f"  {number}. {row['title']} [{flags}; ~{row['expectedSeconds']:.0f} s]")
        if "sees" in row:
            lines.append(f"       {row['sees']}: {row['sentence']}")
    return "\n".join(lines)
