"""The incident notifier: opened, each phase, escalation by elapsed time, resolved or failed.

One :class:`Notifier` per incident (one operator run, or several runs of one incident joined by
``--resume``). It renders the templates for the audiences, hands the messages to the channels'
workers (:mod:`caresync_dr.notify.dispatch`) and never raises into the caller: the recovery's
outcome is the recovery's, whatever the channels do. Every delivery's result is in
:meth:`Notifier.report`.

Resumable: :meth:`Notifier.state` is a small JSON-able dict the caller keeps in its journal
(``persist`` is called whenever it changes). Built again from that state, the notifier posts
"resumed" instead of opening the incident again, keeps the tiers already engaged, and updates
the status page incident it opened instead of creating a second one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from caresync_dr.notify.dispatch import Dispatcher
from caresync_dr.notify.escalation import EscalationPath, who
from caresync_dr.notify.messages import Audience, Channel, Delivery, Message, utc_now
from caresync_dr.notify.templates import INCIDENT_STATUSES, SERVICE, Templates, render
from caresync_dr.settings import EscalationTier

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
Persist = Callable[[dict[str, Any]], None]
DEFAULT_CLOSE_SECONDS = 10.0       # what the end of a run waits for the channels, at most


@dataclass(frozen=True)
class Incident:
    """What the messages are about.

    ``key`` identifies the incident across resumed runs (the run id); ``kind`` picks the
    wording (``templates.toml`` [kinds]); ``started_at`` is when the incident began (escalation
    counts from it: the operator's stated outage start, if earlier than the run); ``summary``
    and ``timeline`` are internal only (what the run does, where its timeline will be).
    """

    key: str
    kind: str
    stack: str
    started_at: datetime
    operator: str
    summary: str = ""
    timeline: str = ""
    breach: bool = False


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


class Notifier:
    def __init__(self, incident: Incident, templates: Templates,
                 tiers: Sequence[EscalationTier], channels: Sequence[Channel], *,
                 unconfigured: Mapping[str, str] | None = None,
                 state: Mapping[str, Any] | None = None, persist: Persist | None = None,
                 clock: Clock = utc_now) -> None:
        self.incident = incident
        self.kind = templates.kind(incident.kind)
        self.templates = templates
        self.path = EscalationPath(tuple(tiers))
        self.clock = clock
        self._persist = persist
        self._mutex = threading.RLock()
        self._unconfigured = dict(unconfigured or {})
        self._channels = {c.name: c for c in channels}
        self.messages: list[Message] = []
        self.deliveries: list[Delivery] = []
        self._closed = False
        self._timer_stop = threading.Event()
        self._timer: threading.Thread | None = None
        self._last_phase = "none yet"
        previous = dict(state or {})
        if previous and previous.get("incident") != incident.key:
            log.warning("notify state of incident %s ignored: this is incident %s",
                        previous.get("incident"), incident.key)
            previous = {}
        self._state: dict[str, Any] = {
            "incident": incident.key, "kind": incident.kind,
            "startedAt": previous.get("startedAt", incident.started_at.isoformat()),
            "opened": bool(previous.get("opened")),
            "engaged": list(previous.get("engaged", [])),
            "publicStatus": previous.get("publicStatus"),
            "channels": dict(previous.get("channels", {})),
            "ended": previous.get("ended"),
        }
        self.started_at = datetime.fromisoformat(self._state["startedAt"])
        for name, channel in self._channels.items():
            if previous:
                channel.restore(dict(self._state["channels"].get(name, {})))
        self._dispatcher = Dispatcher(list(channels), self._delivered)

    # --- state --------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        with self._mutex:
            return {k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict)
                        else v) for k, v in self._state.items()}

    def _save(self) -> None:
        if self._persist is None:
            return
        try:
            self._persist(self.state())
        except Exception as exc:    # the journal is the caller's: its trouble is not ours
            log.warning("could not keep the notification state: %s: %s",
                        type(exc).__name__, exc)

    def _engaged_names(self) -> list[str]:
        return [e["tier"] for e in self._state["engaged"]]

    def _delivered(self, delivery: Delivery) -> None:
        with self._mutex:
            self.deliveries.append(delivery)
            if delivery.remember:
                self._state["channels"][delivery.channel] = dict(delivery.remember)
                changed = True
            else:
                changed = False
        level = logging.INFO if delivery.status == "sent" else logging.WARNING
        log.log(level, "notify %s %s: %s %s", delivery.channel, delivery.event,
                delivery.status, delivery.detail)
        if changed:
            self._save()

    # --- rendering ----------------------------------------------------------------------------
    def elapsed_minutes(self) -> int:
        return max(0, int((self.clock() - self.started_at).total_seconds() // 60))

    def _context(self, **extra: object) -> dict[str, object]:
        engaged = self.path.by_name(self._engaged_names())
        context: dict[str, object] = {
            "service": SERVICE, "public_title": self.kind.public_title,
            "public_impact": self.kind.public_impact, "public_progress": "",
            "elapsed_minutes": self.elapsed_minutes(), "incident": self.incident.key,
            "kind": self.kind.name, "kind_title": self.kind.title, "stack": self.incident.stack,
            "operator": self.incident.operator, "started_at": _iso(self.started_at),
            "now": _iso(self.clock()), "summary": self.incident.summary,
            "timeline": self.incident.timeline or "(none)", "engaged": who(engaged),
            "next_tier": self.path.describe_next(self._engaged_names()), "new_tiers": "",
            "escalation_reason": "", "last_phase": self._last_phase, "phase": "",
            "phase_title": "", "outcome": "", "detail": "", "seconds": "",
            "outcome_message": "", "ending": "",
        }
        context.update(extra)
        return context

    def _email_tiers(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.path.by_name(self._engaged_names())
                     if "email" in t.channels)

    def _send(self, event: str, audience: Audience, context: Mapping[str, object], *,
              mentions: Sequence[str] = (), incident_status: str | None = None,
              component_status: str | None = None) -> Message | None:
        template = self.templates.get(event, audience)
        if template is None:
            return None
        title, body = render(template, context)
        message = Message(event=event, audience=audience, title=title, body=body,
                          channels=template.channels, at=self.clock().isoformat(),
                          tiers=self._email_tiers() if audience == "internal" else (),
                          mentions=tuple(mentions), incident_status=incident_status,
                          component_status=component_status)
        self.messages.append(message)
        self._dispatcher.submit(message)
        return message

    def _send_public(self, event: str, status: str, component_status: str | None = None,
                     ) -> None:
        """The status page, when this kind of incident is public and the status moves on."""
        if not self.kind.public:
            return
        current = self._state["publicStatus"]
        if event == "phase" and current is not None and \
                INCIDENT_STATUSES.index(status) <= INCIDENT_STATUSES.index(current):
            return
        progress = self.templates.public_progress.get(status, "")
        self._send(event, "external", self._context(public_progress=progress),
                   incident_status=status, component_status=component_status)
        self._state["publicStatus"] = status

    # --- the incident's life --------------------------------------------------------------------
    def open(self) -> None:
        """Post "opened" (users: investigating, the components marked) -- or "resumed" when
        the state shows this incident was opened by an earlier run -- and engage the tiers
        due now (every tier for a breach)."""
        with self._mutex:
            if self._closed:
                return
            if self._state["opened"]:
                self._state["ended"] = None
                self._send("resumed", "internal", self._context())
                self._save()
                self._escalate_locked()
                return
            due = self.path.due(self.elapsed_minutes(), self.incident.breach)
            now = self.clock().isoformat()
            self._state["engaged"] = [{"tier": t.name, "at": now} for t in due]
            self._state["opened"] = True
            self._send("opened", "internal", self._context(),
                       mentions=[t.chat_mention for t in due
                                 if t.chat_mention and "chat" in t.channels])
            status = self.templates.get("opened", "external")
            if status is not None and status.status is not None:
                self._send_public("opened", status.status, self.kind.component_status)
            self._save()

    def phase(self, name: str, title: str, outcome: str, detail: str = "", *,
              seconds: float | None = None, public_status: str | None = None) -> None:
        """One phase (step) ended. ``public_status`` moves the status page forward
        (identified, monitoring) when the incident is public; internal channels get every
        phase (by default the chat only). Checks escalation too."""
        with self._mutex:
            if self._closed:
                return
            shown = "" if seconds is None else f"{seconds:.1f}"
            self._last_phase = f"{name} {outcome}" + (f": {detail}" if detail else "")
            self._send("phase", "internal", self._context(
                phase=name, phase_title=title, outcome=outcome, detail=detail, seconds=shown))
            if public_status is not None:
                if public_status not in self.templates.public_progress:
                    log.warning("no public progress line for status %r: status page not "
                                "updated", public_status)
                else:
                    self._send_public("phase", public_status)
            self._escalate_locked()

    def check_escalation(self) -> list[str]:
        """Engage every tier whose time has come while the incident is open; returns the
        names engaged now (also called by the timer)."""
        with self._mutex:
            if self._closed or self._state["ended"] is not None or not self._state["opened"]:
                return []
            return self._escalate_locked()

    def _escalate_locked(self) -> list[str]:
        engaged = self._engaged_names()
        new = self.path.newly_due(self.elapsed_minutes(), engaged, self.incident.breach)
        if not new:
            return []
        now = self.clock().isoformat()
        self._state["engaged"] += [{"tier": t.name, "at": now} for t in new]
        reason = ("A data breach goes straight to the top tier." if self.incident.breach else
                  f"Open longer than {new[-1].after_minutes} min, the threshold of "
                  f"{new[-1].who}.")
        self._send("escalated", "internal", self._context(
            new_tiers=who(new), escalation_reason=reason),
            mentions=[t.chat_mention for t in new if t.chat_mention and "chat" in t.channels])
        self._save()
        log.warning("escalated incident %s after %d min to %s", self.incident.key,
                    self.elapsed_minutes(), who(new))
        return [t.name for t in new]

    def resolve(self, message: str) -> None:
        """The run succeeded: internal "resolved"; users: resolved, components operational."""
        with self._mutex:
            if self._closed or not self._state["opened"]:
                return
            self._escalate_locked()     # the last word names everyone who was engaged
            self._send("resolved", "internal", self._context(outcome_message=message))
            self._send_public("resolved", "resolved", "operational")
            self._state["ended"] = "resolved"
            self._save()

    def fail(self, message: str, ending: str = "failed") -> None:
        """The run stopped with the incident still open (failed, refused part-way,
        interrupted): internal "failed" with the reason; users: still working on it."""
        with self._mutex:
            if self._closed or not self._state["opened"]:
                return
            self._escalate_locked()
            self._send("failed", "internal", self._context(outcome_message=message,
                                                           ending=ending))
            self._send_public("failed", "identified")
            self._state["ended"] = "failed"
            self._save()

    def send_test(self) -> None:
        """A test message to the internal channels (``notify.py --test``); no incident."""
        with self._mutex:
            if not self._closed:
                self._send("test", "internal", self._context())

    # --- timer and end ------------------------------------------------------------------------
    def start_timer(self, interval_seconds: float = 30.0) -> None:
        """Check escalation every ``interval_seconds`` while the incident is open, so a run
        stuck in one long phase still escalates."""
        if self._timer is not None:
            return

        def tick() -> None:
            while not self._timer_stop.wait(interval_seconds):
                try:
                    self.check_escalation()
                except Exception:      # never let the timer die silently mid-incident
                    log.warning("escalation check failed", exc_info=True)

        self._timer = threading.Thread(target=tick, name="notify-escalation", daemon=True)
        self._timer.start()

    def flush(self, timeout: float) -> bool:
        return self._dispatcher.flush(timeout)

    def close(self, timeout: float = DEFAULT_CLOSE_SECONDS) -> dict[str, Any]:
        """Stop the timer, give the channels ``timeout`` seconds to finish, return the report."""
        self._timer_stop.set()
        missed = self._dispatcher.close(timeout)
        with self._mutex:
            self._closed = True
            self.deliveries.extend(missed)
        for delivery in missed:
            log.warning("notify %s %s: not sent: %s", delivery.channel, delivery.event,
                        delivery.detail)
        return self.report()

    def report(self) -> dict[str, Any]:
        """What was said and what came of it, for the command's JSON report."""
        with self._mutex:
            channels = {name: "configured" for name in self._channels}
            channels.update({name: f"not configured: {why}"
                             for name, why in self._unconfigured.items()})
            failed = [d for d in self.deliveries if d.status in ("failed", "not sent")]
            return {
                "incident": self.incident.key, "kind": self.incident.kind,
                "startedAt": self.started_at.isoformat(), "breach": self.incident.breach,
                "ended": self._state["ended"],
                "engagedTiers": [{**e, "who": next((t.who for t in self.path.tiers
                                                    if t.name == e["tier"]), e["tier"])}
                                 for e in self._state["engaged"]],
                "publicStatus": self._state["publicStatus"],
                "channels": channels,
                "messages": [m.as_report() for m in self.messages],
                "deliveries": [d.as_report() for d in self.deliveries],
                "failedDeliveries": len(failed),
            }
