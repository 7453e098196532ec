"""The export is faithful: Checkov, run on it, fails a deliberately broken resource.

A public, unencrypted database and a bucket without its encryption and public-access-block
resources must fail Checkov's own checks, while the program's real resources pass the same
checks: the attribute names and shapes reach Checkov (CKV_AWS_16/17 read ``storage_encrypted``
and ``publicly_accessible``; CKV_AWS_145 and CKV2_AWS_6 are graph checks that only pass when
the references say which bucket an encryption or public-access-block resource belongs to).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from caresync_dr.offline.runtime import RegisteredResource
from caresync_dr.preview import terraform_plan
from caresync_dr.scan.checkov import run_checkov
from tests import offline_runs

DATABASE = "aws_db_instance.primary-database-instance"
BUCKET = "aws_s3_bucket.primary-backups-bucket"
CHECKS = {"CKV_AWS_16": DATABASE, "CKV_AWS_17": DATABASE, "CKV_AWS_145": BUCKET,
          "CKV2_AWS_6": BUCKET}


def broken(resources: list[RegisteredResource]) -> list[RegisteredResource]:
    out = []
    for resource in resources:
        if resource.name in ("primary-backups-bucket-sse",
                             "primary-backups-bucket-public-access-block"):
            continue
        if resource.name == "primary-database-instance":
            out.append(dataclasses.replace(resource, inputs={
                **resource.inputs, "storageEncrypted": False, "publiclyAccessible": True}))
        else:
            out.append(resource)
    assert len(out) == len(resources) - 2
    return out


def write(path: Path, resources: list[RegisteredResource]) -> Path:
    path.write_text(json.dumps(terraform_plan.export(resources, "us-east-1").plan))
    return path


def test_checkov_fails_a_public_unencrypted_database_and_an_unencrypted_bucket(
        checkov: Path, tmp_path: Path) -> None:
    resources = list(offline_runs.steady()["prod"].resources)
    plans = [write(tmp_path / "real.json", resources),
             write(tmp_path / "broken.json", broken(resources))]
    report = run_checkov(checkov, plans, checks=sorted(CHECKS))
    verdicts = {(r.state, r.check_id, r.resource): r.passed for r in report.results}
    for check, resource in CHECKS.items():
        assert verdicts.get(("real", check, resource)) is True, (check, resource)
        assert verdicts.get(("broken", check, resource)) is False, (check, resource)
    # Everything not broken keeps passing: the other buckets keep their blocks.
    assert verdicts[("broken", "CKV2_AWS_6", "aws_s3_bucket.primary-audit-bucket")] is True
