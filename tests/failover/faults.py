"""Fault injection for ``failover.py``: a kill at every journal write, every lock transition and
every change the run makes in AWS, then the later runs an operator would try.

A *kill point* is one write of a clean run, named by what it writes (``journal: promote-database
pending``, ``lock: create``, ``rds.PromoteReadReplica caresync-dr-db``), so it is found again in
a run whose threads interleave differently. At a kill point the process dies, like SIGKILL:

- ``before``: the request never reaches AWS;
- ``after``: AWS applies the request and the answer is lost.

From that moment the dying process can no longer reach AWS (every later call of its session
fails to connect), so nothing it does while unwinding changes AWS: the emulated state is exactly
what a killed process leaves behind. (It may still write local files; later runs never read
them.) The kill point's thread raises :class:`Killed`, a ``BaseException`` the tool does not
handle, so no cleanup of the tool runs because of it.

Then the recovery protocol (:func:`recover`) runs what an operator would, and checks each
answer: a plain run at once (the dead run's lock is still fresh), the same after an hour, and
``--resume``. Each must finish the failover or refuse with a true message; at the end the
failover is complete, and no step that changes AWS has sent its change twice.

Used by ``test_kill_points.py`` and ``bench/failover_faults.py``.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, Literal, cast

import boto3
from botocore.exceptions import EndpointConnectionError

from caresync_dr.aws import session_hooks_lock
from caresync_dr.failover.command import run
from caresync_dr.operations.lock import LeaseLock
from tests.failover import world as w
from tests.failover.conftest import FAST

PROMOTE_SECONDS = 0.05   # the emulated promotion stays "modifying" this long

Moment = Literal["before", "after"]
HEARTBEAT_THREAD = "failover-lock-heartbeat"
# The notifier's channel workers (caresync_dr/notify/dispatch.py): best effort, outside the run's
# state, so not kill points; a killed process reaches nothing from them either (the gate).
NOTIFY_THREAD_PREFIX = "notify-"
# Changes that may be repeated by design: notifications are at-least-once (a kill between the
# publish and its journal record cannot be told from a kill before it), the incident timeline is
# an idempotent overwrite of the same key, and the lock and journal are the bookkeeping itself.
REPEATABLE = ("sns.Publish", "s3.PutObject incidents/", "lock:", "journal:")


class Killed(BaseException):
    """The process was killed here (SIGKILL): nothing the tool handles."""


@dataclass
class Labeler:
    """Names each mutating API call of a run from its parameters; a journal write by what it
    changes in the journal."""

    lock: str
    journal: str
    last_journal: dict[str, Any] = field(default_factory=dict)

    def label(self, service: str, operation: str, params: dict[str, Any]) -> str | None:
        if operation.startswith(("Describe", "Get", "List", "Head")):
            return None
        if service == "ssm":
            name = params.get("Name")
            if name == self.lock:
                if operation == "DeleteParameter":
                    return "lock: release"
                if params.get("Overwrite") is False:
                    return "lock: create"
                return "lock: last renewal" if _in_release() else "lock: take over"
            if name == self.journal and operation == "PutParameter":
                return self._journal(json.loads(params.get("Value") or "{}"))
            return f"ssm.{operation} {name}"
        if service == "s3":
            key = str(params.get("Key", ""))
            if key.startswith("incidents/"):
                key = "incidents/*." + key.rsplit(".", 1)[-1]
            return f"s3.{operation} {key}"
        if service == "ec2":        # the one security group a run changes; its id is random
            return f"ec2.{operation} primary database security group"
        target = (params.get("DBInstanceIdentifier") or params.get("AutoScalingGroupName")
                  or str(params.get("TopicArn", "")).rsplit(":", 1)[-1])
        return f"{service}.{operation} {target}"

    def _journal(self, new: dict[str, Any]) -> str:
        old, self.last_journal = self.last_journal, new
        if not old or old.get("status") != new.get("status"):
            return f"journal: {'begin' if new.get('status') == 'running' else new.get('status')}"
        before = {s["name"]: s["outcome"] for s in old.get("steps", [])}
        changed = [f"{s['name']} {s['outcome']}" for s in new.get("steps", [])
                   if before.get(s["name"]) != s["outcome"]]
        if changed:
            return "journal: " + ", ".join(changed)
        if "promotion_requested_at" in (new.get("facts") or {}) and \
                "promotion_requested_at" not in (old.get("facts") or {}):
            return "journal: promotion requested"
        return "journal: facts"


def _in_release() -> bool:
    """Called from :meth:`LeaseLock.release`, which writes a last renewal (its record, checked by
    version against a takeover) before it deletes: the same parameters as a takeover's write."""
    frame: FrameType | None = sys._getframe()
    while frame is not None:
        if frame.f_code is LeaseLock.release.__code__:
            return True
        frame = frame.f_back
    return False


