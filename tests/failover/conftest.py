"""Fixtures: an emulated pair of sites (moto, in-process), the shims, and a CLI runner."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.retries.standard
import pytest
from moto import mock_aws

from caresync_dr.drill import localhttp
from caresync_dr.emulation import rds
from caresync_dr.failover.command import run
from tests.failover import world as w

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Result:
    code: int
    out: str


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # Every progress line is formatted, whatever an earlier test did to the root logger: a
    # record that cannot be formatted is a bug the operator would meet.
    caplog.set_level(logging.INFO, logger="caresync_dr")
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "CARESYNC_DR_POLL_SECONDS",
                 "CARESYNC_DR_POLL_MAX_SECONDS", "CARESYNC_DR_WAIT_TIMEOUT_SECONDS",
                 "CARESYNC_DR_VERIFY_TIMEOUT_SECONDS", "CARESYNC_DR_HEALTH_URL",
                 "CARESYNC_NOTIFY_CHAT_WEBHOOK_URL", "CARESYNC_NOTIFY_STATUSPAGE_API_KEY",
                 "CARESYNC_NOTIFY_RECORD_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # moto builds ~1,300 default AMIs per EC2 region on every reset; the failover never looks
    # an AMI up, and skipping them saves about a second per test.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    # botocore's standard retry sleeps rand(0,1) * 2**attempt between attempts; the decision
    # to retry, the attempt budget and the retry quota stay botocore's, only the sleep shrinks.
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount",
                        lambda self, context: 0.01)


@pytest.fixture(autouse=True)
def _promotions_end_with_their_test() -> Iterator[None]:
    """No emulated promotion of this test finishes in the next one: moto's backends are
    process-global and every world has the same identifiers. A world's own shims are disarmed
    when it ends; this also stops the clocks only used as a method (``w.slow_promotion``,
    ``promote_like_rds``), which nobody disarms. A module's shared world keeps its clock."""
    mark = rds.clock_mark()
    yield
    left = rds.stop_clocks(made_since=mark)
    assert not left, f"promotion timer(s) {left} still running after their test"


def health_answer(world: w.World) -> dict[str, Any]:
    """What the public URL answers: the switch picks the site, promotion decides writability."""
    inv = world.inventory
    if "health" in world.overrides:
        return dict(world.overrides["health"])
    if "answer" in world.overrides:       # a world with its own routing (test_reverse_*)
        return dict(world.overrides["answer"]())
    if world.switch_value() == inv.traffic_switch.failover_value:
        db = world.db(w.STANDBY, w.STANDBY_DB)
        writable = w._promoted(db)
        return {"status": "ok", "region": w.STANDBY,
                "database": {"writable": writable, "role": "primary" if writable else "replica"}}
    endpoint = world.parameter(w.PRIMARY, inv.primary.database.endpoint_parameter)
    replica = world.db(w.PRIMARY, w.PRIMARY_REPLICA)
    if w._promoted(replica) and endpoint and endpoint.startswith(replica.address):
        return {"status": "ok", "region": w.PRIMARY,
                "database": {"writable": True, "role": "primary"}}
    primary_up = world.db(w.PRIMARY, w.PRIMARY_DB).status == "available"
    return {"status": "ok" if primary_up else "degraded", "region": w.PRIMARY,
            "database": {"writable": primary_up, "role": "primary"}}


@contextmanager
def serving_world(overrides: dict[str, Any]) -> Iterator[w.World]:
    """Inside ``mock_aws``: the seeded pair of sites, its shims (disarmed when the world ends,
    before moto's reset, so no promotion timer fires into the next world) and the public
    health URL, stopped within a limit. ``overrides``: the world's own behaviour."""
    inventory, switch_bucket, backup_bucket = w.seed()
    session = w.fast_session()
    calls = w.Calls()
    w.record_calls(session, calls)
    refreshes: list[dict[str, Any]] = []
    status = ["replicating"]
    with w.install_shims(session, refreshes, status, overrides):
        holder: list[w.World] = []
        server = w.start_health_server(lambda: health_answer(holder[0]))
        url = f"http://127.0.0.1:{server.server_address[1]}/api/health"
        world = w.World(session=session, inventory=inventory, health_url=url, calls=calls,
                        switch_bucket=switch_bucket, backup_bucket=backup_bucket,
                        refreshes=refreshes, replication_status=status, server=server,
                        overrides=overrides)
        holder.append(world)
        try:
            yield world
        finally:
            localhttp.stop(server)


@pytest.fixture
def world() -> Iterator[w.World]:
    with mock_aws(), serving_world({}) as world:
        yield world


FAST = ["--poll-seconds", "0.01", "--poll-max-seconds", "0.05", "--wait-timeout", "5",
        "--verify-timeout", "5"]


@pytest.fixture
def failover(world: w.World, tmp_path: Path) -> Any:
    """Run the command in-process against the world, returning (exit code, stdout)."""

    def invoke(*argv: str, stdin: str = "", fast: bool = True) -> Result:
        out = io.StringIO()
        args = [*argv, "--health-url", world.health_url]
        if "--project-dir" not in args:
            args += ["--project-dir", str(ROOT)]
        if "--report" not in args:
            args += ["--journal-file", str(tmp_path / "journal.json")]
        if fast:
            for flag, value in zip(FAST[::2], FAST[1::2], strict=True):
                if flag not in args:
                    args += [flag, value]
        code = run(args, session=world.session, stdin=io.StringIO(stdin), out=out)
        return Result(code, out.getvalue())

    return invoke
