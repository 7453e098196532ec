"""Every operator command meets hostile input with one clear line and a documented exit code.

The inputs an on-call engineer or a tester gives by mistake: a report path that cannot be
written (its parent is a file, it is under /proc, it is a directory), no AWS credentials, an
endpoint nobody answers, an unknown stack, negative / NaN / infinite / non-numeric numbers,
directories that are files or under /proc, times without a zone, in the future or whose UTC
form overflows (``0001-01-01T00:00+14:00``), garbage URLs and a garbage ``DATABASE_URL``. Each
case fails on a traceback, on an exit code the command's ``--help`` does not list, on a refusal
that changed something (a file in the ``{work}`` directory, a ``.tmp`` beside the report), and
on an error that does not name what is wrong. Inputs that are the operator's mistake must exit
2 (usage). The commands are the table in ``tests/operator/commands.py``; the cases are derived
from each command's own parser.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import re
import stat
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import botocore.handlers
import botocore.retries.standard
import pytest

from caresync_dr.backup.keys import generate_key_file
from caresync_dr.drill import localhttp
from caresync_dr.drill.localhttp import serve
from caresync_dr.operator_permissions import role_name_of
from tests.operator.commands import (
    BAD_DIRECTORIES,
    BAD_NUMBERS,
    BAD_OUTPUT_FILES,
    BAD_TIMES,
    BAD_URLS,
    COMMANDS,
    UNREACHABLE_ENDPOINT,
    Command,
    command_name,
    directory_options,
    documented_codes,
    has_option,
    numeric_options,
    output_file_options,
    parser_of,
    time_options,
    url_options,
)

USAGE = 2

def role_named(command: Command) -> str:
    """The role a missing-credentials error must name (and say how to assume): the command's
    (caresync_dr/operator_permissions.py, ROLES)."""
    return re.escape(role_name_of(command_name(command.name)))

# Every case runs with AWS pointed at a closed loopback port: nothing can reach real AWS.
SAFE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": UNREACHABLE_ENDPOINT,
    "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
}
SCRUBBED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_REGION",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "DATABASE_URL", "APP_URL",
            "CARESYNC_BACKUP_KEY_FILE", "CHECKOV_BIN")


@dataclass(frozen=True)
class Case:
    command: Command
    label: str
    argv: tuple[str, ...]
    expect: str                                  # regex: a line of the error names this
    usage: bool = True                           # the operator's mistake: exit 2
    env: dict[str, str | None] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.command.name}:{self.label}"


def _option_words(option: str) -> str:
    dest = option.lstrip("-").replace("-", "_")
    return "|".join(re.escape(w) for w in (option, dest.upper(), dest.replace("_", " ")))


def cases_for(command: Command) -> list[Case]:
    parser = parser_of(command)
    base = command.base
    found = [Case(command, f"{option.lstrip('-')}-{label}", (*base, option, value),
                  re.escape(option))
             for option in output_file_options(parser)
             for label, value in BAD_OUTPUT_FILES.items()]
    if has_option(parser, "--stack"):
        rest = tuple(a for i, a in enumerate(base)
                     if a != "--stack" and (i == 0 or base[i - 1] != "--stack"))
        found.append(Case(command, "unknown-stack", (*rest, "--stack", "nosuch"), "nosuch"))
    for option in numeric_options(parser):
        found += [Case(command, f"{option}={value}", (*base, option, value),
                       _option_words(option)) for value in BAD_NUMBERS]
    for option in set(directory_options(parser)) - set(command.unread_directories):
        found += [Case(command, f"{option}={value}", (*base, option, value),
                       f"{_option_words(option)}|a-file|/proc/caresync")
                  for value in BAD_DIRECTORIES]
    for option in time_options(parser):
        found += [Case(command, f"{option}={value}", (*base, option, value),
                       _option_words(option)) for value in BAD_TIMES]
    for option in url_options(parser):
        found += [Case(command, f"{option}={value}", (*base, option, value),
                       _option_words(option)) for value in BAD_URLS]
    if command.aws is not None:
        found += [
            Case(command, "no-aws-credentials", command.aws, role_named(command), usage=False,
                 env={"AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}),
            Case(command, "unreachable-endpoint", command.aws, re.escape("127.0.0.1:9"),
                 usage=False),
            # A captive portal, a proxy's login page, a web site named by mistake: HTTP 200
            # with HTML. botocore parsed it into an empty result ("KeyError (a bug)", exit 1).
            Case(command, "endpoint-answers-a-web-page", command.aws,
                 "web page, not AWS", usage=False, env={"AWS_ENDPOINT_URL": "{webpage}"}),
        ]
    if command.database is not None:
        found += [Case(command, f"DATABASE_URL={value}", command.database,
                       "DATABASE_URL|database URL", env={"DATABASE_URL": value})
                  for value in BAD_URLS]
    return found


CASES = [case for command in COMMANDS for case in cases_for(command)]

# Faults found here in code another lane owns, left to it (reported to the lead); strict, so
# each case fails loudly the day it is fixed and this entry must go.
KNOWN_FAULTS: dict[str, str] = {}  # case id -> why it still fails (strict xfail)


def _param(case: Case) -> Any:
    reason = KNOWN_FAULTS.get(case.id)
    marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
    return pytest.param(case, id=case.id, marks=marks)


BACKUP_SQL = b"SELECT 1;\n"
KEY_BYTES: dict[Path, bytes] = {}    # each test's key file as generated


@dataclass
class Outcome:
    code: int
    out: str
    err: str


class _WebPage(BaseHTTPRequestHandler):
    """Answers every request with a captive portal's page."""

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<!DOCTYPE html>\n<html><body>Please sign in to the guest network</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture(scope="module")
def web_page() -> Iterator[str]:
    server = serve(_WebPage, 0, "captive-portal")
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        localhttp.stop(server)


