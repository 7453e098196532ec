"""Fixtures: both sites in moto (tests/breach/world.py), fast retries, a clean environment."""

from __future__ import annotations

from collections.abc import Iterator

import botocore.retries.standard
import pytest
from moto import mock_aws

from caresync_dr.emulation.ec2_groups import SecurityGroupReplacement
from caresync_dr.emulation.secret_rotation import SecretRotationShim
from tests.breach import world as w


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount",
                        lambda self, context: 0.01)


@pytest.fixture
def world() -> Iterator[w.BreachWorld]:
    # moto's gaps, each closed as real AWS behaves (caresync_dr/emulation says how).
    with mock_aws(), SecurityGroupReplacement(), SecretRotationShim():
        yield w.seed()
