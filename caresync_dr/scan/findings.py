"""Checkov's JSON report, reduced to what the gate needs: each check's result per resource.

Checkov (``-o json``) prints one report per framework, or a list of them; each has
``results.passed_checks`` / ``failed_checks`` entries with ``check_id``, ``check_name``,
``resource`` (the Terraform address) and ``file_path`` (the plan, named ``<stack>-<state>.json``
by :mod:`caresync_dr.scan.checkov`), and a ``summary`` with ``checkov_version``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any


class ReportError(ValueError):
    """Checkov's output is not the JSON report this gate reads."""


@dataclass(frozen=True, order=True)
class Result:
    state: str  # the plan's name: prod-bootstrap, prod-steady, dr-steady, dr-promoted
    check_id: str  # CKV_AWS_18
    resource: str  # aws_s3_bucket.primary-backups-bucket
    passed: bool
    check_name: str = ""
    guideline: str = ""


@dataclass(frozen=True)
class Report:
    version: str
    results: tuple[Result, ...]

    def failed(self) -> list[Result]:
        return [r for r in self.results if not r.passed]


def _reports(document: Any) -> Iterable[dict[str, Any]]:
    if isinstance(document, dict):
        return [document]
    if isinstance(document, list) and all(isinstance(d, dict) for d in document):
        return document
    raise ReportError("Checkov's output is neither a report nor a list of reports")


def parse(text: str) -> Report:
    """Checkov's stdout (``-o json``) -> :class:`Report`; raises :class:`ReportError`."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"Checkov did not print JSON ({exc}): {text[:200]!r}") from exc
    results: list[Result] = []
    version = ""
    for report in _reports(document):
        summary = report.get("summary", {})
        version = str(summary.get("checkov_version", version))
        checks = report.get("results", {})
        if not isinstance(checks, dict):  # an empty run reports no results at all
            continue
        for key, passed in (("passed_checks", True), ("failed_checks", False)):
            for entry in checks.get(key, []):
                try:
                    results.append(Result(
                        state=PurePosixPath(str(entry["file_path"])).stem,
                        check_id=str(entry["check_id"]), resource=str(entry["resource"]),
                        passed=passed, check_name=str(entry.get("check_name", "")),
                        guideline=str(entry.get("guideline") or "")))
                except KeyError as exc:
                    raise ReportError(f"a Checkov result lacks {exc}") from exc
    return Report(version=version, results=tuple(sorted(results)))
