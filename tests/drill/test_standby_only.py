"""The standby-region proof's checks can fail: each one on the evidence that breaks it."""

from __future__ import annotations

from typing import Any

from caresync_dr.drill.backups import CommandRun
from caresync_dr.drill.boot import Boot, BootConfig
from caresync_dr.drill.standby_only import AppEvidence, app_checks, backup_checks
from caresync_dr.emulation.server import AwsRequest

EAST, WEST = "us-east-1", "us-west-2"
OUTAGE = 100.0


def _request(region: str, service: str, refused: bool = False) -> AwsRequest:
    return AwsRequest(at=OUTAGE + 1, app="caresync-restore-check", region=region,
                      service=service, operation="GET /", refused=refused)


def _runs(**changes: Any) -> tuple[CommandRun, CommandRun]:
    backup = CommandRun("caresync-backup", exit_code=0, started_at=90.0, ended_at=92.0,
                        report={"backup": "backup_1", "missing_wraps": [],
                                "key_wraps": [{"region": EAST}, {"region": WEST}],
                                "replicated": ["s3://b/x.dump.enc", "s3://b/x.manifest.json"]})
    restore = CommandRun("caresync-restore-check", exit_code=0, started_at=OUTAGE + 9,
                         ended_at=OUTAGE + 10,
                         report={"result": "passed", "local": {"backup": "backup_1",
                                                               "scratch_database": "s"}},
                         requests=[_request(WEST, "s3"), _request(WEST, "kms")])
    for key, value in changes.items():
        run, _, attribute = key.partition("__")
        target = backup if run == "backup" else restore
        if attribute in ("report",):
            target.report.update(value)
        else:
            setattr(target, attribute, value)
    return backup, restore


def _verdicts(**changes: Any) -> dict[str, bool]:
    backup, restore = _runs(**changes)
    return {name: ok for name, ok, _ in backup_checks(
        backup, restore, primary_region=EAST, standby_region=WEST, outage_at=OUTAGE)}


BACKUP = "backup before the outage: data key wrapped in both regions, replicated"
RESTORED = f"latest backup restored from the standby bucket with {EAST} down"
ONLY = f"restore test called {WEST} endpoints only"


def test_all_hold_on_good_evidence() -> None:
    assert _verdicts() == {BACKUP: True, RESTORED: True, ONLY: True}


def test_a_key_wrapped_in_one_region_fails_the_backup_check() -> None:
    assert not _verdicts(backup__report={"key_wraps": [{"region": EAST}]})[BACKUP]
    assert not _verdicts(backup__report={"missing_wraps": [f"alias/caresync-standby in {WEST}"]}
                         )[BACKUP]
    assert not _verdicts(backup__report={"replicated": []})[BACKUP]


def test_restoring_another_backup_or_before_the_outage_fails() -> None:
    assert not _verdicts(restore__report={"local": {"backup": "backup_0"}})[RESTORED]
    assert not _verdicts(restore__started_at=OUTAGE - 1)[RESTORED]
    assert not _verdicts(restore__exit_code=1)[RESTORED]


def test_a_call_to_the_primary_region_fails_even_when_the_restore_passed() -> None:
    """A restore that tried us-east-1's KMS first (refused) and then fell back still needed
    the primary region; so does one that never called anything."""
    verdicts = _verdicts(restore__requests=[_request(EAST, "kms", refused=True),
                                            _request(WEST, "kms"), _request(WEST, "s3")])
    assert verdicts[RESTORED] and not verdicts[ONLY]
    assert not _verdicts(restore__requests=[])[ONLY]


# --- the standby app -------------------------------------------------------------------------

def _boot(*requests: AwsRequest, error: str | None = None, reason: str = "new instance"
          ) -> Boot:
    boot = Boot(site="standby", region=WEST, reason=reason, started_at=OUTAGE + 1,
                ended_at=OUTAGE + 1.1, requests=list(requests), error=error)
    if error is None:
        boot.config = BootConfig(endpoint="db.us-west-2.rds.amazonaws.com:5432",
                                 user="caresync_app", password="pw", dbname="caresync")
    return boot


def _app_evidence(**changes: Any) -> AppEvidence:
    base: dict[str, Any] = {
        "boots": [_boot(AwsRequest(OUTAGE + 1, "a", WEST, "ssm", "GetParameter", False),
                        AwsRequest(OUTAGE + 1, "a", WEST, "secretsmanager", "GetSecretValue",
                                   False))],
        "health_code": 200,
        "health": {"database": {"user": "caresync_app", "writable": True}},
        "passwordless_login": "fe_sendauth: no password supplied",
        "secret_replica": {"ARN": "arn:aws:secretsmanager:us-west-2:1:secret:caresync/db/app-x",
                           "KmsKeyId": "arn:aws:kms:us-west-2:1:key/k",
                           "PrimaryRegion": EAST}}
    base.update(changes)
    return AppEvidence(**base)


def _app_verdicts(**changes: Any) -> list[bool]:
    return [ok for _, ok, _ in app_checks(_app_evidence(**changes), role="caresync_app",
                                          standby_region=WEST)]


def test_the_app_checks_hold_on_good_evidence() -> None:
    assert _app_verdicts() == [True, True, True]


def test_a_boot_that_reads_the_primary_region_or_fails_fails_the_first_check() -> None:
    east_secret = AwsRequest(OUTAGE + 1, "a", EAST, "secretsmanager", "GetSecretValue", True)
    west_param = AwsRequest(OUTAGE + 1, "a", WEST, "ssm", "GetParameter", False)
    assert _app_verdicts(boots=[_boot(west_param, east_secret)])[0] is False
    assert _app_verdicts(boots=[_boot(west_param, error="ConnectionClosedError")])[0] is False
    assert _app_verdicts(boots=[])[0] is False


def test_a_login_without_the_password_or_as_someone_else_fails_the_second_check() -> None:
    assert _app_verdicts(passwordless_login="accepted")[1] is False
    assert _app_verdicts(health={"database": {"user": "postgres", "writable": True}})[1] \
        is False
    assert _app_verdicts(health={"database": {"user": "caresync_app", "writable": False}})[1] \
        is False


def test_a_replica_under_the_primary_key_fails_the_third_check() -> None:
    assert _app_verdicts(secret_replica={"KmsKeyId": "arn:aws:kms:us-east-1:1:key/k",
                                         "PrimaryRegion": EAST})[2] is False
    assert _app_verdicts(secret_replica={"error": "ResourceNotFoundException"})[2] is False
