"""Run an app instance's boot script (launch template user data) on this machine.

``aws``, ``systemctl`` and ``sleep`` are stubs on PATH: the stub ``aws`` answers only calls to
the region ``serves`` names (anything else fails, as an unreachable region would) and records
every call; the configuration directory is a temp dir instead of /etc/caresync.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from components.app_tier import CONF_DIR

# A shell stub (a Python one costs a process start per call, and the wait loop makes 60).
STUB_AWS = r"""#!/bin/sh
printf '%s\037' "$@" >> "$STUB_CALLS"
printf '\n' >> "$STUB_CALLS"
region=""
previous=""
for arg in "$@"; do
  [ "$previous" = "--region" ] && region="$arg"
  previous="$arg"
done
if [ "$region" != "$STUB_REGION" ]; then
  echo "Could not connect to the endpoint URL for region $region" >&2
  exit 255
fi
case "$1 $2" in
  "secretsmanager get-secret-value")
    if [ -z "$STUB_SECRET" ]; then
      echo "ResourceNotFoundException: Secrets Manager can't find the secret" >&2
      exit 254
    fi
    printf '%s\n' "$STUB_SECRET" ;;
  "ssm get-parameter") printf '%s\n' "$STUB_ENDPOINT" ;;
  *) exit 2 ;;
esac
"""


@dataclass(frozen=True)
class Boot:
    returncode: int
    stderr: str
    calls: list[list[str]]
    env_file: dict[str, str]  # the written database.env (empty when none was written)
    env_mode: int | None


def run_boot(user_data: str, tmp: Path, *, serves: str, secret: dict[str, str] | None,
             endpoint: str = "db.example:5432") -> Boot:
    script = base64.b64decode(user_data).decode()
    conf = tmp / "etc-caresync"
    script = script.replace(f"CONF_DIR={CONF_DIR}\n", f"CONF_DIR={conf}\n")
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(STUB_AWS)
    (bin_dir / "systemctl").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sleep").write_text("#!/bin/sh\nexit 0\n")
    for stub in bin_dir.iterdir():
        stub.chmod(0o755)
    calls = tmp / "calls.jsonl"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "STUB_CALLS": str(calls),
           "STUB_REGION": serves, "STUB_SECRET": json.dumps(secret) if secret else "",
           "STUB_ENDPOINT": endpoint}
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                            timeout=60, check=False)
    env_path = conf / "database.env"
    values: dict[str, str] = {}
    if env_path.exists():
        for line in env_path.read_text().splitlines():
            key, _, value = line.partition("=")
            values[key] = value.strip("'")
    recorded = [line.split("\x1f")[:-1] for line in calls.read_text().splitlines()] \
        if calls.exists() else []
    return Boot(result.returncode, result.stderr, recorded, values,
                env_path.stat().st_mode & 0o777 if env_path.exists() else None)
