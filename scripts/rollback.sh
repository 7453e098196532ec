#!/usr/bin/env bash
# The seed's restore command: ./scripts/rollback.sh BACKUP  (DATABASE_URL set). Logic and --help
# live in scripts/restore.py / caresync_dr/backup/rollback.py.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-$here/../venv/bin/python}"
[ -x "$py" ] || py=python3
exec "$py" "$here/restore.py" "$@"
