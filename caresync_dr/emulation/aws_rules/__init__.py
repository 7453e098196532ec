"""The AWS rules oracle: every offline run of the program checks what it registers.

Pulumi's mocks accept any argument; AWS does not. :data:`RULES` lists one :class:`Rule` per
documented constraint (AWS documentation, API error, provider docstring or issue), grouped by
service in the modules of this package. :func:`enforce` raises :class:`AwsRulesError` naming
each violated rule, the resource's URN and the rule's source; the offline runtime
(``caresync_dr.offline.runtime.run_program``) calls it after every run, so the tests,
``scripts/preview.py`` and the drill's deploy all see it. ``docs/aws-rules.md`` is generated
from :data:`RULES` (``python -m caresync_dr.emulation.aws_rules``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from caresync_dr.emulation.aws_rules import (
    autoscaling,
    backup,
    detection,
    iam,
    iam_resources,
    keys_and_access,
    rds,
    route53,
)
from caresync_dr.emulation.aws_rules import storage_and_network as storage
from caresync_dr.emulation.aws_rules.core import (
    AwsRulesError,
    ResourceLike,
    Rule,
    RunView,
    Violation,
    check_resources,
)

RULES: tuple[Rule, ...] = (*rds.RULES, *keys_and_access.RULES, *route53.RULES, *backup.RULES,
                           *storage.RULES, *detection.RULES, *autoscaling.RULES, *iam.RULES,
                           *iam_resources.RULES)

__all__ = ["RULES", "AwsRulesError", "Rule", "RunView", "Violation", "check", "enforce",
           "rules_table"]


def check(stack: str, region: str, resources: Sequence[ResourceLike], *,
          config: Mapping[str, str] | None = None, outputs: Mapping[str, Any] | None = None,
          rules: Iterable[Rule] = RULES) -> list[Violation]:
    """Every violation in one run. ``config`` holds the stack's settings without the project
    prefix (``dbEngineVersion``...), ``outputs`` its resolved stack outputs."""
    view = RunView(stack=stack, region=region, resources=resources, config=dict(config or {}),
                   outputs=dict(outputs or {}))
    return check_resources(view, rules)


def enforce(stack: str, region: str, resources: Sequence[ResourceLike], *,
            config: Mapping[str, str] | None = None,
            outputs: Mapping[str, Any] | None = None) -> None:
    violations = check(stack, region, resources, config=config, outputs=outputs)
    if violations:
        raise AwsRulesError(stack, violations)


def rules_table(rules: Iterable[Rule] = RULES) -> str:
    """The Markdown table of docs/aws-rules.md (generated; a test keeps the file in sync)."""
    lines = ["| rule | what AWS requires | applies to | source |", "|---|---|---|---|"]
    for rule in rules:
        types = ", ".join(f"`{t.split(':')[-1]}`" for t in rule.types)
        lines.append(f"| `{rule.name}` | {rule.summary} | {types} | {rule.source} |")
    return "\n".join(lines) + "\n"
