"""A channel that keeps every message: the drill's and the tests' view of what was said.

With ``CARESYNC_NOTIFY_RECORD_FILE`` set, each message of either audience is appended to that
file as one JSON line, so a drill that runs failover.py in a subprocess can show the messages
in its report (``read_recorded``).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from caresync_dr.notify.messages import Audience, Delivery, Message, utc_now

RECORD_ENV = "CARESYNC_NOTIFY_RECORD_FILE"


class RecordingChannel:
    name = "recording"

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.messages: list[Message] = []
        self._mutex = threading.Lock()

    @property
    def audience(self) -> Audience | None:
        return None

    def restore(self, remembered: dict[str, Any]) -> None:
        del remembered

    def deliver(self, message: Message) -> Delivery:
        with self._mutex:
            self.messages.append(message)
            if self.path is not None:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    with self.path.open("a", encoding="utf-8") as out:
                        out.write(json.dumps(message.as_report(), sort_keys=True) + "\n")
                except OSError as exc:
                    return Delivery(self.name, message.event, "failed",
                                    f"could not append to {self.path}: {exc}", 1, 0.0,
                                    utc_now().isoformat(timespec="milliseconds"))
        where = f"appended to {self.path}" if self.path else "kept in memory"
        return Delivery(self.name, message.event, "sent", where, 1, 0.0,
                        utc_now().isoformat(timespec="milliseconds"))


def read_recorded(path: Path) -> list[dict[str, Any]]:
    """The messages a run recorded (one dict per message, in order); [] without the file."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]
