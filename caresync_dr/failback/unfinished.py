"""Runs in the other direction that a failover must name when it finds nothing to do.

After a failover, the re-protection (``failback.py``) and the planned switchover home
(``switchover.py``) keep their own journals in the standby region, beside the failover's, under
the failover's lock. While one of them is unfinished, the promoted standby is still the writer,
so a failover rerun finds itself "already failed over": without naming that run, "nothing to
do" hides that the way home stopped part-way and must be continued with ``--resume``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.names import FAILBACK_JOURNAL_PARAMETER, SWITCHOVER_JOURNAL_PARAMETER
from caresync_dr.operations.engine import UNFINISHED
from caresync_dr.operations.journal import Journal

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

# (operation, its journal parameter, the command that continues it)
REVERSE_RUNS = (("failback", FAILBACK_JOURNAL_PARAMETER, "caresync-failback"),
                ("switchover", SWITCHOVER_JOURNAL_PARAMETER, "caresync-switchover"))


def unfinished_reverse_runs(ssm: SSMClient) -> list[str]:
    """One sentence per unfinished failback or switchover run found in the standby region's
    journals (``ssm``: an SSM client there), naming the run and the command that continues
    it; a journal that cannot be read is said so. Empty when none is unfinished."""
    sentences = []
    for operation, parameter, command in REVERSE_RUNS:
        try:
            journal = Journal(ssm, parameter, None).load()
        except (ClientError, BotoCoreError) as exc:
            sentences.append(f"the {operation} journal {parameter} could not be read ({exc}): "
                             f"check for an unfinished {operation} run before anything else")
            continue
        if journal is None or journal.get("status") not in UNFINISHED:
            continue
        sentences.append(f"a {operation} run {journal.get('runId', '?')} (started "
                         f"{journal.get('startedAt', '?')}) did not finish (status "
                         f"{journal.get('status')}): continue it with "
                         f"`{command} {_arguments(operation, journal)}--resume`")
    return sentences


def _arguments(operation: str, journal: dict[str, Any]) -> str:
    stack = journal.get("stack")
    words = [f"--stack {stack}"] if isinstance(stack, str) and stack else []
    if operation == "switchover" and journal.get("to") in ("primary", "standby"):
        words.insert(0, f"--to {journal['to']}")
    return "".join(f"{word} " for word in words)
