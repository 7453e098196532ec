"""Templates are data, checked at load: users can only ever be told plain language."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from caresync_dr.notify.templates import (
    EVENTS,
    EXTERNAL_EVENTS,
    EXTERNAL_FIELDS,
    INTERNAL_FIELDS,
    TemplateError,
    load_templates,
    parse_templates,
    render,
)

SHIPPED = (Path(__file__).resolve().parents[2] / "caresync_dr" / "notify" /
           "templates.toml").read_text()


def test_the_shipped_templates_cover_every_event_and_audience() -> None:
    templates = load_templates()
    for event in EVENTS:
        assert templates.get(event, "internal") is not None, event
    for event in EXTERNAL_EVENTS:
        external = templates.get(event, "external")
        assert external is not None and external.channels == ("statuspage",), event
    assert {"region-failover", "database-failover", "data-breach"} <= set(templates.kinds)
    assert not templates.kind("data-breach").public


def test_every_shipped_template_renders_with_the_fields_of_its_audience() -> None:
    templates = load_templates()
    for (event, audience), template in templates.templates.items():
        fields = INTERNAL_FIELDS if audience == "internal" else EXTERNAL_FIELDS
        title, body = render(template, {f: f"<{f}>" for f in fields})
        assert title and body, (event, audience)


def _replace(old: str, new: str) -> str:
    assert old in SHIPPED, old
    return SHIPPED.replace(old, new, 1)


@pytest.mark.parametrize(("text", "fragment"), [
    # The named fault kind: an internal detail (a hostname, a step's output) on the public page.
    (_replace('body = "{public_progress}"', 'body = "{public_progress} {detail}"'),
     "events.phase.external names {detail}: an external message may only use"),
    (_replace('title = "{public_title}"', 'title = "{public_title} on {stack}"'),
     "events.opened.external names {stack}"),
    (_replace('body = "{public_progress}"', 'body = "{public_progress} {hostname}"'),
     "unknown field"),
    (_replace('title = "{public_title}"', 'title = "{public_title.__class__}"'),
     "plain field name"),
    (_replace('title = "{public_title}"', 'title = "{public_title!r}"'), "plain field name"),
    (_replace('status = "investigating"', 'status = "open"'), "status must be one of"),
    (_replace('component_status = "major_outage"', 'component_status = "down"'),
     "component_status must be one of"),
    (_replace("[events.test.internal]", "[events.test.external]"),
     "events.test.internal is missing"),
    (_replace('[events.resolved.external]\nstatus = "resolved"',
              '[events.resolved.public]\nstatus = "resolved"'), "not an audience"),
    (_replace('channels = ["chat"]', 'channels = ["pager"]'), "channels must list"),
    (_replace('title = "[caresync-dr] {kind_title} {incident}',
              'title = "{kind_title {incident}'),
     "literal brace"),
    (_replace('public_impact = "CareSync may be unavailable or slow',
              'public_impact = "{stack} may be unavailable or slow'), "no {fields}"),
    ("not toml [", "not valid TOML"),
])
def test_a_broken_templates_file_is_refused_with_the_entry_named(text: str,
                                                                 fragment: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(fragment)):
        parse_templates(text)


def test_a_private_kind_needs_no_public_wording() -> None:
    templates = parse_templates(SHIPPED)
    breach = templates.kind("data-breach")
    assert (breach.public, breach.public_title, breach.component_status) == (False, "", None)
    with pytest.raises(TemplateError, match="unknown incident kind"):
        templates.kind("meteor-strike")


def test_the_notifier_fills_exactly_the_fields_templates_may_name() -> None:
    """The loader's promise that rendering cannot fail rests on this."""
    from caresync_dr.notify.notifier import Notifier
    from caresync_dr.settings import DEFAULT_ESCALATION
    from tests.notify.conftest import incident

    notifier = Notifier(incident(), load_templates(), DEFAULT_ESCALATION, [])
    assert set(notifier._context()) == set(INTERNAL_FIELDS)
    notifier.close(1)
