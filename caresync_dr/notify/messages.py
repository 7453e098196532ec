"""What the notifier sends (a rendered :class:`Message`) and what came of it (:class:`Delivery`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

Audience = Literal["internal", "external"]
# sent: the channel accepted it; failed: it did not (after its retries); skipped: the channel
# is not configured or the message is not for it; not sent: still queued when the run ended.
DeliveryStatus = Literal["sent", "failed", "skipped", "not sent"]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Message:
    """One rendered message for one audience.

    ``tiers`` are the engaged escalation tiers (names; the e-mail channel sets them as the
    ``escalationTier`` attribute); ``mentions`` are the chat mentions of tiers this message
    engages; ``incident_status`` / ``component_status`` are what the status page is set to.
    """

    event: str
    audience: Audience
    title: str
    body: str
    channels: tuple[str, ...]
    at: str
    tiers: tuple[str, ...] = ()
    mentions: tuple[str, ...] = ()
    incident_status: str | None = None
    component_status: str | None = None

    def as_report(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Delivery:
    """The result of giving one message to one channel. ``remember`` is channel state to keep
    across a resumed run (the status page's incident id)."""

    channel: str
    event: str
    status: DeliveryStatus
    detail: str
    attempts: int = 0
    seconds: float = 0.0
    at: str = ""
    remember: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "sent"

    def as_report(self) -> dict[str, Any]:
        return {"channel": self.channel, "event": self.event, "status": self.status,
                "ok": self.ok, "detail": self.detail, "attempts": self.attempts,
                "seconds": self.seconds, "at": self.at}


class Channel(Protocol):
    """A place messages go. ``deliver`` never raises: every failure is a :class:`Delivery`
    with status ``failed`` and a detail an operator can act on."""

    @property
    def name(self) -> str: ...

    @property
    def audience(self) -> Audience | None:
        """The audience whose messages it takes; None takes both (a recording channel)."""

    def deliver(self, message: Message) -> Delivery: ...

    def restore(self, remembered: dict[str, Any]) -> None:
        """Take back what an earlier run of the same incident remembered."""
