"""The channels' credentials: from the environment, else Secrets Manager, standby region first.

Decision (docs/communication.md, "Secrets"): the chat webhook URL and the Statuspage API key
never sit in a stack file. They live in one Secrets Manager secret (``notifySecretName``,
default ``caresync/notify``; JSON ``{"chatWebhookUrl": ..., "statuspageApiKey": ...}``)
created in the standby region with a replica in the primary region, so a regional failover
reads it without the failed region. Not Pulumi secrets: failover.py runs without the Pulumi CLI
and backend (DESIGN principle 2) and could not decrypt them at 3 a.m. The environment
(``CARESYNC_NOTIFY_CHAT_WEBHOOK_URL``, ``CARESYNC_NOTIFY_STATUSPAGE_API_KEY``) overrides the
secret: for drills, tests, or an operator whose AWS access is impaired.

Reads are best effort (2 s to connect, 5 s to answer, 2 attempts per region); a missing or
unreadable secret leaves the channel unconfigured with the reason in the report, never a
failed recovery. Values are never logged or reported.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr import aws_names
from caresync_dr.aws import BEST_EFFORT, AwsClients

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

    from caresync_dr.aws import AwsSession

log = logging.getLogger(__name__)
ENV_CHAT_WEBHOOK = "CARESYNC_NOTIFY_CHAT_WEBHOOK_URL"
ENV_STATUSPAGE_KEY = "CARESYNC_NOTIFY_STATUSPAGE_API_KEY"
CHAT_KEY = "chatWebhookUrl"
STATUSPAGE_KEY = "statuspageApiKey"


@dataclass
class NotifySecrets:
    """The values found (None when absent) and, per value, where it came from or why not."""

    chat_webhook_url: str | None = None
    statuspage_api_key: str | None = None
    sources: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _webhook_problem(value: str) -> str | None:
    return aws_names.url(value, https_only=True, loopback_http=True)


def _key_problem(value: str) -> str | None:
    if not value or not value.isprintable() or value != value.strip() or len(value) > 256:
        return "expected the API key as printable text"
    return None


def _secretsmanager(region: str, session: AwsSession) -> SecretsManagerClient:
    return AwsClients(region, BEST_EFFORT, session).secretsmanager()


def _read_secret(name: str, regions: Sequence[str], session: AwsSession,
                 problems: list[str]) -> tuple[dict[str, object], str] | None:
    for region in regions:
        try:
            answer = _secretsmanager(region, session).get_secret_value(SecretId=name)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            problems.append(f"secret {name} in {region}: {error.get('Code', 'error')}")
            continue
        except BotoCoreError as exc:
            problems.append(f"secret {name} in {region}: {type(exc).__name__}")
            continue
        text = answer.get("SecretString")
        try:
            value = json.loads(text) if text else None
        except ValueError:
            value = None
        if not isinstance(value, dict):
            problems.append(f"secret {name} in {region} is not a JSON object "
                            f"({{\"{CHAT_KEY}\": ..., \"{STATUSPAGE_KEY}\": ...}})")
            return None
        return value, f"Secrets Manager {name} ({region})"
    return None


def resolve_secrets(secret_name: str, regions: Sequence[str], *, need_chat: bool,
                    need_statuspage: bool, session: AwsSession | None = None,
                    environ: Mapping[str, str] | None = None) -> NotifySecrets:
    """Find the values the enabled channels need. Never raises; never logs a value."""
    import os

    env = os.environ if environ is None else environ
    found = NotifySecrets()
    wanted = {CHAT_KEY: (need_chat, ENV_CHAT_WEBHOOK, _webhook_problem),
              STATUSPAGE_KEY: (need_statuspage, ENV_STATUSPAGE_KEY, _key_problem)}
    values: dict[str, str] = {}
    for key, (needed, env_name, _check) in wanted.items():
        if needed and env.get(env_name):
            values[key] = env[env_name]
            found.sources[key] = f"environment {env_name}"
    missing = [k for k, (needed, _e, _c) in wanted.items() if needed and k not in values]
    if missing:
        secret = _read_secret(secret_name, regions, session or boto3.Session(), found.problems)
        if secret is not None:
            data, source = secret
            for key in missing:
                if isinstance(data.get(key), str) and data[key]:
                    values[key] = str(data[key])
                    found.sources[key] = source
                else:
                    found.problems.append(f"{source} has no {key}")
    for key, (_needed, _env, check) in wanted.items():
        if key not in values:
            continue
        problem = check(values[key])
        if problem:
            found.problems.append(f"{key} from {found.sources.pop(key)}: {problem}")
            continue
        if key == CHAT_KEY:
            found.chat_webhook_url = values[key]
        else:
            found.statuspage_api_key = values[key]
    return found