@pytest.fixture
def places(tmp_path: Path) -> dict[str, Path]:
    """The files a case's arguments name; ``work`` must stay empty."""
    work = tmp_path / "work"
    work.mkdir()
    key = tmp_path / "backup.key"
    generate_key_file(key)
    KEY_BYTES[key] = key.read_bytes()
    backup = tmp_path / "backup_20260101_000000.sql.gz"
    backup.write_bytes(gzip.compress(BACKUP_SQL))
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory\n")
    report_dir = tmp_path / "reports"
    report_dir.mkdir()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    fifo = tmp_path / "report-fifo"
    os.mkfifo(fifo)
    devfull = tmp_path / "report-link"
    devfull.symlink_to("/dev/full")
    return {"work": work, "key": key, "backup": backup, "file": a_file,
            "reportdir": report_dir, "cwd": cwd, "fifo": fifo, "devfull": devfull}


def run_case(case: Case, places: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
             web_page: str = UNREACHABLE_ENDPOINT,
             streams: tuple[io.StringIO, io.StringIO] | None = None) -> Outcome:
    for name in SCRUBBED:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**SAFE_ENV, **case.command.env, **case.env}.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value.format(webpage=web_page))
    monkeypatch.chdir(places["cwd"])
    # botocore's retry decisions stay its own; only its sleeps between attempts shrink.
    monkeypatch.setattr(botocore.retries.standard.ExponentialBackoff, "delay_amount",
                        lambda self, context: 0.01)
    argv = [arg.format(**{k: str(v) for k, v in places.items()}) for arg in case.argv]
    out, err = streams or (io.StringIO(), io.StringIO())
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", err)
    try:
        code: int = case.command.main()(argv)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 1
    except BaseException:
        pytest.fail(f"{case.id}: {case.command.name} {' '.join(argv)} raised\n"
                    f"{traceback.format_exc()}\nstderr:\n{err.getvalue()}")
    finally:
        logging.shutdown()
    return Outcome(int(code), out.getvalue(), err.getvalue())


@pytest.mark.parametrize("case", [_param(case) for case in CASES])
def test_hostile_input_gets_one_clear_line_and_a_documented_code(
        case: Case, places: dict[str, Path], monkeypatch: pytest.MonkeyPatch,
        web_page: str) -> None:
    documented = documented_codes(case.command)
    assert documented, f"{case.command.name} --help lists no exit codes"
    outcome = run_case(case, places, monkeypatch, web_page)
    said = f"stdout:\n{outcome.out}\nstderr:\n{outcome.err}"
    assert "Traceback" not in outcome.err + outcome.out, f"{case.id}: a traceback\n{said}"
    assert outcome.code in documented, (
        f"{case.id}: exit {outcome.code}, --help documents {sorted(documented)}\n{said}")
    if case.usage:
        assert outcome.code == USAGE, f"{case.id}: bad input must exit {USAGE}\n{said}"
    else:
        assert outcome.code != 0, f"{case.id}: exit 0 on a failure\n{said}"
    assert re.search(case.expect, outcome.err, re.IGNORECASE), (
        f"{case.id}: no error line names {case.expect!r}\n{said}")
    left = sorted(str(p.relative_to(places["work"])) for p in places["work"].rglob("*"))
    assert not left, f"{case.id}: a refused run left {left} behind\n{said}"
    tmp_files = [p for p in places["work"].parent.rglob("*.tmp")]
    assert not tmp_files, f"{case.id}: half-written files left: {tmp_files}"
    assert stat.S_ISFIFO(places["fifo"].lstat().st_mode), f"{case.id}: the FIFO was replaced"
    assert places["devfull"].is_symlink(), f"{case.id}: the link to /dev/full was replaced"
    assert gzip.decompress(places["backup"].read_bytes()) == BACKUP_SQL, f"{case.id}: backup"
    assert places["key"].read_bytes() == KEY_BYTES[places["key"]], f"{case.id}: the key file"


