"""The proof that the standby region alone suffices (issue 9): checks and figures.

Everything the standby site needs after a regional outage must come from the standby region:
the latest logical backup must restore from the standby bucket with keys the standby region's
KMS can use, and nothing may call the primary region to get there. Each check re-reads what the
commands reported and what the emulator's call log saw of them.
"""

from __future__ import annotations

from typing import Any

from caresync_dr.drill.backups import CommandRun

Check = tuple[str, bool, str]  # (name, passed, evidence)


def _calls_stay_in(run: CommandRun, region: str) -> tuple[bool, str]:
    elsewhere = [r for r in run.requests if r.region != region or r.refused]
    endpoints = ", ".join(run.endpoints()) or "none"
    return bool(run.requests) and not elsewhere, f"{len(run.requests)} requests to {endpoints}"


def backup_checks(backup: CommandRun | None, restore: CommandRun | None, *,
                  primary_region: str, standby_region: str,
                  outage_at: float) -> list[Check]:
    """The backup taken with both regions up restores in the standby region alone."""
    if backup is None or restore is None:
        return []
    checks: list[Check] = []
    name = backup.report.get("backup")
    wraps = sorted(w.get("region", "?") for w in backup.report.get("key_wraps") or [])
    replicated = backup.report.get("replicated") or []
    checks.append((
        "backup before the outage: data key wrapped in both regions, replicated",
        backup.exit_code == 0 and wraps == sorted({primary_region, standby_region})
        and not backup.report.get("missing_wraps") and len(replicated) == 2,
        f"{name}: exit {backup.exit_code}, wraps in {', '.join(wraps) or 'none'}, "
        f"{len(replicated)} objects copied to the standby bucket"))
    local = restore.report.get("local") or {}
    restored = local.get("backup")
    after_outage = restore.started_at is not None and restore.started_at >= outage_at
    checks.append((
        f"latest backup restored from the standby bucket with {primary_region} down",
        restore.exit_code == 0 and restore.report.get("result") == "passed"
        and restored == name and after_outage,
        f"{restored or 'nothing'} restored into {local.get('scratch_database')} and verified: "
        f"exit {restore.exit_code}, {restore.seconds} s"
        + ("" if after_outage else " (NOT after the outage)")
        + "".join(f"; {p}" for p in local.get("problems") or [])
        + (f"; {restore.report['error']}" if restore.report.get("error") else "")))
    ok, detail = _calls_stay_in(restore, standby_region)
    checks.append((f"restore test called {standby_region} endpoints only", ok, detail))
    return checks


def backup_figures(backup: CommandRun | None, restore: CommandRun | None,
                   outage_at: float) -> dict[str, Any] | None:
    """The report's ``standby_region.backup`` section."""
    if backup is None or restore is None:
        return None
    local = restore.report.get("local") or {}
    return {
        "backup": {"name": backup.report.get("backup"), "exit_code": backup.exit_code,
                   "seconds": backup.seconds, "key_wraps": backup.report.get("key_wraps"),
                   "replicated": backup.report.get("replicated"),
                   "endpoints": backup.endpoints()},
        "restore_test": {
            "exit_code": restore.exit_code, "result": restore.report.get("result"),
            "backup": local.get("backup"), "seconds": restore.seconds,
            "started_after_outage_seconds": (None if restore.started_at is None
                                             else round(restore.started_at - outage_at, 3)),
            "restore_seconds": local.get("seconds"),
            "endpoints": restore.endpoints()},
    }
