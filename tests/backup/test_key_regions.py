"""Issue 9 fault 9, backups: the data key is wrapped under both sites' KMS keys, so a backup (in
either region's bucket) restores with either region down. moto holds both regions; a region is
taken down with a before-send handler (tests/backup/regions.py). moto 5.2's S3 replication copies
nothing, so the test copies the objects into the standby bucket as replication would."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from moto import mock_aws

from caresync_dr.aws import BEST_EFFORT, AwsClients
from caresync_dr.backup.create import BackupOptions, take_backup
from caresync_dr.backup.errors import KeyUnavailableError
from caresync_dr.backup.key_wraps import unwrap
from caresync_dr.backup.keys import DataKey
from caresync_dr.commands import backup as backup_script
from caresync_dr.commands import restore_check as restore_test_script
from caresync_dr.commands import rollback as restore_script
from caresync_dr.pg.cluster import PostgresCluster
from tests.backup.regions import regions_down

PRIMARY, STANDBY = "us-east-1", "us-west-2"  # Pulumi.prod.yaml's primaryRegion, standbyRegion
BUCKETS = {PRIMARY: "caresync-primary-backups", STANDBY: "caresync-standby-backups"}


@pytest.fixture
def sites(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Both sites' keys under the stack's aliases, and each site's backup bucket; yields the
    key ARNs by region."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    with mock_aws():
        arns = {}
        for region, site in ((PRIMARY, "primary"), (STANDBY, "standby")):
            clients = AwsClients(region)
            key = clients.kms().create_key(Description=f"caresync {site}")["KeyMetadata"]
            clients.kms().create_alias(AliasName=f"alias/caresync-{site}",
                                       TargetKeyId=key["KeyId"])
            arns[region] = key["Arn"]
            config = ({} if region == "us-east-1" else
                      {"CreateBucketConfiguration": {"LocationConstraint": region}})
            clients.s3().create_bucket(Bucket=BUCKETS[region], **config)  # type: ignore[arg-type]
        yield arns


def replicate(name: str) -> None:
    """What S3 replication does (moto's copies nothing): primary bucket -> standby bucket."""
    source, target = AwsClients(PRIMARY).s3(), AwsClients(STANDBY).s3()
    for suffix in (".dump.enc", ".manifest.json"):
        key = f"backups/{name}{suffix}"
        body = source.get_object(Bucket=BUCKETS[PRIMARY], Key=key)["Body"].read()
        target.put_object(Bucket=BUCKETS[STANDBY], Key=key, Body=body)


def take(live_db: str, tmp_path: Path, *extra: str) -> tuple[int, dict[str, object]]:
    report = tmp_path / "backup.json"
    code = backup_script.main(["--database-url", live_db, "--local-dir", str(tmp_path / "b"),
                               "--region", PRIMARY, "--kms-key-id", "alias/caresync-primary",
                               "--bucket", BUCKETS[PRIMARY],
                               "--report", str(report), *extra])
    return code, json.loads(report.read_text())


def restore_test(tmp_path: Path, live_db: str, region: str) -> dict[str, object]:
    report = tmp_path / f"rt-{region}.json"
    code = restore_test_script.main(["--bucket", BUCKETS[region], "--region", region,
                                     "--target-url", live_db, "--report", str(report)])
    result: dict[str, object] = json.loads(report.read_text())
    assert result["exit_code"] == code
    return result


@pytest.mark.postgres
def test_restore_test_on_the_standby_bucket_passes_with_us_east_1_refused(
        sites: dict[str, str], pg_server: PostgresCluster, live_db: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The named case: before, the data key was wrapped by the primary's key only, and this
    restore test failed with KMS in us-east-1 unreachable."""
    code, report = take(live_db, tmp_path, "--stack", "prod")
    assert code == 0, report
    assert report["key_wraps"] == [{"region": PRIMARY, "key_arn": sites[PRIMARY]},
                                   {"region": STANDBY, "key_arn": sites[STANDBY]}]
    replicate(str(report["backup"]))

    with regions_down(monkeypatch, PRIMARY):
        result = restore_test(tmp_path, live_db, STANDBY)

    assert result["result"] == "passed", result
    assert result["local"]["backup"] == report["backup"]  # type: ignore[index]


@pytest.mark.postgres
def test_restore_from_the_primary_bucket_passes_with_us_west_2_refused(
        sites: dict[str, str], pg_server: PostgresCluster, live_db: str,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, report = take(live_db, tmp_path, "--stack", "prod")
    assert code == 0, report
    with regions_down(monkeypatch, STANDBY) as refused:
        result = restore_test(tmp_path, live_db, PRIMARY)
    assert result["result"] == "passed", result
    assert refused == []  # its own region's wrap first: the standby was never needed


def test_each_wrap_alone_gives_the_data_key(sites: dict[str, str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A restore whose own region is down uses a reachable region's wrap."""
    key = backup_script._key(backup_script.parse_arguments(
        ["--kms-key-id", "alias/caresync-primary", "--region", PRIMARY,
         "--wrap-key", f"{STANDBY}=alias/caresync-standby"]), None)
    assert [w["region"] for w in key.info["wraps"]] == [PRIMARY, STANDBY]
    assert key.missing == ()

    def kms(region: str) -> object:
        return AwsClients(region, BEST_EFFORT).kms()

    for down, home in ((PRIMARY, PRIMARY), (STANDBY, STANDBY), (PRIMARY, STANDBY)):
        with regions_down(monkeypatch, down) as refused:
            assert unwrap(key.info, kms, home) == key.plaintext  # type: ignore[arg-type]
        assert bool(refused) == (down == home), (down, home)
    with regions_down(monkeypatch, PRIMARY, STANDBY), \
            pytest.raises(KeyUnavailableError) as error:
        unwrap(key.info, kms, STANDBY)  # type: ignore[arg-type]
    assert "in any region" in str(error.value)
    assert f"{sites[PRIMARY]} in {PRIMARY}: EndpointConnectionError" in str(error.value)


@pytest.mark.postgres
def test_a_single_wrap_backup_from_before_still_restores(
        sites: dict[str, str], live_db: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    kms = AwsClients(PRIMARY).kms()
    answer = kms.generate_data_key(KeyId="alias/caresync-primary", KeySpec="AES_256")
    old_form = DataKey(answer["Plaintext"], {  # what backup.py wrote before both wraps
        "source": "kms", "key_id": answer["KeyId"], "region": PRIMARY,
        "encrypted_data_key": base64.b64encode(answer["CiphertextBlob"]).decode()})
    _, data = take_backup(BackupOptions(live_db, tmp_path / "b", old_form))

    assert restore_script.main([str(data), "--database-url", live_db, "--region", STANDBY,
                                "--no-swap"]) == 0
    # ... and says exactly why it cannot while the only region holding its key is down.
    with regions_down(monkeypatch, PRIMARY):
        code = restore_script.main([str(data), "--database-url", live_db, "--region", STANDBY,
                                    "--dry-run"])
    assert code == 2
    assert f"wrapped only in {PRIMARY}, so it cannot be restored" in capsys.readouterr().err


@pytest.mark.postgres
def test_backup_with_the_other_region_down_is_written_and_says_what_is_missing(
        sites: dict[str, str], pg_server: PostgresCluster, live_db: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with regions_down(monkeypatch, STANDBY):
        code, report = take(live_db, tmp_path, "--stack", "prod")
    assert code == 1 and report["result"] == "degraded"
    assert report["key_wraps"] == [{"region": PRIMARY, "key_arn": sites[PRIMARY]}]
    assert len(report["missing_wraps"]) == 1  # type: ignore[arg-type]
    assert "alias/caresync-standby in us-west-2" in report["missing_wraps"][0]  # type: ignore[index]
    assert "cannot be restored while the other region is down" in str(report["error"])
    # The backup itself is complete and restores where its key is.
    assert restore_test(tmp_path, live_db, PRIMARY)["result"] == "passed"


def test_a_kms_backup_under_one_region_only_is_refused(
        sites: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = backup_script.main(["--database-url", "postgresql://x@127.0.0.1/db",
                               "--local-dir", str(tmp_path / "b"), "--region", PRIMARY,
                               "--kms-key-id", "alias/caresync-primary"])
    assert code == 2
    assert "wrapped under both sites' keys" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_the_standby_site_wraps_with_its_own_key_first(sites: dict[str, str]) -> None:
    """After a failover, backups run in the standby region: its key generates, the primary's
    wraps too (derived from the dr stack's settings, no stack output)."""
    from caresync_dr.settings import settings_from_stack_file
    settings = settings_from_stack_file("dr", backup_script.PROJECT_DIR)
    args = backup_script.parse_arguments(["--stack", "dr"])
    keys = backup_script._wrap_keys(args, settings)
    assert [(k.region, k.key_id) for k in keys] == [(STANDBY, "alias/caresync-standby"),
                                                   (PRIMARY, "alias/caresync-primary")]
