"""The reviewed skip file: each Checkov finding not fixed names its check, resources and reason.

``policy/checkov-skips.toml``::

    [[skip]]
    check = "CKV_AWS_260"
    resources = ["aws_security_group.primary-network-alb-sg"]
    reason = "Port 80 only answers with a redirect to HTTPS."

A skip covers that check on those resources in every state they appear in. The gate fails on
a finding no skip covers, and on a skip that covers nothing (a fixed finding must leave the
file, so the file stays short and every line in it is still true).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from caresync_dr.scan.findings import Result

CHECK_ID = re.compile(r"CKV2?_[A-Z0-9]+_\d+")
ADDRESS = re.compile(r"[a-z][a-z0-9_]*\.[A-Za-z_][A-Za-z0-9_-]*")
# A second sentence: a full stop, a space and a capital letter.
SECOND_SENTENCE = re.compile(r"[.!?] +[A-Z]")
MAX_REASON = 400


class SkipFileError(ValueError):
    """The skip file is malformed; the message names the entry and what is wrong."""


@dataclass(frozen=True)
class Skip:
    check: str
    resources: tuple[str, ...]
    reason: str

    def covers(self, result: Result) -> bool:
        return result.check_id == self.check and result.resource in self.resources


def _skip(index: int, entry: Mapping[str, Any]) -> Skip:
    where = f"skip #{index + 1}"
    unknown = sorted(set(entry) - {"check", "resources", "reason"})
    if unknown:
        raise SkipFileError(f"{where}: unknown key(s) {', '.join(unknown)}")
    check = entry.get("check")
    if not isinstance(check, str) or not CHECK_ID.fullmatch(check):
        raise SkipFileError(f"{where}: check must be a Checkov id such as CKV_AWS_18, "
                            f"not {check!r}")
    resources = entry.get("resources")
    if not isinstance(resources, list) or not resources or not all(
            isinstance(r, str) and ADDRESS.fullmatch(r) for r in resources):
        raise SkipFileError(f"{where} ({check}): resources must be a non-empty list of "
                            "Terraform addresses (type.name)")
    if len(set(resources)) != len(resources):
        raise SkipFileError(f"{where} ({check}): a resource is listed twice")
    reason = entry.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise SkipFileError(f"{where} ({check}): a reason is required")
    reason = " ".join(reason.split())
    if not reason.endswith(".") or SECOND_SENTENCE.search(reason[:-1]) \
            or len(reason) > MAX_REASON:
        raise SkipFileError(f"{where} ({check}): the reason must be one sentence ending with "
                            f"a full stop, at most {MAX_REASON} characters")
    return Skip(check, tuple(resources), reason)


def parse(text: str) -> list[Skip]:
    """The skips of a skip file's text; raises :class:`SkipFileError`."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SkipFileError(f"not valid TOML: {exc}") from exc
    unknown = sorted(set(document) - {"skip"})
    if unknown:
        raise SkipFileError(f"unknown top-level key(s) {', '.join(unknown)}: use [[skip]]")
    entries = document.get("skip", [])
    if not isinstance(entries, list):
        raise SkipFileError("skip must be an array of tables ([[skip]])")
    skips = [_skip(i, e) for i, e in enumerate(entries)]
    seen: set[tuple[str, str]] = set()
    for skip in skips:
        for resource in skip.resources:
            if (skip.check, resource) in seen:
                raise SkipFileError(f"{skip.check} on {resource} is skipped twice")
            seen.add((skip.check, resource))
    return skips


def load(path: Path) -> list[Skip]:
    try:
        return parse(path.read_text())
    except OSError as exc:
        raise SkipFileError(f"cannot read {path}: {exc.strerror}") from exc
    except SkipFileError as exc:
        raise SkipFileError(f"{path}: {exc}") from exc


@dataclass(frozen=True)
class Verdict:
    skipped: tuple[tuple[Result, Skip], ...]  # failed, covered by a reviewed skip
    unexplained: tuple[Result, ...]  # failed, neither fixed nor skipped
    stale: tuple[tuple[str, str], ...]  # (check, resource) skipped but failing nowhere

    @property
    def ok(self) -> bool:
        return not self.unexplained and not self.stale


def judge(results: Iterable[Result], skips: Iterable[Skip]) -> Verdict:
    skips = list(skips)
    skipped: list[tuple[Result, Skip]] = []
    unexplained: list[Result] = []
    used: set[tuple[str, str]] = set()
    for result in results:
        if result.passed:
            continue
        cover = next((s for s in skips if s.covers(result)), None)
        if cover is None:
            unexplained.append(result)
        else:
            skipped.append((result, cover))
            used.add((result.check_id, result.resource))
    stale = sorted({(s.check, r) for s in skips for r in s.resources} - used)
    return Verdict(tuple(skipped), tuple(unexplained), tuple(stale))
