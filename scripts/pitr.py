"""Point-in-time restore of the active site's writer and cut-over (seed scenario 1). See --help."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from caresync_dr.pitr.command import main

if __name__ == "__main__":
    sys.exit(main())
