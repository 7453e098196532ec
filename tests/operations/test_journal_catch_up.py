"""``Journal.catch_up``: the engine's last journal write, made after the hooks drained. It
writes SSM only when facts came after the last write SSM took, never over a completed journal
(no run resumes one), and only the local copy when SSM refused the write before (one more try
would cost the run's end a whole retry budget; the lock's release tries SSM anyway)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from caresync_dr.operations.journal import Journal, JournalUnavailableError

NAME = "/caresync-dr/test/journal"


class FakeSsm:
    """PutParameter only: what the journal writes, and a switch to refuse."""

    def __init__(self) -> None:
        self.values: list[dict[str, Any]] = []
        self.refuse = False

    def put_parameter(self, **params: Any) -> dict[str, Any]:
        if self.refuse:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "down"}},
                              "PutParameter")
        self.values.append(json.loads(params["Value"]))
        return {"Version": len(self.values)}


def _journal(tmp_path: Path) -> tuple[Journal, FakeSsm]:
    client = FakeSsm()
    journal = Journal(client, NAME, tmp_path / "journal.json")  # type: ignore[arg-type]
    journal.begin({"runId": "r1", "status": "running"})
    return journal, client


def test_a_fact_after_the_ending_is_written_once(tmp_path: Path) -> None:
    journal, client = _journal(tmp_path)
    journal.finish("failed", error="step verify failed")
    assert journal.catch_up() is False                 # SSM has everything
    journal.fact("notify", {"opened": True})
    assert journal.catch_up() is True
    assert client.values[-1]["status"] == "failed"
    assert client.values[-1]["facts"]["notify"] == {"opened": True}
    assert journal.catch_up() is False and len(client.values) == 3


def test_a_completed_journal_is_not_written_again(tmp_path: Path) -> None:
    journal, client = _journal(tmp_path)
    journal.finish("completed")
    journal.fact("notify", {"ended": "resolved"})
    assert journal.catch_up() is False and len(client.values) == 2


def test_after_ssm_refused_only_the_local_copy_takes_it(tmp_path: Path) -> None:
    journal, client = _journal(tmp_path)
    client.refuse = True
    try:
        journal.finish("failed")
    except JournalUnavailableError:
        journal.save_local("failed")
    journal.fact("notify", {"opened": True})
    client.refuse = False                              # a try now would reach it: none is made
    assert journal.catch_up() is False and len(client.values) == 1
    local = json.loads((tmp_path / "journal.json").read_text())
    assert local["status"] == "failed" and local["facts"]["notify"] == {"opened": True}
