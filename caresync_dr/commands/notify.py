"""``scripts/notify.py`` (``caresync-notify``): test the incident channels of a stack (``--test``).

The on-call engineer's check that chat, e-mail and the status page will reach people before an
incident needs them (docs/communication.md, "Testing a channel").
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import boto3

from caresync_dr.cli import (
    CommandParser,
    ExitCode,
    Invocation,
    UsageError,
    command_parser,
    run_main,
)
from caresync_dr.cli.main import Body
from caresync_dr.notify.channel_check import render_results, try_channels
from caresync_dr.notify.secrets import ENV_CHAT_WEBHOOK, ENV_STATUSPAGE_KEY
from caresync_dr.settings import (
    NOTIFY_CHANNELS,
    SettingsError,
    StackFileError,
    settings_from_stack_file,
)

log = logging.getLogger(__name__)
PROJECT_DIR = Path(__file__).resolve().parents[2]

NOTES = f"""\
what --test sends:
  chat, email   a test message ("No action needed") to the webhook and the alert topic
                (standby region first, the primary's if the standby does not answer)
  statuspage    nothing: the page and each configured component are read with the API key,
                because a test must never open a public incident

environment:
  {ENV_CHAT_WEBHOOK:<35} chat webhook URL instead of the notify secret's
  {ENV_STATUSPAGE_KEY:<35} Statuspage API key instead of the notify secret's
  AWS_ENDPOINT_URL                    send every AWS call to this endpoint (emulator drills)
"""
EXIT_CODES = [
    (ExitCode.OK, "every tested channel answered"),
    (ExitCode.USAGE, "bad arguments, unknown stack or malformed settings; nothing was sent"),
    (ExitCode.REFUSED, "AWS did not answer or no credentials (the caller's account could not\n"
                       "be read); nothing was sent"),
    (ExitCode.NOT_READY, "a channel failed or is not configured (the report says which and why)"),
]


def build_parser() -> CommandParser:
    parser = command_parser(
        "notify.py", "Test the incident notification channels of a stack: the chat webhook, "
        "e-mail through the alert topic, the status page.", EXIT_CODES, notes=NOTES)
    parser.add_argument("--test", action="store_true", required=True,
                        help="send a test message to each channel (read-only for the status "
                             "page)")
    parser.add_argument("--stack", default="dr",
                        help="stack whose Pulumi.<stack>.yaml names the channels (default: dr)")
    parser.add_argument("--channel", action="append", choices=NOTIFY_CHANNELS, default=[],
                        help="test only this channel (repeatable; default: every channel "
                             "notifyChannels enables)")
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR, metavar="DIR",
                        help="where Pulumi.<stack>.yaml lives (default: the repository)")
    return parser


def make_body(session: boto3.Session | None = None) -> Body:
    def body(args: argparse.Namespace, run: Invocation) -> int:
        run.data.update(stack=args.stack, mode="test")
        try:
            settings = settings_from_stack_file(args.stack, args.project_dir)
        except (StackFileError, SettingsError) as exc:
            raise UsageError(str(exc)) from exc
        result = try_channels(settings, only=args.channel, session=session or boto3.Session())
        sys.stdout.write(render_results(result) + "\n")
        run.data.update(channels=result["channels"], ok=result["ok"],
                        message_sent=result["message"])
        if result["ok"]:
            run.message = "every tested channel answered"
            return int(ExitCode.OK)
        failed = [f"{name}: {r['status']}" for name, r in result["channels"].items()
                  if r["status"] != "sent"]
        run.message = "not every channel answered: " + "; ".join(failed)
        log.error("%s", run.message)
        return int(ExitCode.NOT_READY)

    return body


def main(argv: list[str] | None = None, session: boto3.Session | None = None) -> int:
    return run_main(build_parser(), make_body(session), argv)
