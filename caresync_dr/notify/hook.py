"""The operation engine's notification hook, carried out by the notifier.

An operator command (through the engine) says when its run starts changing things, when each
step ends and how the run ends; :class:`IncidentNotifications` turns that into an incident:
opened (or resumed), phases, escalation, resolved or failed, and the report section. It never
raises into the run: a notifier that cannot even be built (bad templates, no AWS session) is
logged and the run goes on silently.

A run that ends before it started changing anything (refused by its preflight, at the prompt,
or "already done") opens no incident: nothing happened that anyone must be told about.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from caresync_dr.notify.email import TopicTarget
from caresync_dr.notify.messages import utc_now
from caresync_dr.notify.notifier import DEFAULT_CLOSE_SECONDS, Clock, Incident, Notifier
from caresync_dr.notify.setup import build_notifier, operator_name
from caresync_dr.settings import Settings

if TYPE_CHECKING:
    from caresync_dr.aws import AwsSession

log = logging.getLogger(__name__)
# The journal fact that carries the notifier's state across --resume.
JOURNAL_FACT = "notify"
# Step outcomes that mean the step changed something (the engine's words).
CHANGED = ("done",)


@dataclass
class NotifyOptions:
    """What a command decides about its incident.

    ``kind``: the wording (``templates.toml`` [kinds]); ``topics``: alert topics in the order
    to try (standby first in a regional failover); ``public_statuses``: step name -> the status
    page status its success announces (otherwise the first step that changes something says
    "identified"); ``breach``: every tier at once.
    """

    kind: str
    topics: Sequence[TopicTarget]
    secret_regions: Sequence[str] | None = None
    public_statuses: Mapping[str, str] = field(default_factory=dict)
    breach: bool = False
    incident_started: datetime | None = None   # e.g. failover's --outage-started
    summary: str = ""                          # internal: what the run does
    timeline: str = ""                         # internal: where its timeline goes ({run_id})
    timer_seconds: float = 30.0
    close_seconds: float = DEFAULT_CLOSE_SECONDS


class IncidentNotifications:
    """One run's incident. Build it before the run; call :meth:`started` once the run begins
    changing things, :meth:`step_finished` after each step, :meth:`ended` on every exit."""

    def __init__(self, settings: Settings, options: NotifyOptions, *,
                 session: AwsSession | None = None, clock: Clock = utc_now,
                 environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.options = options
        self._session = session
        self._clock = clock
        self._environ = environ
        self.notifier: Notifier | None = None
        self._announced_public = False
        self._report: dict[str, Any] | None = None

    def started(self, *, run_id: str, started_at: datetime, stack: str,
                previous_state: Mapping[str, Any] | None = None,
                save: Callable[[dict[str, Any]], None] | None = None,
                summary: str = "", timeline: str = "", operator: str | None = None) -> None:
        """The run begins (or resumes) changing things: open the incident, or post "resumed"
        when ``previous_state`` (the journal's ``notify`` fact) shows it is open already."""
        if self.notifier is not None:
            return
        try:
            incident = Incident(key=run_id, kind=self.options.kind, stack=stack,
                                started_at=started_at, operator=operator or operator_name(),
                                summary=summary, timeline=timeline, breach=self.options.breach)
            self.notifier = build_notifier(
                self.settings, incident, topics=self.options.topics,
                secret_regions=self.options.secret_regions, session=self._session,
                state=previous_state, persist=save, clock=self._clock, environ=self._environ)
            self.notifier.open()
            self.notifier.start_timer(self.options.timer_seconds)
        except Exception as exc:     # notifications must never stop a recovery
            log.warning("notifications are off for this run: %s: %s", type(exc).__name__, exc)
            log.debug("details", exc_info=True)
            self.notifier = None

    def step_finished(self, name: str, title: str, outcome: str, detail: str = "",
                      seconds: float | None = None) -> None:
        if self.notifier is None:
            return
        public = self.options.public_statuses.get(name) if outcome in CHANGED else None
        if public is None and outcome in CHANGED and not self._announced_public:
            public = "identified"
        if public is not None:
            self._announced_public = True
        self.notifier.phase(name, title, outcome, detail, seconds=seconds,
                            public_status=public)

    def ended(self, *, succeeded: bool, message: str,
              ending: str = "failed") -> dict[str, Any] | None:
        """Resolve or fail the incident, wait (bounded) for the channels, and return the
        report section (None when no incident was opened). Safe to call more than once."""
        if self._report is not None:
            return self._report
        if self.notifier is None:
            return None
        try:
            if succeeded:
                self.notifier.resolve(message)
            else:
                self.notifier.fail(message, ending)
        finally:
            self._report = self.notifier.close(self.options.close_seconds)
        return self._report


class EngineEvent(Protocol):
    """What this module reads of the engine's ``OperationEvent`` (caresync_dr/operations)."""

    @property
    def run_id(self) -> str: ...
    @property
    def stack(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def sentence(self) -> str: ...
    @property
    def phase(self) -> str | None: ...
    @property
    def phase_title(self) -> str | None: ...
    @property
    def outcome(self) -> str | None: ...
    @property
    def facts(self) -> dict[str, Any]: ...


class OperationNotifier(IncidentNotifications):
    """The engine's ``OperationHooks``: incident opened, phase started/finished, resolved,
    failed. The engine calls these in order from one thread of its own.

    ``save`` keeps the notifier's state in the run's journal facts (``JOURNAL_FACT``); on
    ``--resume`` the engine's facts hold it again and the incident is not reopened.
    """

    def __init__(self, settings: Settings, options: NotifyOptions, *,
                 save: Callable[[dict[str, Any]], None] | None = None,
                 session: AwsSession | None = None, clock: Clock = utc_now,
                 environ: Mapping[str, str] | None = None) -> None:
        super().__init__(settings, options, session=session, clock=clock, environ=environ)
        self._save = save

    def incident_opened(self, event: EngineEvent) -> None:
        previous = event.facts.get(JOURNAL_FACT)
        self.started(run_id=event.run_id,
                     started_at=self.options.incident_started or event.at, stack=event.stack,
                     previous_state=previous if isinstance(previous, dict) else None,
                     save=self._save, summary=self.options.summary or event.title,
                     timeline=self.options.timeline.replace("{run_id}", event.run_id))

    def phase_started(self, event: EngineEvent) -> None:
        if self.notifier is not None:
            self.notifier.check_escalation()

    def phase_finished(self, event: EngineEvent) -> None:
        self.step_finished(event.phase or "step", event.phase_title or event.phase or "",
                           event.outcome or "", event.sentence)

    def resolved(self, event: EngineEvent) -> None:
        self.ended(succeeded=True, message=event.sentence or "completed")

    def failed(self, event: EngineEvent) -> None:
        self.ended(succeeded=False, message=event.sentence or f"the run ended {event.outcome}",
                   ending=event.outcome or "failed")

    def report(self) -> dict[str, Any] | None:
        """The ``notifications`` report section (None when no incident was opened)."""
        return self._report
