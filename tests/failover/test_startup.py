"""Issue 12 item 4: failover.py starts its work sooner. What is not on the way to the
promotion request -- the notifier (its imports, clients and posts), the steps beside the
promotion (scale-up, fencing) and the clients only later steps use -- waits until RDS has been
asked. Checked by order and by what is imported, never by timing."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import boto3
import pytest

from caresync_dr.aws import KnownServices, ModelLoader, PlainJSONFileLoader, new_session
from caresync_dr.cli import ExitCode
from caresync_dr.operations import hooks, runner
from tests.failover import world as w
from tests.failover.conftest import ROOT

# Services whose clients only what follows the promotion request uses: Route 53's control
# plane (observe step), the notifier's SNS topics and Secrets Manager (its channel secrets).
LATER_CLIENTS = {"route53", "sns", "secretsmanager"}
# Calls of the notifier and of the steps beside the promotion (fencing, scale-up).
LATER_CALLS = {("sns", "Publish"), ("secrets-manager", "GetSecretValue"),
               ("auto-scaling", "UpdateAutoScalingGroup"),
               ("ec2", "RevokeSecurityGroupIngress"), ("ec2", "DescribeSecurityGroups")}


def test_the_command_module_imports_no_notifier_and_no_requests() -> None:
    """requests and the notifier (templates, channels) are imported on the hook thread once
    the promotion is requested, not at start-up; psycopg (with asyncio), which only commands
    taking a database URL need, not at all; boto3 not at all."""
    code = ("import json, sys; import caresync_dr.failover.command; "
            "print(json.dumps(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    modules = set(json.loads(done.stdout))
    assert "caresync_dr.failover.command" in modules
    assert "requests" not in modules
    assert not {m for m in modules if m.startswith("caresync_dr.notify")}
    assert "caresync_dr.failover.notifications" not in modules
    assert "psycopg" not in modules and "asyncio" not in modules
    # boto3 (with s3transfer and multiprocessing, ~16 ms): the run builds its clients from a
    # botocore session (caresync_dr.aws.new_core_session).
    assert "boto3" not in modules and "s3transfer" not in modules


def test_nothing_off_the_way_runs_before_the_promotion_request(
        world: w.World, failover: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # The hold's backstop is never what releases anything here, however slow the machine.
    monkeypatch.setattr(hooks, "HOOK_HOLD_SECONDS", 120.0)
    monkeypatch.setattr(runner, "HOLD_SECONDS", 120.0)
    seen: list[tuple[str, str]] = []

    def client(event_name: str, **_: Any) -> None:
        seen.append(("client", event_name.rsplit(".", 1)[-1]))

    def call(event_name: str, **_: Any) -> None:
        service, operation = event_name.split(".", 2)[1:]
        seen.append((service, operation))

    world.session.events.register("creating-client-class", client)
    world.session.events.register_first("before-parameter-build", call)
    report = tmp_path / "run.json"
    result = failover("--yes", "--report", str(report))
    assert result.code == ExitCode.OK, result.out

    promote = seen.index(("rds", "PromoteReadReplica"))
    before, after = seen[:promote], seen[promote + 1:]
    assert not [s for kind, s in before if kind == "client" and s in LATER_CLIENTS], before
    assert not [c for c in before if c in LATER_CALLS], before
    # They did run, after it: the notifier posted, the old primary was fenced, the standby
    # scaled up, and the report has every step.
    assert {("sns", "Publish"), ("ec2", "RevokeSecurityGroupIngress"),
            ("auto-scaling", "UpdateAutoScalingGroup")} <= set(after)
    document = json.loads(report.read_text())
    assert document["notifications"]["problems"] == []
    assert document["notifications"]["hooks"] == "OperationNotifier"
    outcomes = {step["name"]: step["outcome"] for step in document["steps"]}
    for name in ("fence-primary-app", "fence-primary-database", "promote-database",
                 "scale-standby-app", "switch-traffic", "verify"):
        assert outcomes[name] == "done", document["steps"]


def test_the_model_loader_loads_the_same_models() -> None:
    """new_session's loader parses botocore's models into plain dicts and checks a service
    name without listing every service: the same data and answers as botocore's own loader
    (OrderedDicts, full listing), and its clients work."""
    import botocore.exceptions
    import botocore.loaders

    session = new_session()
    loader = session._session.get_component("data_loader")
    assert isinstance(loader, ModelLoader)
    assert isinstance(loader.file_loader, PlainJSONFileLoader)
    default = botocore.loaders.Loader()
    for type_name in ("service-2", "endpoint-rule-set-1", "resources-1"):
        known = loader.list_available_services(type_name)
        assert isinstance(known, KnownServices)
        # botocore's own listing over the same search path (boto3 adds its resources' path)
        names = botocore.loaders.Loader.list_available_services(loader, type_name)
        for name in ("ec2", "rds", "s3", "nope", "", "..", "ec2/2016-11-15"):
            assert (name in known) == (name in names), (type_name, name)
        assert list(known) == names and len(known) == len(names) and known[0] == names[0]
    assert list(session.get_available_services()) == default.list_available_services(
        "service-2")
    assert list(session.get_available_resources()) == list(
        boto3.Session().get_available_resources())
    with pytest.raises(botocore.exceptions.UnknownServiceError):
        loader.load_service_model("nope", "service-2")
    for service in ("ec2", "rds", "ssm"):
        assert loader.load_service_model(service, "service-2") == \
            default.load_service_model(service, "service-2")
    assert loader.load_data("endpoints") == default.load_data("endpoints")
    client = session.client("ec2", region_name="us-west-2", aws_access_key_id="x",
                            aws_secret_access_key="y")
    assert client.can_paginate("describe_launch_templates")


def test_the_collector_runs_less_often_and_only_for_the_command() -> None:
    """failover.py raises the youngest generation's threshold before its imports; importing
    the script (as tests do) leaves the process as it is, and the threshold is never lowered."""
    import gc
    import importlib

    from caresync_dr import startup

    before = gc.get_threshold()
    try:
        importlib.import_module("scripts.failover")
        assert gc.get_threshold() == before
        startup.collect_less_often()
        assert gc.get_threshold() == (startup.YOUNG_THRESHOLD, *before[1:])
        gc.set_threshold(startup.YOUNG_THRESHOLD * 2, *before[1:])
        startup.collect_less_often()
        assert gc.get_threshold()[0] == startup.YOUNG_THRESHOLD * 2
    finally:
        gc.set_threshold(*before)


@pytest.fixture
def fresh_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    """A new owner of the collector's pauses: none held, start-up's objects not frozen yet
    (in-process ``main()`` calls of other tests, the hostile-input harness's, froze them)."""
    from caresync_dr import startup

    monkeypatch.setattr(startup, "_COLLECTOR", startup._Collector())


@pytest.mark.usefixtures("fresh_collector")
def test_the_collector_is_paused_until_the_promotion_is_requested(
        world: w.World, failover: Any) -> None:
    """failover.py's first line pauses the cyclic collector (a ~15 ms collection fell in the
    middle of its imports); it is back on, with start-up's objects frozen, once the promotion
    is requested, not only at the pause's backstop."""
    import gc

    from caresync_dr import startup

    at_request: list[bool] = []

    def promote(**_: Any) -> None:
        at_request.append(gc.isenabled())

    world.session.events.register_first("before-parameter-build.rds.PromoteReadReplica",
                                        promote)
    assert gc.isenabled()
    try:
        assert startup.pause_collection(backstop_seconds=120.0)
        assert not gc.isenabled()
        assert not startup.pause_collection(), "a second pause is not a pause of its own"
        result = failover("--yes")
        assert result.code == ExitCode.OK, result.out
        assert at_request == [False]
        assert gc.isenabled(), "still paused after the promotion was requested"
        assert gc.get_freeze_count() > 0
    finally:
        startup.resume_collection()
        gc.unfreeze()
        gc.enable()


@pytest.mark.usefixtures("fresh_collector")
def test_a_pause_nobody_ends_ends_at_its_backstop_and_never_turns_on_a_collector_left_off(
        ) -> None:
    import gc
    import time

    from caresync_dr import startup

    try:
        assert startup.pause_collection(backstop_seconds=0.05)
        deadline = time.monotonic() + 10
        while not gc.isenabled() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert gc.isenabled()
        gc.disable()          # the embedding program turned it off: a pause leaves it off
        assert not startup.pause_collection(backstop_seconds=0.01)
        time.sleep(0.1)
        startup.resume_collection()
        assert not gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()


def test_the_switch_is_read_beside_the_journal_and_afresh_under_the_lock(
        world: w.World, failover: Any) -> None:
    """"Already failed over?" reads the traffic switch while the journal and the lock are
    read (the journal's read here waits until the switch's has been sent: made one after the
    other, it would wait out its 10 s); the preflight reads it again once the lock is held."""
    import threading

    inv = world.inventory
    switch_sent = threading.Event()
    calls: list[tuple[str, str]] = []
    journal_waited: list[bool] = []

    def before(event_name: str, params: dict[str, Any], **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        name = str(params.get("Name") or params.get("Key"))
        calls.append((operation, name))
        if operation == "GetObject" and name == inv.traffic_switch.key:
            switch_sent.set()
        if operation == "GetParameter" and name == inv.journal_parameter:
            journal_waited.append(switch_sent.wait(10))

    world.session.events.register_first("before-parameter-build", before)
    result = failover("--yes")
    assert result.code == ExitCode.OK, result.out
    assert journal_waited == [True], "the switch was read only after the journal"
    lock_taken = calls.index(("PutParameter", inv.lock_parameter))
    switch_reads = [i for i, c in enumerate(calls) if c == ("GetObject", inv.traffic_switch.key)]
    assert switch_reads[0] < lock_taken, calls
    assert any(lock_taken < i < calls.index(("PromoteReadReplica", "None")) for i in switch_reads)


def test_the_database_read_is_reused_only_until_a_change(
        world: w.World, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The preflight's DescribeDBInstances serves the promote step's check, and the check's
    its apply; any other change started since, an apply, or 5 s make the next read ask AWS."""
    from caresync_dr.failover import context as context_module
    from caresync_dr.failover.command import parse_arguments
    from caresync_dr.failover.context import FailoverContext
    from caresync_dr.failover.inputs import options_from

    options = options_from(parse_arguments(
        ["--stack", "dr", "--yes", "--journal-file", str(tmp_path / "journal.json")]))
    ctx = FailoverContext(world.inventory, options, session=world.session)

    def reads() -> int:
        return world.calls.count("DescribeDBInstances")

    first = ctx.target_database_state(fresh=True)          # the preflight
    assert first is not None and first.is_replica and reads() == 1
    assert ctx.target_database_state() == first and reads() == 1        # the step's check
    ctx.change_starting()                                                # its own apply starts
    assert ctx.target_database_state(applying=True) == first and reads() == 1
    assert ctx.target_database_state() == first and reads() == 2        # consumed: read again
    ctx.change_starting()                     # another step's change: the read is not reused
    ctx.target_database_state()
    assert reads() == 3
    ctx.change_starting()                     # another change, then an apply's own
    ctx.change_starting()
    ctx.target_database_state(applying=True)
    assert reads() == 4
    ctx.target_database_state()
    assert reads() == 5
    monkeypatch.setattr(context_module, "DATABASE_READ_REUSE_SECONDS", 0.0)
    ctx.target_database_state()
    assert reads() == 6                       # too old
    assert ctx.target_database_state(fresh=True) is not None and reads() == 7


def test_the_way_to_the_request_reads_the_database_once_and_journals_once(
        world: w.World, failover: Any, tmp_path: Any) -> None:
    """Before PromoteReadReplica: one DescribeDBInstances (the preflight's, reused) and one
    journal write -- the run's begin together with the promote step's write-ahead record,
    which carries promotion_requested_at (a resumed run must know the request may have been
    sent)."""
    sent: list[tuple[str, dict[str, Any]]] = []

    def call(event_name: str, params: dict[str, Any], **_: Any) -> None:
        sent.append((event_name.rsplit(".", 1)[-1], dict(params)))

    world.session.events.register_first("before-parameter-build", call)
    result = failover("--yes", "--report", str(tmp_path / "run.json"))
    assert result.code == ExitCode.OK, result.out
    promote = next(i for i, (name, _) in enumerate(sent) if name == "PromoteReadReplica")
    before = sent[:promote]
    assert [name for name, _ in before].count("DescribeDBInstances") == 1
    journal = [json.loads(p["Value"]) for name, p in before
               if name == "PutParameter" and p["Name"] == world.inventory.journal_parameter]
    assert len(journal) == 1
    last = journal[-1]
    assert last["status"] == "running" and last["startedAt"] and last["runId"]
    assert [(s["name"], s["outcome"]) for s in last["steps"]] == [
        ("promote-database", "pending")]
    assert last["steps"][0]["requested_at"] and last["facts"]["promotion_requested_at"]
