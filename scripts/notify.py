"""Test the incident notification channels of a stack (--test). See --help."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from caresync_dr.notify.command import main

if __name__ == "__main__":
    sys.exit(main())
