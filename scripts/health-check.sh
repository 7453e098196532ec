#!/usr/bin/env bash
# The seed's ./scripts/health-check.sh; the logic and --help are in scripts/health_check.py.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
py="${PYTHON:-$here/../venv/bin/python}"
[ -x "$py" ] || py=python3
exec "$py" "$here/health_check.py" "$@"
