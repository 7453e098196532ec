"""The status page channel: Atlassian Statuspage's Manage API (``api.statuspage.io/v1``).

What it uses, from the Manage API reference (developer.statuspage.io):

- ``Authorization: OAuth <api key>`` on every request.
- ``POST /pages/{page_id}/incidents`` with ``{"incident": {...}}`` creates an incident (201):
  ``name`` (at most 255 characters), ``status`` (investigating, identified, monitoring,
  resolved), ``body`` (the first update, at most 25,000 characters), ``component_ids`` and
  ``components`` (component id -> operational, degraded_performance, partial_outage,
  major_outage or under_maintenance), ``deliver_notifications`` (subscribers are e-mailed:
  the seed plan's "email to affected users"), ``metadata`` (top-level values must be objects).
- ``PATCH /pages/{page_id}/incidents/{incident_id}`` updates it (200) with the same fields.
- ``GET /pages/{page_id}/incidents/unresolved`` lists open incidents.
- ``GET /pages/{page_id}`` and ``GET /pages/{page_id}/components/{component_id}`` read the page
  and a component (used by ``notify.py --test``, which posts nothing public).

Idempotent across retries and resumed runs: the incident carries ``metadata.caresync.incident``,
a digest of our incident id (the run id itself stays internal); before creating after a lost
answer or in a resumed run, the unresolved incidents are searched for it, so one run never
opens two public incidents.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import requests

from caresync_dr.notify.delivery import (
    DEFAULT_POLICY,
    Breaker,
    Budget,
    DeliveryError,
    RetryPolicy,
    deliver_with_retries,
    http_call,
)
from caresync_dr.notify.messages import Audience, Delivery, Message

NAME_MAX = 255
BODY_MAX = 25_000
METADATA_KEY = "caresync"


def marker(incident_key: str) -> str:
    """What the public incident's metadata carries to be found again: not the run id."""
    return hashlib.sha256(incident_key.encode("utf-8")).hexdigest()[:24]


class StatusPageChannel:
    name = "statuspage"

    def __init__(self, api_url: str, page_id: str, component_ids: Sequence[str], *,
                 api_key: str, incident_key: str, policy: RetryPolicy = DEFAULT_POLICY) -> None:
        self.base = api_url.rstrip("/")
        self.page_id = page_id
        self.component_ids = tuple(component_ids)
        self.marker = marker(incident_key)
        self._headers = {"Authorization": f"OAuth {api_key}", "Accept": "application/json"}
        self._policy = policy
        self._breaker = Breaker()
        self._session = requests.Session()
        self.incident_id: str | None = None
        self._must_look = False      # an earlier create may have worked: search before creating

    @property
    def audience(self) -> Audience | None:
        return "external"

    def restore(self, remembered: dict[str, Any]) -> None:
        incident_id = remembered.get("incidentId")
        self.incident_id = str(incident_id) if incident_id else None
        self._must_look = self.incident_id is None

    # --- requests ---------------------------------------------------------------------------
    def _url(self, path: str) -> str:
        return f"{self.base}/pages/{self.page_id}{path}"

    def _call(self, method: str, path: str, budget: Budget,
              body: Any = None) -> requests.Response:
        return http_call(self._session, method, self._url(path), budget,
                         shown_url=f"Statuspage {method} {path or '/'}", json_body=body,
                         headers=self._headers)

    def _fields(self, message: Message) -> dict[str, Any]:
        fields: dict[str, Any] = {"status": message.incident_status,
                                  "body": message.body[:BODY_MAX],
                                  "deliver_notifications": True}
        if message.component_status is not None:
            fields["component_ids"] = list(self.component_ids)
            fields["components"] = dict.fromkeys(self.component_ids, message.component_status)
        return fields

    def find_open_incident(self, budget: Budget) -> str | None:
        """The id of the unresolved incident this run opened, if there is one."""
        response = self._call("GET", "/incidents/unresolved", budget)
        try:
            incidents = response.json()
        except ValueError as exc:
            raise DeliveryError("Statuspage GET /incidents/unresolved answered no JSON",
                                retryable=True) from exc
        for incident in incidents if isinstance(incidents, list) else []:
            metadata = incident.get("metadata") if isinstance(incident, dict) else None
            ours = metadata.get(METADATA_KEY) if isinstance(metadata, dict) else None
            if isinstance(ours, dict) and ours.get("incident") == self.marker:
                return str(incident.get("id"))
        return None

    def _create(self, message: Message, budget: Budget) -> tuple[str, dict[str, Any]]:
        if self._must_look:
            found = self.find_open_incident(budget)
            self._must_look = False
            if found is not None:
                self.incident_id = found
                return self._update(message, budget, adopted=True)
        incident = {"name": message.title[:NAME_MAX], **self._fields(message),
                    "metadata": {METADATA_KEY: {"incident": self.marker}}}
        try:
            response = self._call("POST", "/incidents", budget, {"incident": incident})
        except DeliveryError as exc:
            self._must_look = self._must_look or exc.ambiguous
            raise
        try:
            created = response.json()
            self.incident_id = str(created["id"])
        except (ValueError, KeyError, TypeError) as exc:
            self._must_look = True
            raise DeliveryError("Statuspage POST /incidents answered without an incident id",
                                retryable=True, ambiguous=True) from exc
        return (f"opened Statuspage incident {self.incident_id} ({message.incident_status})",
                {"incidentId": self.incident_id})

    def _update(self, message: Message, budget: Budget,
                adopted: bool = False) -> tuple[str, dict[str, Any]]:
        self._call("PATCH", f"/incidents/{self.incident_id}", budget,
                   {"incident": self._fields(message)})
        found = " (found open from an earlier attempt)" if adopted else ""
        return (f"updated Statuspage incident {self.incident_id}{found} to "
                f"{message.incident_status}", {"incidentId": self.incident_id})

    def deliver(self, message: Message) -> Delivery:
        if message.incident_status is None:
            return Delivery(self.name, message.event, "skipped", "not a status page message")

        def attempt(budget: Budget) -> tuple[str, dict[str, Any]]:
            if self.incident_id is None:
                return self._create(message, budget)
            return self._update(message, budget)

        return deliver_with_retries(self.name, message.event, attempt, self._policy,
                                    breaker=self._breaker)

    def check(self) -> Delivery:
        """Read-only test: the key opens the page and every configured component exists."""
        def attempt(budget: Budget) -> tuple[str, dict[str, Any]]:
            page = self._call("GET", "", budget).json()
            names = []
            for component in self.component_ids:
                found = self._call("GET", f"/components/{component}", budget).json()
                names.append(f"{found.get('name', component)} ({found.get('status', '?')})")
            return (f"page {page.get('name', self.page_id)} answered; components: "
                    + ", ".join(names), {})

        return deliver_with_retries(self.name, "test", attempt, self._policy)