@dataclass
class Recorder:
    """Every mutating request that reached AWS, labelled, in order (per run)."""

    labeler: Labeler
    sent: list[str] = field(default_factory=list)


def _service_operation(event_name: str) -> tuple[str, str]:
    service, operation = event_name.split(".", 2)[1:]
    return service, operation


def install(session: boto3.Session, inventory: Any, *, kill_at: str | None = None,
            moment: Moment = "before") -> tuple[Recorder, Callable[[], bool], Callable[[], None]]:
    """Record (and optionally kill at) the session's mutating API calls.

    The label is taken at ``before-parameter-build`` (once per API call, from its parameters);
    a 'before' kill raises there, so nothing is sent. A call counts as sent at ``after-call``
    (the emulator, or a shim standing in for it, has applied it, whatever it answered); an
    'after' kill raises there, so the answer is lost. Returns (recorder, killed?, revive):
    ``revive`` ends the dead process's isolation so the next run can reach AWS again."""
    recorder = Recorder(Labeler(inventory.lock_parameter, inventory.journal_parameter))
    state = {"dead": False, "killed": False}

    def label(event_name: str, params: dict[str, Any], context: dict[str, Any],
              **_: Any) -> None:
        if state["dead"]:
            raise EndpointConnectionError(endpoint_url=event_name)
        if threading.current_thread().name == HEARTBEAT_THREAD:
            name: str | None = "lock: renew" if event_name.endswith("PutParameter") else None
        elif threading.current_thread().name.startswith(NOTIFY_THREAD_PREFIX):
            name = None
        else:
            name = recorder.labeler.label(*_service_operation(event_name), params)
        if name is None:
            return
        context["fault_label"] = name
        if kill_at is not None and name == kill_at and moment == "before" \
                and not state["killed"]:
            state["killed"] = state["dead"] = True
            raise Killed(name)

    def sent(context: dict[str, Any], **_: Any) -> None:
        name = context.get("fault_label")
        if name is None:
            return
        recorder.sent.append(name)
        if kill_at is not None and name == kill_at and moment == "after" \
                and not state["killed"]:
            state["killed"] = state["dead"] = True
            raise Killed(name)

    def gate(request: Any, **_: Any) -> None:
        """The dead process reaches nothing (retries and other threads included)."""
        if state["dead"]:
            raise EndpointConnectionError(endpoint_url=request.url)

    # Not while a thread of a run builds a client of this session (it copies these hooks).
    with session_hooks_lock():
        session.events.register_first("before-parameter-build", label)
        session.events.register_first("after-call", sent)
        session.events.register_first("before-send", gate)

    def revive() -> None:
        with session_hooks_lock():
            session.events.unregister("before-parameter-build", label)
            session.events.unregister("after-call", sent)
            session.events.unregister("before-send", gate)

    return recorder, lambda: state["killed"], revive


@dataclass
class Attempt:
    argv: tuple[str, ...]
    code: int
    said: str
    report: dict[str, Any] | None = None
    # When the run started: it read the lock after this, so a lock already stale then should
    # have been taken over; one that went stale later (the judge reads it afterwards) was live
    # when the run looked.
    started: datetime | None = None


@dataclass(frozen=True)
class KillPoint:
    scope: str
    label: str
    moment: Moment

    def __str__(self) -> str:
        return f"{self.scope}: {self.moment} {self.label}"


