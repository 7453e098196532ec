"""The escalation and communication settings: the seed's defaults, and every rule named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from caresync_dr.settings import (
    DEFAULT_ESCALATION,
    SettingsError,
    load_settings,
    read_stack_file,
    settings_from_stack_file,
)

ROOT = Path(__file__).resolve().parents[2]
NOTIFY_KEYS = ("escalationTiers", "notifyChannels", "notifySecretName", "statusPage")


def _values(**overrides: object) -> dict[str, object]:
    values, _ = read_stack_file("dr", ROOT)
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def _tiers(**changes: Any) -> list[dict[str, Any]]:
    """The committed tiers with ``changes`` ({index: {field: value}}) applied."""
    values, _ = read_stack_file("dr", ROOT)
    tiers: list[dict[str, Any]] = json.loads(json.dumps(values["escalationTiers"]))
    for index, fields in changes.items():
        tiers[int(index[1:])].update(fields)
    return tiers


def test_without_the_keys_the_seed_plan_applies() -> None:
    """On-call 0-15 min, technical lead 15-30, CTO 30-60, CEO after 60; chat and e-mail."""
    settings = load_settings("dr", _values(**dict.fromkeys(NOTIFY_KEYS)), "us-west-2")
    assert settings.escalation_tiers == DEFAULT_ESCALATION
    assert [(t.who, t.after_minutes) for t in settings.escalation_tiers] == [
        ("On-call engineer", 0), ("Technical lead", 15), ("CTO", 30), ("CEO", 60)]
    assert settings.notify_channels == ("chat", "email")
    assert settings.status_page is None
    assert settings.notify_secret_name == "caresync/notify"


def test_committed_stacks_carry_the_plan_and_agree() -> None:
    prod = settings_from_stack_file("prod", ROOT)
    dr = settings_from_stack_file("dr", ROOT)
    for name in ("escalation_tiers", "notify_channels", "notify_secret_name", "status_page"):
        assert getattr(prod, name) == getattr(dr, name), name
    assert [t.after_minutes for t in dr.escalation_tiers] == [0, 15, 30, 60]
    assert dr.status_page is not None and dr.status_page.api_url.startswith("https://")
    assert "statuspage" in dr.notify_channels


def test_objects_arrive_as_json_strings_from_pulumi() -> None:
    values = _values(escalationTiers=json.dumps(_tiers()),
                     statusPage=json.dumps({"pageId": "abc", "componentIds": ["x1"]}),
                     notifyChannels='["email"]')
    settings = load_settings("dr", values, "us-west-2")
    assert settings.escalation_tiers[1].emails == ("tech-lead@caresync.health",)
    assert settings.notify_channels == ("email",)


@pytest.mark.parametrize(
    ("overrides", "key", "fragment"),
    [
        ({"escalationTiers": _tiers(t0={"afterMinutes": 5})}, "escalationTiers[0].afterMinutes",
         "told at once"),
        ({"escalationTiers": _tiers(t2={"afterMinutes": 15})}, "escalationTiers[2].afterMinutes",
         "later than the tier before (technical-lead, 15 min)"),
        ({"escalationTiers": _tiers(t1={"channels": ["sms"]})}, "escalationTiers[1].channels",
         "'sms' is not a channel"),
        ({"escalationTiers": _tiers(t1={"channels": ["statuspage"]})},
         "escalationTiers[1].channels", "one of chat, email"),
        ({"escalationTiers": _tiers(t1={"channels": []})}, "escalationTiers[1].channels",
         "non-empty list"),
        ({"escalationTiers": _tiers(t3={"name": "cto"})}, "escalationTiers", "names a tier twice"),
        ({"escalationTiers": _tiers(t1={"name": "Tech Lead"})}, "escalationTiers[1].name",
         "short id"),
        ({"escalationTiers": _tiers(t1={"afterMinutes": 2000})},
         "escalationTiers[1].afterMinutes", "between 0 and 1440"),
        ({"escalationTiers": _tiers(t1={"emails": ["oncall@caresync.health"]})},
         "escalationTiers[1].emails", "already in alertEmails"),
        ({"escalationTiers": _tiers(t2={"emails": ["tech-lead@caresync.health"]})},
         "escalationTiers[2].emails", "already in tier technical-lead"),
        ({"escalationTiers": _tiers(t1={"phone": "+1555"})}, "escalationTiers[1]",
         "name, who, afterMinutes"),
        ({"escalationTiers": _tiers(t1={"who": " "})}, "escalationTiers[1].who", "printable"),
        ({"escalationTiers": []}, "escalationTiers", "1 to 10 tiers"),
        ({"escalationTiers": _tiers(t1={"channels": ["chat"]})}, "escalationTiers[1].emails",
         "never be mailed"),
        ({"escalationTiers": _tiers(t1={"channels": ["email"]})},
         "escalationTiers[1].chatMention", "never be posted"),
        ({"notifyChannels": ["chat", "pager"]}, "notifyChannels", "'pager' is not a channel"),
        ({"notifyChannels": ["statuspage"], "statusPage": None}, "statusPage",
         "notifyChannels lists statuspage"),
        ({"statusPage": {"pageId": "abc"}}, "statusPage", "pageId, componentIds"),
        ({"statusPage": {"pageId": "ABC-1", "componentIds": ["x"]}}, "statusPage.pageId",
         "Statuspage id"),
        ({"statusPage": {"pageId": "abc", "componentIds": []}}, "statusPage.componentIds",
         "non-empty list"),
        ({"statusPage": {"pageId": "abc", "componentIds": ["x", "x"]}},
         "statusPage.componentIds", "twice"),
        ({"statusPage": {"pageId": "abc", "componentIds": ["x"],
                         "apiUrl": "http://statuspage.example.com/v1"}},
         "statusPage.apiUrl", "https://"),
        ({"notifySecretName": "caresync notify"}, "notifySecretName", "CreateSecret"),
    ],
)
def test_invalid_notify_setting_names_key_value_and_rule(overrides: dict[str, object], key: str,
                                                         fragment: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings("dr", _values(**overrides), "us-west-2")
    assert err.value.key == key
    assert f"caresync-dr:{key}" in str(err.value)
    assert fragment in str(err.value)


def test_a_loopback_status_page_double_is_allowed() -> None:
    """Drills and tests point the channel at a local double; nothing else may be plain http."""
    page = {"pageId": "abc", "componentIds": ["x"], "apiUrl": "http://127.0.0.1:8123/v1/"}
    settings = load_settings("dr", _values(statusPage=page), "us-west-2")
    assert settings.status_page is not None
    assert settings.status_page.api_url == "http://127.0.0.1:8123/v1"


def test_a_webhook_url_in_the_stack_file_is_refused_without_echoing_it() -> None:
    """A chat webhook URL is a credential: the old webhookUrl key is refused, and the error
    line (which lands in CI logs) never repeats its value."""
    secret = "https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXXXXXX"
    with pytest.raises(SettingsError) as err:
        load_settings("dr", _values(webhookUrl=secret), "us-west-2")
    assert err.value.key == "webhookUrl"
    assert "Secrets Manager" in str(err.value) and "notifySecretName" in str(err.value)
    assert "XXXX" not in str(err.value)
