"""Message templates: loaded from ``templates.toml``, checked once, rendered per event.

The file is data an operator may edit; :func:`load_templates` refuses anything that could go
wrong at 3 a.m. instead: a missing event, an unknown field, a field the audience may not see
(an external template naming ``{detail}`` would put a hostname on the public status page), an
invalid Statuspage status. Rendering then cannot fail: every field a template names is in the
context the notifier builds (:data:`INTERNAL_FIELDS`, :data:`EXTERNAL_FIELDS`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Formatter
from typing import Any

AUDIENCES = ("internal", "external")
INTERNAL_CHANNELS = ("chat", "email")
# Atlassian Statuspage Manage API: an incident's status (realtime incidents) and a component's.
INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")
COMPONENT_STATUSES = ("operational", "degraded_performance", "partial_outage", "major_outage",
                      "under_maintenance")
# Every event has an internal template; these also tell users (when the kind is public).
EVENTS = ("opened", "resumed", "phase", "escalated", "resolved", "failed", "test")
EXTERNAL_EVENTS = ("opened", "phase", "resolved", "failed")
# What a public message may say: nothing about hosts, runs, steps or people.
EXTERNAL_FIELDS = frozenset({"service", "public_title", "public_impact", "public_progress",
                             "elapsed_minutes"})
INTERNAL_FIELDS = EXTERNAL_FIELDS | frozenset({
    "incident", "kind", "kind_title", "stack", "operator", "started_at", "now", "summary",
    "timeline", "engaged", "next_tier", "new_tiers", "escalation_reason",
    "last_phase", "phase", "phase_title", "outcome", "detail", "seconds", "outcome_message",
    "ending",
})
SERVICE = "CareSync"
_KIND_KEYS = {"title", "public_title", "public_impact", "component_status", "public"}


class TemplateError(ValueError):
    """The templates file is malformed; the message names the entry and what is wrong."""


@dataclass(frozen=True)
class Template:
    title: str
    body: str
    channels: tuple[str, ...] = INTERNAL_CHANNELS
    status: str | None = None          # external: the Statuspage incident status it sets


@dataclass(frozen=True)
class Kind:
    """What kind of operation an incident is: its internal name and what users are told."""

    name: str
    title: str
    public: bool
    public_title: str = ""
    public_impact: str = ""
    component_status: str | None = None


@dataclass(frozen=True)
class Templates:
    kinds: Mapping[str, Kind]
    templates: Mapping[tuple[str, str], Template]     # (event, audience) -> template
    public_progress: Mapping[str, str]

    def get(self, event: str, audience: str) -> Template | None:
        return self.templates.get((event, audience))

    def kind(self, name: str) -> Kind:
        if name not in self.kinds:
            raise TemplateError(f"unknown incident kind {name!r}; known: "
                                + ", ".join(sorted(self.kinds)))
        return self.kinds[name]


def render(template: Template, context: Mapping[str, object]) -> tuple[str, str]:
    """(title, body); ``context`` must hold every field the template names (it always does for
    contexts the notifier builds: the loader checked the names)."""
    values = {k: "" if v is None else str(v) for k, v in context.items()}
    return template.title.format_map(values), template.body.format_map(values)


def _fields(text: str, where: str) -> set[str]:
    names: set[str] = set()
    try:
        parsed = list(Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"{where}: {exc} (write a literal brace as {{{{ or }}}})") from exc
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            raise TemplateError(f"{where}: {{{name}}} must be a plain field name, without "
                                "attributes, indexes, conversions or format specs")
        names.add(name)
    return names


def _text(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise TemplateError(f"{where}.{key} must be a non-empty string")
    return value


def _template(event: str, audience: str, table: object) -> Template:
    where = f"events.{event}.{audience}"
    if not isinstance(table, Mapping):
        raise TemplateError(f"{where} must be a table")
    allowed = {"title", "body", "channels"} if audience == "internal" else \
        {"title", "body", "status"}
    extra = sorted(set(table) - allowed)
    if extra:
        raise TemplateError(f"{where}.{extra[0]} is not a template key "
                            f"({', '.join(sorted(allowed))})")
    title, body = _text(table, "title", where), _text(table, "body", where)
    fields = _fields(title, f"{where}.title") | _fields(body, f"{where}.body")
    permitted = INTERNAL_FIELDS if audience == "internal" else EXTERNAL_FIELDS
    unknown = sorted(fields - permitted)
    if unknown:
        why = ("an external message may only use " + ", ".join(sorted(EXTERNAL_FIELDS))
               + ": the status page is public" if audience == "external" and
               unknown[0] in INTERNAL_FIELDS else "unknown field")
        raise TemplateError(f"{where} names {{{unknown[0]}}}: {why}")
    if audience == "internal":
        channels = table.get("channels", list(INTERNAL_CHANNELS))
        if not isinstance(channels, list) or not channels or \
                any(c not in INTERNAL_CHANNELS for c in channels):
            raise TemplateError(f"{where}.channels must list some of "
                                + ", ".join(INTERNAL_CHANNELS))
        return Template(title, body, channels=tuple(channels))
    status = table.get("status")
    if status not in INCIDENT_STATUSES:
        raise TemplateError(f"{where}.status must be one of " + ", ".join(INCIDENT_STATUSES))
    return Template(title, body, channels=("statuspage",), status=str(status))


def _kind(name: str, table: object) -> Kind:
    where = f"kinds.{name}"
    if not isinstance(table, Mapping):
        raise TemplateError(f"{where} must be a table")
    extra = sorted(set(table) - _KIND_KEYS)
    if extra:
        raise TemplateError(f"{where}.{extra[0]} is not a kind key")
    public = table.get("public", True)
    if not isinstance(public, bool):
        raise TemplateError(f"{where}.public must be true or false")
    if not public:
        return Kind(name=name, title=_text(table, "title", where), public=False)
    status = table.get("component_status")
    if status not in COMPONENT_STATUSES:
        raise TemplateError(f"{where}.component_status must be one of "
                            + ", ".join(COMPONENT_STATUSES))
    texts = {key: _text(table, key, where) for key in ("title", "public_title", "public_impact")}
    for key in ("public_title", "public_impact"):
        if _fields(texts[key], f"{where}.{key}"):
            raise TemplateError(f"{where}.{key} is shown as written: no {{fields}}")
    return Kind(name=name, public=True, component_status=str(status), **texts)


def parse_templates(text: str, source: str = "templates.toml") -> Templates:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{source} is not valid TOML: {exc}") from exc
    extra = sorted(set(data) - {"kinds", "events", "public_progress"})
    if extra:
        raise TemplateError(f"{source}: {extra[0]} is not a section (kinds, events, "
                            "public_progress)")
    kinds = {name: _kind(name, table) for name, table in dict(data.get("kinds", {})).items()}
    if not kinds:
        raise TemplateError(f"{source} defines no kinds")
    progress_table = data.get("public_progress", {})
    progress: dict[str, str] = {}
    for status, line in dict(progress_table).items():
        if status not in INCIDENT_STATUSES or not isinstance(line, str) or _fields(
                line, f"public_progress.{status}"):
            raise TemplateError(f"public_progress.{status}: a status ("
                                + ", ".join(INCIDENT_STATUSES) + ") and a plain sentence")
        progress[status] = line
    events = data.get("events", {})
    unknown = sorted(set(events) - set(EVENTS))
    if unknown:
        raise TemplateError(f"events.{unknown[0]} is not an event ({', '.join(EVENTS)})")
    templates: dict[tuple[str, str], Template] = {}
    for event in EVENTS:
        tables = events.get(event)
        if not isinstance(tables, Mapping) or "internal" not in tables:
            raise TemplateError(f"events.{event}.internal is missing: every event tells "
                                "engineering")
        audiences = sorted(set(tables) - set(AUDIENCES))
        if audiences:
            raise TemplateError(f"events.{event}.{audiences[0]} is not an audience "
                                "(internal, external)")
        for audience in AUDIENCES:
            if audience not in tables:
                continue
            if audience == "external" and event not in EXTERNAL_EVENTS:
                raise TemplateError(f"events.{event}.external: users are told only of "
                                    + ", ".join(EXTERNAL_EVENTS))
            templates[(event, audience)] = _template(event, audience, tables[audience])
    for event in EXTERNAL_EVENTS:
        if (event, "external") not in templates:
            raise TemplateError(f"events.{event}.external is missing: the status page needs it")
    phase = templates[("phase", "external")]
    if phase.status not in progress:
        raise TemplateError(f"public_progress.{phase.status} is missing: the external phase "
                            "template sets that status")
    return Templates(kinds=kinds, templates=templates, public_progress=progress)


def load_templates(path: Path | None = None) -> Templates:
    """The package's ``templates.toml`` (or ``path``), checked."""
    if path is not None:
        return parse_templates(path.read_text(), str(path))
    text = resources.files(__package__).joinpath("templates.toml").read_text(encoding="utf-8")
    return parse_templates(text)
