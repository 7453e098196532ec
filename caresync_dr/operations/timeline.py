"""The incident record: the JSON report and the Markdown timeline, kept locally beside
``--report`` and uploaded to the site's bucket under ``incidents/<run id>``."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from caresync_dr.cli.reporting import write_json_report, write_text_atomic

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)
INCIDENTS_PREFIX = "incidents/"


def _cell(value: object) -> str:
    return "-" if value is None else str(value).replace("|", "\\|")


def render_steps(steps: list[dict[str, Any]]) -> list[str]:
    """The steps as a Markdown table: name, outcome, start, end, seconds, sentence."""
    lines = ["| step | outcome | started | ended | seconds | detail |",
             "|---|---|---|---|---|---|"]
    for step in steps:
        lines.append(f"| {step['name']} | {step['outcome']} | {_cell(step['started_at'])} | "
                     f"{_cell(step['ended_at'])} | {_cell(step['seconds'])} | "
                     f"{_cell(step['detail'])} |")
    return lines


def render_timeline(report: dict[str, Any]) -> str:
    """The generic timeline of an engine report (an operation may render its own)."""
    lines = [
        f"# Incident timeline: {report['title']} {report['runId']}",
        "",
        f"- Outcome: **{report['outcome']}** (exit {report['exitCode']}): {report['message']}",
        f"- Started {report['startedAt']}, ended {report['endedAt']}",
        f"- Run by {report.get('operator') or '-'}",
        "",
        *render_steps(report["steps"]),
    ]
    return "\n".join(lines) + "\n"


def upload_timeline(s3: Callable[[], S3Client], bucket: str, run_id: str,
                    report: dict[str, Any], markdown: str, *,
                    prefix: str = INCIDENTS_PREFIX) -> str | None:
    """Best effort: ``<prefix><run id>.md`` and ``.json`` in ``bucket``; the timeline's S3 URL,
    or None (logged) when the bucket did not take them."""
    base = f"{prefix}{run_id}"
    try:
        client = s3()
        client.put_object(Bucket=bucket, Key=base + ".md", Body=markdown.encode("utf-8"),
                          ContentType="text/markdown")
        client.put_object(Bucket=bucket, Key=base + ".json",
                          Body=json.dumps(report, indent=2, sort_keys=True,
                                          default=str).encode("utf-8"),
                          ContentType="application/json")
    except (ClientError, BotoCoreError) as exc:
        log.warning("could not upload the incident timeline to s3://%s/%s.md: %s",
                    bucket, base, exc)
        return None
    return f"s3://{bucket}/{base}.md"


def write_local(path: Path, report: dict[str, Any], markdown: str) -> Path:
    """The report at ``path`` and the timeline beside it (``.md``); returns the timeline's."""
    write_json_report(path, report)
    timeline = path.with_suffix(".md")
    write_text_atomic(timeline, markdown)
    return timeline
