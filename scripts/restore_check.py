#!/usr/bin/env python3
"""The daily automated restore test (caresync-restore-check). See --help."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# Re-runs this script under ./venv/bin/python when this Python lacks the dependencies.
import caresync_dr.venv_guard  # noqa: F401

# isort: split

from caresync_dr.commands.restore_check import main

if __name__ == "__main__":
    sys.exit(main())
