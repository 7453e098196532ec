"""``notify.py --test``'s logic: chat and e-mail get a test message, the status page is only
read, and a missing or dead channel is named with its reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from caresync_dr.emulation.notify_doubles import ChatDouble, StatusPageDouble, refusing_url
from caresync_dr.notify.channel_check import render_results, try_channels
from caresync_dr.settings import Settings

STANDBY, PRIMARY = "us-west-2", "us-east-1"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def aws() -> Iterator[boto3.Session]:
    with mock_aws():
        for region, site in ((STANDBY, "standby"), (PRIMARY, "primary")):
            boto3.client("sns", region_name=region).create_topic(Name=f"caresync-{site}-alerts")
        yield boto3.Session(region_name=STANDBY)


def _secret(chat_url: str, statuspage: StatusPageDouble) -> None:
    boto3.client("secretsmanager", region_name=STANDBY).create_secret(
        Name="caresync/notify", SecretString=json.dumps(
            {"chatWebhookUrl": chat_url, "statuspageApiKey": statuspage.api_key}))


def test_every_channel_answers(settings: Settings, aws: boto3.Session, chat: ChatDouble,
                               statuspage: StatusPageDouble) -> None:
    _secret(chat.url, statuspage)
    result = try_channels(settings, session=aws, environ={})
    assert result["ok"], result
    assert set(result["channels"]) == {"chat", "email", "statuspage"}
    assert "caresync-standby-alerts" in result["channels"]["email"]["detail"]
    assert "No action needed" in chat.posted[0]["text"]
    assert {c.method for c in statuspage.calls} == {"GET"}       # nothing public
    assert "read only" in result["channels"]["statuspage"]["detail"]
    assert "chat" in render_results(result)


def test_a_dead_or_missing_channel_is_named(settings: Settings, aws: boto3.Session,
                                            statuspage: StatusPageDouble) -> None:
    _secret(refusing_url(), statuspage)
    result = try_channels(settings, only=("chat",), session=aws, environ={})
    assert not result["ok"]
    assert result["channels"]["chat"]["status"] == "failed"
    assert "connection refused" in result["channels"]["chat"]["detail"]


def test_a_channel_without_its_secret_is_not_configured(settings: Settings,
                                                         aws: boto3.Session) -> None:
    result = try_channels(settings, session=aws, environ={})
    assert not result["ok"]
    assert result["channels"]["chat"]["status"] == "not configured"
    assert "ResourceNotFoundException" in result["channels"]["chat"]["detail"]
    assert result["channels"]["email"]["status"] == "sent"


def test_the_command_exit_codes_and_report(aws: boto3.Session, chat: ChatDouble,
                                           statuspage: StatusPageDouble,
                                           tmp_path: Path) -> None:
    """scripts/notify.py --test: 0 when every channel answered, 5 when one did not, 2 for a
    stack that does not exist; the report names each channel's result."""
    from caresync_dr.commands import notify as command

    project = tmp_path / "project"
    project.mkdir()
    text = (ROOT / "Pulumi.dr.yaml").read_text().replace(
        "    componentIds: [r9hgdzfqbtv2, b13yz5g2cw10]",
        f"    componentIds: [r9hgdzfqbtv2, b13yz5g2cw10]\n    apiUrl: {statuspage.api_url}")
    (project / "Pulumi.dr.yaml").write_text(text)
    _secret(chat.url, statuspage)
    report = tmp_path / "notify.json"
    argv = ["--test", "--project-dir", str(project), "--report", str(report)]
    assert command.main(argv, session=aws) == 0
    written = json.loads(report.read_text())
    assert written["ok"] is True and written["channels"]["chat"]["status"] == "sent"
    chat.behaviour.fail_next = [500] * 10
    assert command.main([*argv, "--channel", "chat"], session=aws) == 5
    assert json.loads(report.read_text())["channels"] == {
        "chat": json.loads(report.read_text())["channels"]["chat"]}
    assert command.main(["--test", "--stack", "nope", "--project-dir", str(project)],
                        session=aws) == 2