@dataclass
class Outcome:
    """What happened after one kill; ``problems`` is empty when everything was right."""

    kill_at: str
    moment: Moment
    attempts: list[Attempt] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def recovered(self) -> bool:
        return not self.problems


def twice(sent: list[str]) -> list[str]:
    """Changes (not bookkeeping, not notifications) that reached AWS more than once."""
    counts: dict[str, int] = {}
    for label in sent:
        if not label.startswith(REPEATABLE):
            counts[label] = counts.get(label, 0) + 1
    return sorted(label for label, n in counts.items() if n > 1)


# --- the world and the runs ------------------------------------------------------------------

STEP_OF = {  # the step whose change a label is
    "rds.PromoteReadReplica": "promote-database",
    "auto-scaling.UpdateAutoScalingGroup dr-app": "scale-standby-app",
    "auto-scaling.UpdateAutoScalingGroup prod-app": "fence-primary-app",
    "ec2.RevokeSecurityGroupIngress": "fence-primary-database",
    f"s3.PutObject {w.SWITCH_KEY}": "switch-traffic",
    "ssm.PutParameter /caresync-dr/prod/database-endpoint": "point-app-at-database",
    "auto-scaling.StartInstanceRefresh": "refresh-app",
}
Invoke = Callable[..., Attempt]


def step_of(label: str) -> str | None:
    return next((step for prefix, step in STEP_OF.items() if label.startswith(prefix)), None)


def failed_over(world: w.World, scope: str) -> list[str]:
    """What is not in its failed-over state (empty: the failover is complete)."""
    inv = world.inventory
    missing = []
    journal = json.loads(world.parameter(w.STANDBY, inv.journal_parameter) or "{}")
    if journal.get("status") != "completed":
        missing.append(f"journal status {journal.get('status')!r}")
    if world.parameter(w.STANDBY, inv.lock_parameter) is not None:
        missing.append("the lock is still there")
    if scope == "region":
        db = world.db(w.STANDBY, w.STANDBY_DB)
        if db.source_db_instance_identifier or db.status != "available":
            missing.append(f"standby database {db.status}, source "
                           f"{db.source_db_instance_identifier}")
        if world.switch_value() != "FAILOVER":
            missing.append("switch not FAILOVER")
        asg = w.client("autoscaling", w.STANDBY).describe_auto_scaling_groups(
            AutoScalingGroupNames=["dr-app"])["AutoScalingGroups"][0]
        if (asg["MinSize"], asg["DesiredCapacity"]) != (2, 2):
            missing.append("standby app not at production capacity")
    else:
        db = world.db(w.PRIMARY, w.PRIMARY_REPLICA)
        if db.source_db_instance_identifier or db.status != "available":
            missing.append("in-region replica not promoted")
        endpoint = world.parameter(w.PRIMARY, inv.primary.database.endpoint_parameter) or ""
        if not endpoint.startswith(db.address):
            missing.append(f"endpoint parameter {endpoint}")
        if not world.refreshes:
            missing.append("no instance refresh")
    return missing


def judge(world: w.World, attempt: Attempt, scope: str) -> list[str]:
    """Is this answer true? 0: the failover is complete; 4: a live lock is held; 3: an
    unfinished run must be resumed."""
    inv = world.inventory
    lock_text = world.parameter(w.STANDBY, inv.lock_parameter)
    journal = json.loads(world.parameter(w.STANDBY, inv.journal_parameter) or "{}")
    where = f"{' '.join(attempt.argv)} -> exit {attempt.code}: {attempt.said[:300]}"
    if attempt.code == 0:
        missing = failed_over(world, scope)
        if missing == ["the lock is still there"] and lock_text is not None:
            from caresync_dr.failover.lock import LockHolder

            if not LockHolder.parse(lock_text).is_stale():
                return []   # a live-looking holder's lock is not this run's to remove
        return [f"{where}, but {m}" for m in missing]
    if attempt.code == 4:
        if lock_text is None:
            return [f"{where}, but there is no lock"]
        from caresync_dr.failover.lock import LockHolder

        holder = LockHolder.parse(lock_text)
        if holder.is_stale(attempt.started):
            return [f"{where}, but the lock is stale (it should be taken over)"]
        if "holds the lock" not in attempt.said and "still alive" not in attempt.said:
            return [f"{where}: the message does not name the holder"]
        return []
    if attempt.code == 3:
        if journal.get("status") not in ("running", "failed", "interrupted"):
            return [f"{where}, but no run is unfinished (journal {journal.get('status')!r})"]
        if "continue it with --resume" not in attempt.said:
            return [f"{where}: the message does not say to resume"]
        return []
    return [f"{where}: not a documented answer here"]


