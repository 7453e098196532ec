"""Local retention keeps exactly the last N days (by the time in the name)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from caresync_dr.backup.manifest import DATA_SUFFIX, MANIFEST_SUFFIX, backup_name
from caresync_dr.backup.prune import plan_prune, prune

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def make(directory: Path, when: datetime) -> str:
    name = backup_name(when)
    (directory / f"{name}{DATA_SUFFIX}").write_bytes(b"x")
    (directory / f"{name}{MANIFEST_SUFFIX}").write_text("{}")
    return name


def test_keeps_exactly_the_last_30_days(tmp_path: Path) -> None:
    # every 6 hours for 40 days, plus the boundary cases
    names = {make(tmp_path, NOW - timedelta(hours=6 * i)): NOW - timedelta(hours=6 * i)
             for i in range(160)}
    exactly = make(tmp_path, NOW - timedelta(days=30))
    just_over = make(tmp_path, NOW - timedelta(days=30, seconds=1))
    just_under = make(tmp_path, NOW - timedelta(days=29, hours=23, minutes=59, seconds=59))
    unrelated = tmp_path / "notes.txt"
    unrelated.write_text("not a backup")

    plan = prune(tmp_path, NOW, 30)

    kept = {p.name.removesuffix(DATA_SUFFIX) for p in tmp_path.glob(f"*{DATA_SUFFIX}")}
    expected = {n for n, t in names.items() if NOW - t <= timedelta(days=30)}
    assert kept == expected | {exactly, just_under}
    assert just_over not in kept and just_over in plan.delete
    assert len(expected) == 121  # 30 days * 4 a day, plus the one at exactly 30 days
    assert not list(tmp_path.glob(f"{just_over}*"))  # manifest deleted with its data
    assert unrelated.exists()


def test_never_deletes_the_newest_backup(tmp_path: Path) -> None:
    old = [make(tmp_path, NOW - timedelta(days=d)) for d in (90, 60, 45)]
    plan = prune(tmp_path, NOW, 30)
    assert plan.delete == old[:2] and plan.keep == [old[2]]


def test_dry_run_deletes_nothing(tmp_path: Path) -> None:
    make(tmp_path, NOW - timedelta(days=40))
    make(tmp_path, NOW)
    prune(tmp_path, NOW, 30, dry_run=True)
    assert len(list(tmp_path.glob(f"*{DATA_SUFFIX}"))) == 2


def test_retention_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 1 day"):
        plan_prune(tmp_path, NOW, 0)
