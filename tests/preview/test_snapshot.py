"""Snapshots are deterministic and their diff names every changed property."""

from __future__ import annotations

from pathlib import Path

import pytest

from caresync_dr.preview import render, snapshot
from policy.local import Resource

DB = "aws:rds/instance:Instance"


def _resources(retention: float = 30.0) -> list[Resource]:
    return [
        Resource(DB, "db", {"instanceClass": "db.r6g.large", "backupRetentionPeriod": retention,
                            "tags": {"b": "2", "a": "1"}}),
        Resource("aws:s3/bucket:Bucket", "backups", {"bucket": "caresync-backups"}),
        Resource("caresync:dr:Site", "primary", {}, custom=False),
    ]


def test_snapshot_is_sorted_and_normalised() -> None:
    built = snapshot.build("prod", reversed(_resources()))
    assert list(built["resources"]) == ["aws:rds/instance:Instance::db",
                                        "aws:s3/bucket:Bucket::backups",
                                        "caresync:dr:Site::primary"]
    db = built["resources"]["aws:rds/instance:Instance::db"]["properties"]
    assert db["backupRetentionPeriod"] == 30 and isinstance(db["backupRetentionPeriod"], int)
    assert list(db["tags"]) == ["a", "b"]
    assert snapshot.dumps(built) == snapshot.dumps(snapshot.build("prod", _resources()))


def test_diff_names_created_deleted_and_changed() -> None:
    old = snapshot.build("prod", _resources())
    new = snapshot.build("prod", [*_resources(7.0)[:1], Resource(DB, "db2", {})])
    assert snapshot.diff(old, new) == [
        "~ aws:rds/instance:Instance::db: backupRetentionPeriod: 30 -> 7",
        "+ aws:rds/instance:Instance::db2",
        "- aws:s3/bucket:Bucket::backups",
        "- caresync:dr:Site::primary",
    ]
    assert snapshot.diff(old, old) == []


def test_nested_property_change_is_reported_by_path() -> None:
    old = snapshot.build("prod", _resources())
    changed = [Resource(DB, "db", {**_resources()[0].inputs, "tags": {"a": "1"}})]
    new = snapshot.build("prod", [*changed, *_resources()[1:]])
    assert snapshot.diff(old, new) == ['~ aws:rds/instance:Instance::db: tags.b: "2" -> (unset)']


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="two resources share type and name"):
        snapshot.build("prod", [*_resources(), *_resources()[:1]])


def test_load_refuses_other_documents(tmp_path: Path) -> None:
    path = tmp_path / "preview-prod.json"
    path.write_text('{"version": 99}')
    with pytest.raises(ValueError, match="not a version-1 preview snapshot"):
        snapshot.load(path)


def test_table_shows_key_properties() -> None:
    text = render.table(snapshot.build("prod", _resources()))
    assert "2 resources (1 components)" in text
    assert "instanceClass=db.r6g.large" in text and "backupRetentionPeriod=30" in text