@pytest.mark.parametrize("command", COMMANDS, ids=[c.name for c in COMMANDS])
def test_help_documents_ok_usage_and_failure(command: Command) -> None:
    codes = documented_codes(command)
    assert {0, 2} <= set(codes), f"{command.name} --help: exit codes {sorted(codes)}"
    assert os.linesep not in "".join(codes.values())


class _Trap(io.StringIO):
    """A terminal that goes away: the first write (other than the final error line) raises
    ``exc``, as a closed pipe (``| head -0``) or a Ctrl-C while the run prints does."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc: BaseException | None = exc
        self.sprung = False

    def write(self, text: str) -> int:
        if self.exc is not None and text.strip() and "(exit " not in text:
            exc, self.exc = self.exc, None
            self.sprung = True
            raise exc
        return super().write(text)


STREAM_CASES = {"stdout-closed": ("stdout", BrokenPipeError(32, "Broken pipe")),
                "ctrl-c-while-printing": ("both", KeyboardInterrupt())}


@pytest.mark.parametrize("kind", sorted(STREAM_CASES))
@pytest.mark.parametrize("command", COMMANDS, ids=[c.name for c in COMMANDS])
def test_a_closed_output_or_ctrl_c_is_one_line_and_a_documented_code(
        command: Command, kind: str, places: dict[str, Path],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``base`` run (AWS unreachable, the database nowhere) with its output cut."""
    if command.name == "caresync-drill":
        pytest.skip("a whole drill; its interruption is tests/drill's")
    which, exc = STREAM_CASES[kind]
    case = Case(command, kind, command.base, "", env={"DATABASE_URL": None}
                if command.database is None else {})
    out, err = _Trap(exc), _Trap(exc if which == "both" else KeyboardInterrupt())
    if which != "both":
        err.exc = None
    outcome = run_case(case, places, monkeypatch, streams=(out, err))
    said = f"stdout:\n{outcome.out}\nstderr:\n{outcome.err}"
    assert "Traceback" not in outcome.err + outcome.out, f"{kind}: a traceback\n{said}"
    documented = documented_codes(command)
    assert outcome.code in documented, (
        f"{command.name} {kind}: exit {outcome.code}, --help documents {sorted(documented)}\n"
        f"{said}")
    if out.sprung or err.sprung:
        assert outcome.code != 0, f"{kind}: exit 0 although the run was cut\n{said}"
        assert re.search("broken pipe|interrupted|stopped", outcome.err, re.IGNORECASE), said


AWS_COMMANDS = [c for c in COMMANDS if c.aws is not None]


@pytest.mark.parametrize("command", AWS_COMMANDS, ids=[c.name for c in AWS_COMMANDS])
def test_ctrl_c_at_the_first_aws_request_is_one_line_and_a_documented_code(
        command: Command, places: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while the first AWS request is on its way (the moment an operator sees the
    command hang on a slow region and presses it)."""
    sent: list[str] = []

    def interrupt(request: Any, **_: Any) -> None:
        sent.append(str(request.url))
        if len(sent) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS",
                        [*botocore.handlers.BUILTIN_HANDLERS, ("before-send", interrupt)])
    assert command.aws is not None
    outcome = run_case(Case(command, "ctrl-c-at-first-aws-request", command.aws, ""), places,
                       monkeypatch)
    said = f"stdout:\n{outcome.out}\nstderr:\n{outcome.err}"
    assert sent, f"{command.name}: no AWS request was made\n{said}"
    assert "Traceback" not in outcome.err + outcome.out, f"a traceback\n{said}"
    documented = documented_codes(command)
    assert outcome.code in documented and outcome.code != 0, (
        f"{command.name}: exit {outcome.code}, --help documents {sorted(documented)}\n{said}")
    assert re.search("interrupted|stopped", outcome.err, re.IGNORECASE), said
    assert not list(places["work"].rglob("*")), f"a refused run left files behind\n{said}"
