"""Build a :class:`~caresync_dr.notify.notifier.Notifier` from the stack's settings.

The caller (an operator command, through the operation engine) says which incident, which
alert topics in which order (a regional failover: the standby region's first) and which
regions to read the secret from; this module picks the channels ``notifyChannels`` enables,
finds their credentials (:mod:`caresync_dr.notify.secrets`) and records why a channel is left
out, so the report says "chat: not configured: no chatWebhookUrl in ..." instead of nothing.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from caresync_dr.names import alert_topic_name
from caresync_dr.notify.chat import ChatChannel
from caresync_dr.notify.email import EmailChannel, TopicTarget
from caresync_dr.notify.messages import Channel, utc_now
from caresync_dr.notify.notifier import Clock, Incident, Notifier, Persist
from caresync_dr.notify.recording import RECORD_ENV, RecordingChannel
from caresync_dr.notify.secrets import resolve_secrets
from caresync_dr.notify.statuspage import StatusPageChannel
from caresync_dr.notify.templates import Templates, load_templates
from caresync_dr.settings import Settings

if TYPE_CHECKING:
    from caresync_dr.aws import AwsSession

_TOPIC_ARN = re.compile(r"arn:(?P<partition>[a-z-]+):sns:(?P<region>[a-z0-9-]+):"
                        r"(?P<account>\d{12}):(?P<name>[A-Za-z0-9_-]+)")


def alert_topic_arn(partition: str, region: str, account: str, site: str) -> str:
    """Each site's alert topic (:func:`caresync_dr.names.alert_topic_name`) in its region."""
    return f"arn:{partition}:sns:{region}:{account}:{alert_topic_name(site)}"


def site_topics(settings: Settings, known_topic_arn: str,
                standby_first: bool = True) -> list[TopicTarget]:
    """Both sites' alert topics, in the order to try them, from one known topic ARN (the
    inventory's standby topic). Standby first for a regional failover; primary first for an
    operation inside the healthy primary region."""
    match = _TOPIC_ARN.fullmatch(known_topic_arn)
    if match is None or match["name"] not in (alert_topic_name("primary"),
                                              alert_topic_name("standby")):
        return [TopicTarget(known_topic_arn.split(":")[3], known_topic_arn)]
    partition, account = match["partition"], match["account"]
    standby = TopicTarget(settings.standby_region, alert_topic_arn(
        partition, settings.standby_region, account, "standby"))
    primary = TopicTarget(settings.primary_region, alert_topic_arn(
        partition, settings.primary_region, account, "primary"))
    return [standby, primary] if standby_first else [primary, standby]


def operator_name() -> str:
    """Who runs the command, for the internal messages (user@host)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def build_channels(settings: Settings, incident_key: str, topics: Sequence[TopicTarget], *,
                   secret_regions: Sequence[str], session: AwsSession | None = None,
                   environ: Mapping[str, str] | None = None,
                   ) -> tuple[list[Channel], dict[str, str]]:
    """(channels, {channel: why it is not configured})."""
    env = os.environ if environ is None else environ
    enabled = settings.notify_channels
    page = settings.status_page
    secrets = resolve_secrets(settings.notify_secret_name, secret_regions,
                              need_chat="chat" in enabled,
                              need_statuspage="statuspage" in enabled and page is not None,
                              session=session, environ=env)
    why = "; ".join(secrets.problems) or "nothing found"
    channels: list[Channel] = []
    missing: dict[str, str] = {}
    if "chat" in enabled:
        if secrets.chat_webhook_url:
            channels.append(ChatChannel(secrets.chat_webhook_url))
        else:
            missing["chat"] = f"no chatWebhookUrl ({why})"
    if "email" in enabled:
        if topics:
            channels.append(EmailChannel(topics, session))
        else:
            missing["email"] = "no alert topic is known"
    if "statuspage" in enabled and page is not None:
        if secrets.statuspage_api_key:
            channels.append(StatusPageChannel(page.api_url, page.page_id, page.component_ids,
                                              api_key=secrets.statuspage_api_key,
                                              incident_key=incident_key))
        else:
            missing["statuspage"] = f"no statuspageApiKey ({why})"
    record = env.get(RECORD_ENV)
    if record:
        channels.append(RecordingChannel(Path(record)))
    return channels, missing


def build_notifier(settings: Settings, incident: Incident, *, topics: Sequence[TopicTarget],
                   secret_regions: Sequence[str] | None = None,
                   session: AwsSession | None = None,
                   state: Mapping[str, Any] | None = None, persist: Persist | None = None,
                   clock: Clock = utc_now, environ: Mapping[str, str] | None = None,
                   templates: Templates | None = None) -> Notifier:
    """The notifier of one incident, its channels built from ``settings``. The secret is read
    in ``secret_regions`` (default: the standby region, then the primary)."""
    regions = secret_regions or (settings.standby_region, settings.primary_region)
    channels, missing = build_channels(settings, incident.key, topics, secret_regions=regions,
                                       session=session, environ=environ)
    return Notifier(incident, templates or load_templates(), settings.escalation_tiers,
                    channels, unconfigured=missing, state=state, persist=persist, clock=clock)
