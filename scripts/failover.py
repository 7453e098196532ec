#!/usr/bin/env python3
"""Fail over CareSync to the DR site (or to the primary's in-region replica). See --help."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# Re-runs this script under ./venv/bin/python when this Python lacks the dependencies.
import caresync_dr.venv_guard  # noqa: F401

# isort: split

from caresync_dr.startup import pause_collection

if __name__ == "__main__":   # before the imports: the RTO counts this command's start-up
    pause_collection()

# isort: split

from caresync_dr.failover.command import main

if __name__ == "__main__":
    sys.exit(main())