def recover(world: w.World, invoke: Invoke, scope: str, age_lock: Callable[[], None]
            ) -> tuple[list[Attempt], list[str]]:
    """The operator after a crash: a plain run at once, the same an hour later (the dead run's
    lock is stale by then), and --resume when a run was left unfinished. Stops as soon as the
    failover is complete with no lock left behind."""
    attempts: list[Attempt] = []
    problems: list[str] = []
    scoped = ("--scope", scope)
    for argv in (("--yes",), ("--yes",), ("--yes", "--resume")):
        if len(attempts) == 1:
            age_lock()
        attempt = invoke(*scoped, *argv)
        attempts.append(attempt)
        problems += judge(world, attempt, scope)
        if not failed_over(world, scope):
            return attempts, problems
    problems += [f"after {len(attempts)} runs: {m}" for m in failed_over(world, scope)]
    return attempts, problems


def make_invoke(world: w.World, workdir: Path, root: Path) -> Invoke:
    """``failover.py`` in-process against ``world``, as the conftest fixture runs it, returning
    the exit code, what it said (stdout and error lines) and its report."""
    counter = [0]

    def invoke(*argv: str) -> Attempt:
        counter[0] += 1
        report = workdir / f"run-{counter[0]}.json"
        args = [*argv, "--health-url", world.health_url, "--project-dir", str(root),
                "--report", str(report), "--journal-file", str(workdir / "journal.json"),
                *FAST]
        errors: list[str] = []

        class Collect(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                if record.levelno >= logging.ERROR:
                    errors.append(record.getMessage())

        handler = Collect()
        logging.getLogger("caresync_dr").addHandler(handler)
        out = io.StringIO()
        started = datetime.now(UTC)
        try:
            code = run(args, session=world.session, stdin=io.StringIO(""), out=out)
        finally:
            logging.getLogger("caresync_dr").removeHandler(handler)
        data = json.loads(report.read_text()) if report.is_file() else None
        return Attempt(tuple(argv), code, "\n".join(errors) + "\n" + out.getvalue(), data,
                       started)

    return invoke


def crash(world: w.World, invoke: Invoke, point: KillPoint, *argv: str) -> list[str]:
    """One run killed at ``point``; returns what it sent to AWS (raises if never reached)."""
    recorder, killed, revive = install(world.session, world.inventory, kill_at=point.label,
                                       moment=point.moment)
    try:
        invoke("--scope", point.scope, "--yes", *argv)
    except Killed:
        pass
    finally:
        revive()
    if not killed():
        raise AssertionError(f"the kill point {point} was not reached")
    return list(recorder.sent)


def kill_and_recover(world: w.World, invoke: Invoke, point: KillPoint,
                     age_lock: Callable[[], None], *, before: list[str] | None = None,
                     argv: tuple[str, ...] = ()) -> Outcome:
    """Kill a run at ``point``, then recover as an operator would; judge everything.
    ``before``: what earlier (killed) runs of this failover sent; ``argv``: extra flags of the
    run that is killed (``--resume``, a heartbeat interval)."""
    scope, kill_at, moment = point.scope, point.label, point.moment
    outcome = Outcome(kill_at, moment)
    try:
        crash_sent = (before or []) + crash(world, invoke, point, *argv)
    except AssertionError as exc:
        outcome.problems.append(str(exc))
        return outcome
    after, _, revive_after = install(world.session, world.inventory)
    try:
        outcome.attempts, problems = recover(world, invoke, scope, age_lock)
    finally:
        revive_after()
    outcome.problems += problems
    outcome.sent = crash_sent + after.sent
    doubled = twice(outcome.sent)
    if doubled:
        outcome.problems.append(f"sent twice: {doubled}")
    final = outcome.attempts[-1].report if outcome.attempts else None
    crash_steps = sorted({s for s in map(step_of, crash_sent) if s})
    if final is not None and final.get("outcome") == "completed":
        steps = {s["name"]: s for s in final.get("steps", [])}
        for name in crash_steps:
            if steps.get(name, {}).get("outcome") != "done":
                outcome.problems.append(
                    f"{name} was changed by the killed run but the final report says "
                    f"{steps.get(name, {}).get('outcome')!r}: "
                    f"{steps.get(name, {}).get('detail', '')[:160]}")
    return outcome


def discover(world: w.World, invoke: Invoke, scope: str) -> list[str]:
    """The kill points of a clean run: every labelled write, in the order of that run."""
    recorder, _, revive = install(world.session, world.inventory)
    try:
        result = invoke("--scope", scope, "--yes")
    finally:
        revive()
    if result.code != 0:
        raise RuntimeError(f"the clean run failed: {result.said}")
    seen: list[str] = []
    for label in recorder.sent:
        if label not in seen:
            seen.append(label)
    return seen


@contextmanager
def emulated_world(promote_seconds: float = PROMOTE_SECONDS) -> Iterator[w.World]:
    """The conftest ``world`` (moto, the seeded sites, shims, health URL), for scripts too, with
    PromoteReadReplica answered as RDS answers it (``promote_like_rds``)."""
    from moto import mock_aws
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.rds.models import RDSBackend

    from caresync_dr.emulation.rds_promotion import promote_like_rds
    from tests.failover.conftest import serving_world

    original = RDSBackend.promote_read_replica
    RDSBackend.promote_read_replica = promote_like_rds(  # type: ignore[method-assign]
        DEFAULT_ACCOUNT_ID, seconds=promote_seconds)
    try:
        # The world's after-call shim completes promotions too; leave that to RDS's timing.
        with mock_aws(), serving_world({"promote_seconds": promote_seconds}) as world:
            yield world
    finally:
        RDSBackend.promote_read_replica = original  # type: ignore[method-assign]


# --- injected AWS faults (the standby region's API misbehaving) ------------------------------

FaultKind = Literal["refused-twice", "refused", "lost-twice", "lost"]
KINDS: tuple[FaultKind, ...] = ("refused-twice", "refused", "lost-twice", "lost")
# Throttling answers per protocol (what AWS returns when it applied nothing -- or, here, when the
# emulator applied the request and the answer is replaced: "lost").
_THROTTLE = {
    "query": (400, "text/xml", "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
              "<Message>Rate exceeded</Message></Error><RequestId>t</RequestId></ErrorResponse>"),
    "ec2": (503, "text/xml", "<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
            "<Message>Request limit exceeded.</Message></Error></Errors><RequestID>t</RequestID>"
            "</Response>"),
    "json": (400, "application/x-amz-json-1.1",
             '{"__type":"ThrottlingException","message":"Rate exceeded"}'),
    "rest-xml": (503, "application/xml", "<Error><Code>SlowDown</Code><Message>Please reduce "
                 "your request rate.</Message><RequestId>t</RequestId></Error>"),
}
PROTOCOLS = {"ssm": "json", "s3": "rest-xml", "ec2": "ec2", "rds": "query",
             "auto-scaling": "query", "elastic-load-balancing-v2": "query", "sns": "query",
             "secrets-manager": "json"}


# Answered by a shim of the emulated world before any request is sent (moto has no instance
# refresh): a fault below the shim cannot strike them.
SHIM_ANSWERED = {("auto-scaling", "StartInstanceRefresh"),
                 ("auto-scaling", "DescribeInstanceRefreshes")}


@dataclass(frozen=True)
class Fault:
    """Every call of ``service.operation`` to ``region`` fails: ``refused`` (connection refused,
    nothing applied) or ``lost`` (applied, answered with throttling); ``-twice``: only the first
    two attempts, within the retry budget."""

    scope: str
    service: str
    operation: str
    region: str
    kind: FaultKind

    def __str__(self) -> str:
        return f"{self.scope}: {self.kind} {self.service}.{self.operation} ({self.region})"


def inject(session: boto3.Session, fault: Fault) -> Callable[[], int]:
    """Install the fault; returns a function that removes it and says how often it struck."""
    from botocore.awsrequest import AWSResponse
    from moto.core.botocore_stubber import MockRawResponse

    struck = [0]

    def maybe(event_name: str, request: Any, **_: Any) -> AWSResponse | None:
        service, operation = _service_operation(event_name)
        if (service, operation) != (fault.service, fault.operation):
            return None
        if fault.service != "route-53" and fault.region not in request.url:
            return None
        if fault.kind.endswith("-twice") and struck[0] >= 2:
            return None
        struck[0] += 1
        if fault.kind.startswith("refused"):
            raise EndpointConnectionError(endpoint_url=request.url)
        status, content_type, body = _THROTTLE[PROTOCOLS[service]]
        from botocore.compat import HTTPHeaders

        headers = HTTPHeaders()
        headers["Content-Type"] = content_type
        return AWSResponse(request.url, status, headers, MockRawResponse(body))

    with session_hooks_lock():
        session.events.register_first("before-send", cast(Callable[..., None], maybe))

    def remove() -> int:
        with session_hooks_lock():
            session.events.unregister("before-send", cast(Callable[..., None], maybe))
        return struck[0]

    return remove


def judge_first(world: w.World, attempt: Attempt, scope: str, sent: list[str]) -> list[str]:
    """The run that met the fault: it wrote a report, and what it says is true."""
    where = f"{' '.join(attempt.argv)} -> exit {attempt.code}: {attempt.said[:300]}"
    problems = []
    if attempt.report is None:
        problems.append(f"{where}: no report")
    changes = [label for label in sent if step_of(label)]
    if attempt.code == 0:
        missing = [m for m in failed_over(world, scope) if m != "the lock is still there"]
        problems += [f"{where}, but {m}" for m in missing]
    elif attempt.code == 1:
        if "--resume" not in attempt.said:
            problems.append(f"{where}: exit 1 without saying to resume")
    elif attempt.code == 3:
        if changes:
            problems.append(f"{where}: refused, yet it changed {changes}")
        if "othing was changed" not in attempt.said:
            problems.append(f"{where}: refused without saying nothing was changed")
    else:
        problems += judge(world, attempt, scope)
    return problems


def survive(world: w.World, invoke: Invoke, fault: Fault, age_lock: Callable[[], None]
            ) -> Outcome:
    """A run meets ``fault``; then the fault clears and the operator recovers."""
    outcome = Outcome(str(fault), "after")
    recorder, _, revive = install(world.session, world.inventory)
    remove = inject(world.session, fault)
    try:
        first = invoke("--scope", fault.scope, "--yes")
    finally:
        struck = remove()
    outcome.attempts.append(first)
    if struck == 0:
        outcome.problems.append("the fault never struck")
    outcome.problems += judge_first(world, first, fault.scope, list(recorder.sent))
    if failed_over(world, fault.scope):
        attempts, problems = recover(world, invoke, fault.scope, age_lock)
        outcome.attempts += attempts
        outcome.problems += problems
    revive()
    outcome.sent = list(recorder.sent)
    doubled = twice(outcome.sent)
    if doubled:
        outcome.problems.append(f"sent twice: {doubled}")
    return outcome


def fault_targets(world: w.World, invoke: Invoke, scope: str) -> list[Fault]:
    """Every (service, operation, region) a clean run calls, in the regions that must answer
    (the standby region; for --scope database the primary too), each with every kind. Reads
    of CloudWatch (CBOR protocol) get the connection faults only."""
    world.calls.seen.clear()
    if invoke("--scope", scope, "--yes").code != 0:
        raise RuntimeError("the clean run failed")
    regions = {w.STANDBY} if scope == "region" else {w.STANDBY, w.PRIMARY}
    targets = sorted({(s, o, r) for s, o, r in world.calls.seen
                      if r in regions and (s, o) not in SHIM_ANSWERED})
    return [Fault(scope, s, o, r, kind) for s, o, r in targets for kind in KINDS
            if s in PROTOCOLS or kind.startswith("refused")]
