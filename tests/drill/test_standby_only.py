"""The standby-region proof's checks can fail: each one on the evidence that breaks it."""

from __future__ import annotations

from typing import Any

from caresync_dr.drill.backups import CommandRun
from caresync_dr.drill.standby_only import backup_checks
from caresync_dr.emulation.server import AwsRequest

EAST, WEST = "us-east-1", "us-west-2"
OUTAGE = 100.0


def _request(region: str, service: str, refused: bool = False) -> AwsRequest:
    return AwsRequest(at=OUTAGE + 1, app="caresync-restore-test", region=region,
                      service=service, operation="GET /", refused=refused)


def _runs(**changes: Any) -> tuple[CommandRun, CommandRun]:
    backup = CommandRun("caresync-backup", exit_code=0, started_at=90.0, ended_at=92.0,
                        report={"backup": "backup_1", "missing_wraps": [],
                                "key_wraps": [{"region": EAST}, {"region": WEST}],
                                "replicated": ["s3://b/x.dump.enc", "s3://b/x.manifest.json"]})
    restore = CommandRun("caresync-restore-test", exit_code=0, started_at=OUTAGE + 9,
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
