"""The emulated pair of sites of ``tests/failover``: runbook commands run against it."""

from tests.failover.conftest import _aws_env, failover, world  # noqa: F401 (fixtures)
