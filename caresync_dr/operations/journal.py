"""The run journal: progress kept in SSM in the standby region, plus a local copy.

It records each step's outcome and timing, the run's start (RTO is measured from it, also across
``--resume``) and the facts found on the way (data-loss exposure, fencing). Steps never trust it
for state -- they re-read AWS -- it tells a resumed run where it was, since when, and which
changes this run itself requested (``requested_at``, written before the change is asked for).

Every save writes the local copy first, then SSM. When SSM does not take it,
:class:`JournalUnavailableError` stops the run: without its journal a crash could not be resumed
truthfully, and a run that cannot write SSM cannot renew its lock either.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.cli.reporting import write_text_atomic
from caresync_dr.operations import ssm
from caresync_dr.operations.errors import StepFailedError

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

log = logging.getLogger(__name__)
DETAIL_LIMIT = 200   # keeps the parameter small (SSM standard tier: 4 KB)


@dataclass
class StepRecord:
    name: str
    title: str
    outcome: str             # done | skipped | failed | not confirmed | pending
    started_at: str | None
    ended_at: str | None
    seconds: float | None
    detail: str
    best_effort: bool = False
    requested_at: str | None = None   # when this run asked for the step's change (write-ahead)


class JournalUnavailableError(StepFailedError):
    """SSM did not take a journal write (the local copy has it)."""


class Journal:
    def __init__(self, client: SSMClient, name: str, local_path: Path | None) -> None:
        self.ssm = client
        self.name = name
        self.local_path = local_path
        self.data: dict[str, Any] = {}
        self._mutex = threading.Lock()
        self._unsaved = False
        # What SSM has of this run's journal: the text and status of the last write it took,
        # and whether it refused the last write it was asked for (see catch_up).
        self._in_ssm: str | None = None
        self._status_in_ssm: str | None = None
        self._ssm_refused = False

    def load(self) -> dict[str, Any] | None:
        """The journal stored in SSM, or None. An unreadable one is reported, not trusted."""
        text = ssm.read_parameter(self.ssm, self.name)
        if text is None:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            log.warning("journal %s is not JSON; ignoring it", self.name)
            return None
        return data if isinstance(data, dict) else None

    def begin(self, data: dict[str, Any], save: bool = True) -> None:
        """Start the run's journal. ``save`` False: kept until the next write (the first
        step's write-ahead record) or :meth:`ensure_saved`, whichever comes first."""
        with self._mutex:
            self.data = data
            self.data.setdefault("steps", [])
            self.data.setdefault("facts", {})
            self._unsaved = True
            if save:
                self._save()

    def ensure_saved(self) -> None:
        """Save now if anything is kept unsaved (see :meth:`begin`)."""
        with self._mutex:
            if self._unsaved:
                self._save()

    def record(self, step: StepRecord) -> None:
        with self._mutex:
            entry = asdict(step)
            entry["detail"] = entry["detail"][:DETAIL_LIMIT]
            steps = [s for s in self.data.get("steps", []) if s.get("name") != step.name]
            steps.append(entry)
            self.data["steps"] = steps
            self._save()

    def fact(self, key: str, value: Any, save: bool = False) -> None:
        """Kept in memory; saved with the next step record (one write fewer on the way), or
        now with ``save`` (write-ahead, before an action a resumed run must know about)."""
        with self._mutex:
            self.data.setdefault("facts", {})[key] = value
            if save:
                self._save()

    def finish(self, status: str, **extra: Any) -> None:
        with self._mutex:
            self.data["status"] = status
            self.data.update(extra)
            self._save()

    def catch_up(self) -> bool:
        """Write the journal once more when facts were recorded after its last write (the
        notification hook records the incident's state on a thread of its own, and may do so
        after the run's ending was written: a ``--resume`` that did not find it would open the
        incident a second time). Returns whether it wrote.

        Nothing is written when SSM already has everything, when SSM has the run completed (no
        run resumes a completed journal), or when SSM refused the last write: SSM was just
        found unavailable (one more try would cost the run's end a whole retry budget; the
        lock's release tries it anyway), and the local copy takes it alone.
        """
        with self._mutex:
            if not self.data:
                return False
            if self._ssm_refused:
                self._save_local()
                return False
            text = self._text()
            if self._status_in_ssm == "completed" or text == self._in_ssm:
                return False
            self._save(text)
            return True

    def step(self, name: str) -> dict[str, Any] | None:
        return next((s for s in self.data.get("steps", []) if s.get("name") == name), None)

    def _text(self) -> str:
        return json.dumps(self.data, sort_keys=True, separators=(",", ":"), default=str)

    def _save(self, text: str | None = None) -> None:
        """Write ``text`` (default: the journal as it is now) locally, then to SSM."""
        text = self._text() if text is None else text
        self._save_local()
        try:
            ssm.put_parameter(self.ssm, self.name, text, overwrite=True)
            self._unsaved = False
            self._in_ssm, self._status_in_ssm = text, self.data.get("status")
            self._ssm_refused = False
        except (ClientError, BotoCoreError) as exc:
            self._ssm_refused = True
            raise JournalUnavailableError(
                f"the journal could not be saved to SSM {self.name} ({exc}); the run stopped "
                f"there (its local copy {self.local_path} has the progress); continue with "
                "--resume once SSM answers") from exc

    def save_local(self, status: str, **extra: Any) -> None:
        """Record the end of a run in the local copy only (SSM is what failed)."""
        with self._mutex:
            self.data["status"] = status
            self.data.update(extra)
            self._save_local()

    def _save_local(self) -> None:
        if self.local_path is None:
            return
        try:   # as reports are: mode 0600 (it names hosts and ARNs), no temporary file left
            write_text_atomic(self.local_path,
                              json.dumps(self.data, indent=2, sort_keys=True, default=str) + "\n")
        except OSError as exc:   # a convenience copy: SSM holds the journal that counts
            log.warning("could not write the local journal %s: %s", self.local_path, exc)
