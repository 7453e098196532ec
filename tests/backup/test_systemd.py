"""The ops host's systemd units: schedules that match the settings, flags the scripts accept,
hardening, and systemd's own verdict on the files (systemd-analyze verify, when installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from caresync_dr.commands import backup as backup_script
from caresync_dr.commands import restore_check as restore_test_script
from caresync_dr.settings import load_settings, read_stack_file

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
             "PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "",
             "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "UMask": "0077"}


def _unit(name: str) -> dict[str, dict[str, str]]:
    """Sections of a unit file (systemd syntax: comments, [Section], Key=Value)."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for raw in (UNITS / name).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        assert key not in current, f"{name}: {key} set twice"
        current[key.strip()] = value.strip()
    return sections


def _default_interval_hours() -> int:
    values, region = read_stack_file("prod", ROOT)
    values.pop("backupIntervalHours", None)
    return load_settings("prod", values, region).backup_interval_hours


def test_backup_timer_runs_every_backup_interval_of_the_settings() -> None:
    timer = _unit("caresync-backup.timer")["Timer"]
    match = re.fullmatch(r"\*-\*-\* 00/(\d+):00:00 UTC", timer["OnCalendar"])
    assert match, timer["OnCalendar"]
    hours = int(match.group(1))
    assert hours == _default_interval_hours() == 6
    for stack in ("prod", "dr"):  # and the committed stacks, which AWS Backup schedules by
        values, region = read_stack_file(stack, ROOT)
        assert load_settings(stack, values, region).backup_interval_hours == hours
    assert timer["Persistent"] == "true" and timer["Unit"] == "caresync-backup.service"


def test_restore_test_timer_runs_daily_after_a_backup() -> None:
    timer = _unit("caresync-restore-check.timer")["Timer"]
    match = re.fullmatch(r"\*-\*-\* (\d\d):(\d\d):00 UTC", timer["OnCalendar"])
    assert match, f"not once a day: {timer['OnCalendar']}"
    assert int(match.group(1)) % _default_interval_hours() != 0, "would race a backup"
    assert timer["Persistent"] == "true" and timer["Unit"] == "caresync-restore-check.service"
    # Its freshness limit tolerates exactly one missed backup cycle.
    service = _unit("caresync-restore-check.service")["Service"]
    assert "--max-age-hours 12" in service["ExecStart"]
    assert 2 * _default_interval_hours() == 12


@pytest.mark.parametrize("name, script", [
    ("caresync-backup.service", backup_script),
    ("caresync-restore-check.service", restore_test_script)])
def test_services_run_the_scripts_with_flags_they_accept(name: str, script: object) -> None:
    service = _unit(name)["Service"]
    assert service["Type"] == "oneshot"
    assert service["User"] != "root" and "User" in service
    assert service["EnvironmentFile"] == "/etc/caresync-dr/backup.env"
    for key, value in HARDENING.items():
        assert service.get(key) == value, f"{name}: {key}={service.get(key)!r}"
    assert "PubliclyAccessible" not in service["ExecStart"]
    words = service["ExecStart"].split()
    assert words[1].startswith("scripts/") and words[1].endswith(".py")
    env = dict(line.split("=", 1) for line in
               (UNITS / "caresync-dr.env.example").read_text().splitlines()
               if line and not line.startswith("#"))
    used = re.findall(r"\$\{(\w+)\}", service["ExecStart"])
    assert used and set(used) <= set(env), f"{name}: {set(used) - set(env)} not in the example"
    argv = [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], w) for w in words[2:]]
    args = script.parse_arguments(argv)  # type: ignore[attr-defined]
    assert args.bucket == env["BACKUP_BUCKET"] and args.region == env["AWS_REGION"]
    if script is backup_script:  # issue 9 fault 9: both sites' keys wrap every data key
        settings = load_settings(args.stack, *read_stack_file(args.stack, ROOT))
        keys = backup_script._wrap_keys(args, settings)
        assert [(k.region, k.key_id) for k in keys] == [
            (settings.primary_region, "alias/caresync-primary"),
            (settings.standby_region, "alias/caresync-standby")]


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    for unit in [*UNITS.glob("*.service"), *UNITS.glob("*.timer")]:
        # verify wants the ExecStart binary to exist: point it at this interpreter.
        text = unit.read_text().replace("/opt/caresync-dr/venv/bin/python", sys.executable)
        (tmp_path / unit.name).write_text(text)
    done = subprocess.run([analyze, "verify", "--man=no", *sorted(
        str(p) for p in tmp_path.iterdir())], capture_output=True, text=True, check=False,
        env={"SYSTEMD_LOG_TARGET": "console", "PATH": "/usr/bin:/bin"}, timeout=60)
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), \
        done.stdout + done.stderr
