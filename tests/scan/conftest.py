"""Checkov runs from its own virtualenv (`make checkov-setup`).

Without it the tests that run Checkov skip with the way to get it, except under CI=true, where
a missing Checkov is a failure (.ci/run installs it before the tests).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from caresync_dr.scan.checkov import CheckovError, checkov_binary


@pytest.fixture(scope="session")
def checkov() -> Path:
    try:
        return checkov_binary()
    except CheckovError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and no Checkov: {exc}")
        pytest.skip(str(exc))
