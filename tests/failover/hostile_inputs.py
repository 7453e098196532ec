"""Bad inputs a tester (or a tired operator) gives ``failover.py``: the catalogue.

Each case is one input (a flag, an environment variable, a file, or an inventory document in
SSM or in ``--inventory FILE``) and the fragment of the one error line it must produce. A case is
"refused cleanly" when the run exits with the documented code (2, usage), says so in one line
without a traceback, and makes no change (no mutating AWS call). ``tests/failover/
test_hostile_inputs.py`` asserts each case; ``bench/failover_faults.py`` counts them.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from caresync_dr.cli import ExitCode
from caresync_dr.failover.command import run
from tests.failover import world as w
from tests.failover.conftest import FAST, ROOT

USAGE = int(ExitCode.USAGE)

Doc = dict[str, Any]


@dataclass(frozen=True)
class BadInput:
    name: str
    expect: str                                     # fragment of the one error line
    argv: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    inventory: Callable[[Doc], Doc | str | bytes] | None = None
    via_file: bool = False                          # the inventory as --inventory FILE
    prepare: Callable[[Path], tuple[str, ...]] | None = None   # makes files, returns argv


def _set(path: str, value: Any) -> Callable[[Doc], Doc]:
    """A copy of the document with ``path`` (dotted, camelCase) set to ``value``."""

    def mutate(doc: Doc) -> Doc:
        changed = copy.deepcopy(doc)
        *parents, last = path.split(".")
        node = changed
        for part in parents:
            node = node[part]
        node[last] = value
        return changed

    return mutate


def _drop(path: str) -> Callable[[Doc], Doc]:
    def mutate(doc: Doc) -> Doc:
        changed = copy.deepcopy(doc)
        *parents, last = path.split(".")
        node = changed
        for part in parents:
            node = node[part]
        del node[last]
        return changed

    return mutate


def _duplicate_key(doc: Doc) -> str:
    text = json.dumps(doc)
    return text.replace('"stack": "dr"', '"stack": "dr", "stack": "prod"', 1)


def _duplicate_nested_key(doc: Doc) -> str:
    text = json.dumps(doc)
    return text.replace('"backupRetentionDays": 30', '"backupRetentionDays": 30, '
                        '"backupRetentionDays": 0', 1)


def _nan(doc: Doc) -> str:
    return json.dumps(doc).replace('"rpoMinutes": 15', '"rpoMinutes": NaN', 1)


def _file(name: str, content: bytes) -> Callable[[Path], tuple[str, ...]]:
    def make(tmp: Path) -> tuple[str, ...]:
        path = tmp / name
        path.write_bytes(content)
        return ("--inventory", str(path))
    return make


def _dir_as(flag: str) -> Callable[[Path], tuple[str, ...]]:
    def make(tmp: Path) -> tuple[str, ...]:
        path = tmp / "a-directory"
        path.mkdir(exist_ok=True)
        return (flag, str(path))
    return make


def _under_a_file(flag: str) -> Callable[[Path], tuple[str, ...]]:
    def make(tmp: Path) -> tuple[str, ...]:
        blocker = tmp / "plain-file"
        blocker.write_text("x")
        return (flag, str(blocker / "report.json"))
    return make


def _fifo_as(flag: str) -> Callable[[Path], tuple[str, ...]]:
    def make(tmp: Path) -> tuple[str, ...]:
        path = tmp / "a-fifo"
        if not path.exists():
            os.mkfifo(path)
        return (flag, str(path))
    return make


def _link_to_dev_full_as(flag: str) -> Callable[[Path], tuple[str, ...]]:
    """A symbolic link to a device: a rename over it would replace the link (over /dev/stdout,
    the machine's own)."""
    def make(tmp: Path) -> tuple[str, ...]:
        path = tmp / "to-dev-full"
        if not path.is_symlink():
            path.symlink_to("/dev/full")
        return (flag, str(path))
    return make


TIMING = [
    BadInput(f"{flag} {value}", f"{flag} must be a finite number of seconds", argv=(flag, value))
    for flag in ("--poll-seconds", "--poll-max-seconds", "--wait-timeout", "--verify-timeout",
                 "--lock-heartbeat-seconds")
    for value in ("nan", "inf", "-1", "0")
] + [
    BadInput("--lock-heartbeat-seconds 1e9", "--lock-heartbeat-seconds must be a finite number",
             argv=("--lock-heartbeat-seconds", "1e9")),
    BadInput("--wait-timeout 1e300", "--wait-timeout must be a finite number",
             argv=("--wait-timeout", "1e300")),
    BadInput("CARESYNC_DR_POLL_SECONDS=nan", "--poll-seconds must be a finite number",
             env={"CARESYNC_DR_POLL_SECONDS": "nan"}),
    BadInput("CARESYNC_DR_LOCK_HEARTBEAT_SECONDS=inf", "--lock-heartbeat-seconds must be",
             env={"CARESYNC_DR_LOCK_HEARTBEAT_SECONDS": "inf"}),
    BadInput("CARESYNC_DR_WAIT_TIMEOUT_SECONDS=soon", "--wait-timeout must be a number",
             env={"CARESYNC_DR_WAIT_TIMEOUT_SECONDS": "soon"}),
    BadInput("--poll-seconds abc", "argument --poll-seconds: invalid float value",
             argv=("--poll-seconds", "abc")),
]

ARGUMENTS = [
    BadInput("--health-url without scheme", "--health-url",
             argv=("--health-url", "app.caresync.health/api/health")),
    BadInput("--health-url ftp", "--health-url", argv=("--health-url", "ftp://x.example/h")),
    BadInput("--health-url without host", "--health-url", argv=("--health-url", "http://")),
    BadInput("--health-url bad port", "--health-url",
             argv=("--health-url", "https://x.example:99999/h")),
    BadInput("CARESYNC_DR_HEALTH_URL nonsense", "--health-url",
             env={"CARESYNC_DR_HEALTH_URL": "nonsense"}),
    BadInput("--stack with a path", "not a valid Pulumi stack name", argv=("--stack", "../etc")),
    BadInput("--stack unknown", "unknown stack 'staging'", argv=("--stack", "staging")),
    BadInput("--adopt-promoted with --check", "--adopt-promoted is not allowed with --check",
             argv=("--check", "--adopt-promoted", w.STANDBY_DB)),
    BadInput("--adopt-promoted with --resume", "--adopt-promoted is not allowed with --resume",
             argv=("--resume", "--adopt-promoted", w.STANDBY_DB)),
    BadInput("--adopt-promoted bad identifier", "--adopt-promoted 'db--x' is invalid",
             argv=("--adopt-promoted", "db--x")),
    BadInput("--scope bogus", "argument --scope: invalid choice", argv=("--scope", "bogus")),
    BadInput("--check with --dry-run", "not allowed with argument",
             argv=("--check", "--dry-run")),
    BadInput("--inventory missing", "cannot read --inventory",
             argv=("--inventory", "/nonexistent/inventory.json")),
    BadInput("--inventory is a directory", "cannot read --inventory",
             prepare=_dir_as("--inventory")),
    BadInput("--inventory not UTF-8", "is not UTF-8 text",
             prepare=_file("latin1.json", b'{"version": 1, "project": "caf\xe9"}')),
    BadInput("--inventory nested deeply", "nested too deeply",
             prepare=_file("deep.json", b"[" * 20_000 + b"]" * 20_000)),
    BadInput("--inventory huge", "an inventory is at most",
             prepare=_file("huge.json", b'{"version": 1, "pad": "' + b"x" * 200_000 + b'"}')),
    BadInput("--inventory empty", "is not valid JSON", prepare=_file("empty.json", b"")),
    BadInput("--report is a directory", "--report", prepare=_dir_as("--report")),
    BadInput("--report under a file", "--report", prepare=_under_a_file("--report")),
    BadInput("--journal-file is a directory", "--journal-file",
             prepare=_dir_as("--journal-file")),
    BadInput("--journal-file under a file", "--journal-file",
             prepare=_under_a_file("--journal-file")),
    BadInput("--journal-file is a FIFO", "--journal-file", prepare=_fifo_as("--journal-file")),
    BadInput("--journal-file links to /dev/full", "--journal-file",
             prepare=_link_to_dev_full_as("--journal-file")),
    BadInput("--report is a FIFO", "--report", prepare=_fifo_as("--report")),
    BadInput("--project-dir missing", "unknown stack 'dr'",
             argv=("--project-dir", "/nonexistent/project")),
]


def _inv(name: str, mutate: Callable[[Doc], Doc | str | bytes], expect: str,
         via_file: bool = False) -> BadInput:
    return BadInput(name, expect, inventory=mutate, via_file=via_file)


INVENTORY = [
    _inv("not JSON", lambda d: "{not json", "is not valid JSON"),
    _inv("a JSON list", lambda d: "[1, 2]", "must be a JSON object"),
    _inv("version 2", _set("version", 2), "inventory version 2 is not supported"),
    _inv("version '1'", _set("version", "1"), "inventory version '1' is not supported"),
    _inv("version true", _set("version", True), "inventory version True is not supported"),
    _inv("no version", _drop("version"), "inventory version None is not supported"),
    _inv("no trafficSwitch", _drop("trafficSwitch"), "trafficSwitch is missing"),
    _inv("unknown field", _set("standby.database.secretArn", "x"),
         "standby.database.secretArn is not part of schema"),
    _inv("duplicate key", _duplicate_key, "has the key 'stack' twice"),
    _inv("duplicate nested key", _duplicate_nested_key, "has the key 'backupRetentionDays' twice"),
    _inv("NaN", _nan, "contains NaN"),
    _inv("nested deeply", lambda d: "[" * 3000 + "]" * 3000, "nested too deeply"),
    _inv("backupRetentionDays 0", _set("standby.database.backupRetentionDays", 0),
         "standby.database.backupRetentionDays = 0 is invalid"),
    _inv("backupRetentionDays 36", _set("standby.database.backupRetentionDays", 36),
         "standby.database.backupRetentionDays = 36 is invalid"),
    _inv("backupRetentionDays 1.5", _set("primary.database.backupRetentionDays", 1.5),
         "primary.database.backupRetentionDays must be a whole number"),
    _inv("backupRetentionDays '30'", _set("standby.database.backupRetentionDays", "30"),
         "backupRetentionDays must be a whole number"),
    _inv("backupRetentionDays true", _set("standby.database.backupRetentionDays", True),
         "backupRetentionDays must be a whole number"),
    _inv("production capacity 0/0/0",
         _set("standby.app.productionCapacity", {"min": 0, "desired": 0, "max": 0}),
         "standby.app.productionCapacity = "),
    _inv("production desired 0",
         _set("standby.app.productionCapacity", {"min": 0, "desired": 0, "max": 4}),
         "must run at least one instance"),
    _inv("capacity min > desired",
         _set("standby.app.capacity", {"min": 3, "desired": 1, "max": 6}),
         "standby.app.capacity = "),
    _inv("capacity negative",
         _set("standby.app.capacity", {"min": -1, "desired": 1, "max": 6}),
         "standby.app.capacity = "),
    _inv("capacity extra key",
         _set("standby.app.capacity", {"min": 1, "desired": 1, "max": 6, "spot": 1}),
         "standby.app.capacity.spot is not part of schema"),
    _inv("rtoMinutes 0", _set("objectives.rtoMinutes", 0), "objectives.rtoMinutes = 0"),
    _inv("rpoMinutes 10**30", _set("objectives.rpoMinutes", 10**30), "objectives.rpoMinutes"),
    _inv("health URL without scheme", _set("dns.publicHealthUrl", "app.caresync.health/api/health"),
         "dns.publicHealthUrl"),
    _inv("health URL plain http", _set("dns.publicHealthUrl", "http://app.caresync.health/h"),
         "expected an https:// URL"),
    _inv("health URL on another host",
         _set("dns.publicHealthUrl", "https://status.example.com/api/health"),
         "must be on the failover record"),
    _inv("webhook URL plain http", _set("webhookUrl", "http://hooks.example.com/x"),
         "webhookUrl"),
    _inv("region mars", _set("standby.region", "mars-1"), "standby.region = 'mars-1'"),
    _inv("same regions", _set("standby.region", "us-east-1"), "is invalid"),
    _inv("switch in the primary region", _set("trafficSwitch.region", "us-east-1"),
         "trafficSwitch.region"),
    _inv("database ARN of another service",
         _set("primary.database.arn", "arn:aws:s3:::caresync"), "primary.database.arn"),
    _inv("database ARN of another database",
         _set("primary.database.arn", "arn:aws:rds:us-east-1:123456789012:db:other-db"),
         "the ARN names other-db"),
    _inv("database ARN in another region",
         _set("primary.database.arn", "arn:aws:rds:eu-west-1:123456789012:db:caresync-prod-db"),
         "the ARN is in eu-west-1"),
    _inv("database identifier invalid", _set("standby.database.identifier", "Bad_ID!"),
         "standby.database.identifier"),
    _inv("security group id invalid", _set("primary.database.securityGroupId", "default"),
         "primary.database.securityGroupId"),
    _inv("replica listed twice",
         _set("primary.database.replicaIdentifiers", ["caresync-prod-db-replica-1"] * 2),
         "lists a name twice"),
    _inv("replica is the database itself",
         _set("primary.database.replicaIdentifiers", ["caresync-prod-db"]),
         "names the database caresync-prod-db itself"),
    _inv("endpoint parameter not a path",
         _set("standby.database.endpointParameter", "database endpoint"), "endpointParameter"),
    _inv("lock parameter not a path", _set("lockParameter", "failover lock"), "lockParameter"),
    _inv("lock parameter reserved prefix", _set("lockParameter", "/aws/failover/lock"),
         "SSM reserves names"),
    _inv("journal parameter too deep", _set("journalParameter", "/a" * 16), "15 levels"),
    _inv("lock and journal the same", _set("journalParameter", "/caresync-dr/failover/lock"),
         "is the same SSM parameter as lockParameter"),
    _inv("alert topic in the primary region",
         _set("alertTopicArn", "arn:aws:sns:us-east-1:123456789012:alerts"),
         "the topic is in us-east-1"),
    _inv("target group ARN invalid", _set("standby.app.targetGroupArn", "dr-app"),
         "standby.app.targetGroupArn"),
    _inv("launch template id invalid", _set("standby.app.launchTemplateId", "template"),
         "standby.app.launchTemplateId"),
    _inv("auto scaling group name empty", _set("standby.app.autoScalingGroupName", " "),
         "autoScalingGroupName must be a non-empty string"),
    _inv("load balancer DNS invalid", _set("standby.app.loadBalancerDns", "not a host"),
         "standby.app.loadBalancerDns"),
    _inv("health check id invalid", _set("trafficSwitch.healthCheckId", "check-1"),
         "trafficSwitch.healthCheckId"),
    _inv("health checks the same",
         lambda d: _set("trafficSwitch.primaryHealthCheckId",
                        d["trafficSwitch"]["healthCheckId"])(d),
         "is the same health check as"),
    _inv("hosted zone id invalid", _set("dns.hostedZoneId", "zone-1"), "dns.hostedZoneId"),
    _inv("set identifiers the same", _set("dns.secondarySetIdentifier", "primary"),
         "distinct set identifiers"),
    _inv("switch values the same", _set("trafficSwitch.failoverValue", "PRIMARY"),
         "must differ from primaryValue"),
    _inv("switch value empty", _set("trafficSwitch.failoverValue", ""),
         "failoverValue must be a non-empty string"),
    _inv("bucket name upper case", _set("trafficSwitch.bucket", "CareSync_Switch"),
         "trafficSwitch.bucket"),
    _inv("bucket name an IP", _set("backupBucket", "192.168.1.1"), "backupBucket"),
    _inv("switch key too long", _set("trafficSwitch.key", "k" * 1025), "trafficSwitch.key"),
    _inv("project of another tool", _set("project", "billing"), "project = 'billing'"),
    _inv("stack name with spaces", _set("stack", "dr stack"), "stack = 'dr stack'"),
    _inv("string where object", _set("dns", "app.caresync.health"), "field dns must be an object"),
    _inv("object where string", _set("backupBucket", {"name": "x"}),
         "backupBucket must be a non-empty string"),
    _inv("list where string", _set("standby.region", ["us-west-2"]),
         "standby.region must be a non-empty string"),
    _inv("via file: backupRetentionDays 0", _set("standby.database.backupRetentionDays", 0),
         "standby.database.backupRetentionDays = 0 is invalid", via_file=True),
    _inv("via file: duplicate key", _duplicate_key, "has the key 'stack' twice", via_file=True),
]

ALL: list[BadInput] = TIMING + ARGUMENTS + INVENTORY


# --- trying one (pytest or not) -------------------------------------------------------------

ENV_KNOBS = ("AWS_ENDPOINT_URL", "AWS_PROFILE", "CARESYNC_DR_POLL_SECONDS",
             "CARESYNC_DR_POLL_MAX_SECONDS", "CARESYNC_DR_WAIT_TIMEOUT_SECONDS",
             "CARESYNC_DR_VERIFY_TIMEOUT_SECONDS", "CARESYNC_DR_HEALTH_URL",
             "CARESYNC_DR_LOCK_HEARTBEAT_SECONDS")
READS = ("Describe", "Get", "List")


@dataclass
class Refusal:
    code: int
    lines: list[str]       # the error lines the operator sees (log errors, argparse errors)
    traceback: bool
    changed: list[str]     # mutating AWS calls made
    # What stderr held when there was a traceback: whose it was (the command's, or a thread's
    # or finalizer's of another test that printed into this redirection) shows in a failure.
    stderr: str = ""


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in (*ENV_KNOBS, *values)}
    for name in ENV_KNOBS:
        os.environ.pop(name, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def try_input(case: BadInput, world: w.World, workdir: Path) -> Refusal:
    """Run ``failover.py --yes`` with the bad input, as the operator would, and capture what
    it says. The world's inventory parameter is restored afterwards."""
    argv = ["--yes", *case.argv]
    if case.prepare is not None:
        argv += case.prepare(workdir)
    original = world.inventory.to_json()
    if case.inventory is not None:
        mutated = case.inventory(json.loads(original))
        text = mutated if isinstance(mutated, (str, bytes)) else json.dumps(mutated)
        if case.via_file:
            path = workdir / "inventory.json"
            path.write_bytes(text if isinstance(text, bytes) else text.encode())
            argv += ["--inventory", str(path)]
        else:
            _store_inventory(text if isinstance(text, str) else text.decode())
    if "--project-dir" not in argv:
        argv += ["--project-dir", str(ROOT)]
    if "--journal-file" not in argv:
        argv += ["--journal-file", str(workdir / "journal.json")]
    if "--health-url" not in argv and "CARESYNC_DR_HEALTH_URL" not in case.env:
        argv += ["--health-url", world.health_url]
    for flag, value in zip(FAST[::2], FAST[1::2], strict=True):
        knob = flag[2:].upper().replace("-", "_")
        if flag not in argv and not any(knob in name for name in case.env):
            argv += [flag, value]
    world.calls.seen.clear()
    errors: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR:
                errors.append(record)

    handler = Collect()
    root = logging.getLogger()
    root.addHandler(handler)
    stderr = io.StringIO()
    crashed = False
    try:
        with _environment(case.env), redirect_stderr(stderr):
            try:
                code = run(argv, session=world.session, stdin=io.StringIO(""),
                           out=io.StringIO())
            except SystemExit as exc:     # argparse's refusals: usage + one error line
                code = int(exc.code or 0)
            except Exception as exc:   # what the process would die of, with a traceback
                code, crashed = 1, True
                stderr.write(f"Traceback (most recent call last): ...\n{exc!r}\n")
    finally:
        root.removeHandler(handler)
        _store_inventory(original)
    err = stderr.getvalue()
    lines = [r.getMessage() for r in errors] + [line for line in err.splitlines()
                                                if "error:" in line]
    traceback = crashed or "Traceback" in err or any(r.exc_info for r in errors)
    changed = [n for n in world.calls.names() if not n.split(":")[1].startswith(READS)]
    return Refusal(code, lines, traceback, changed, err[-3000:] if traceback else "")


def _store_inventory(text: str) -> None:
    w.client("ssm", w.STANDBY).put_parameter(Name=w.INVENTORY_PARAMETER, Value=text,
                                             Type="String", Overwrite=True, Tier="Advanced")


def refused_cleanly(case: BadInput, refusal: Refusal) -> list[str]:
    """What is wrong with a refusal (empty: clean): exit 2, one line naming the problem, no
    traceback, no change."""
    problems = []
    if refusal.code != USAGE:
        problems.append(f"exit {refusal.code}, not {USAGE}")
    if len(refusal.lines) != 1:
        problems.append(f"{len(refusal.lines)} error lines: {refusal.lines}")
    elif case.expect not in refusal.lines[0]:
        problems.append(f"the error line does not say {case.expect!r}: {refusal.lines[0]}")
    if refusal.traceback:
        problems.append("a traceback")
    if refusal.changed:
        problems.append(f"mutating calls {refusal.changed}")
    return problems
