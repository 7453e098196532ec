"""The shape every operator command shares (issue 12 items 1-3 and 5, decision D5): one line
and a documented exit code for every way out, the report checked first and written on every
exit, the operator role named when AWS credentials are missing."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from caresync_dr.backup.errors import BackupNotFoundError, IntegrityError, KeyUnavailableError
from caresync_dr.cli import (
    CommandError,
    ExitCode,
    Invocation,
    RefusedError,
    UsageError,
    command_parser,
    run_command,
    write_json_report,
    write_text_atomic,
)
from caresync_dr.cli.signals import Interrupted
from caresync_dr.failover.errors import FailoverError, StepFailedError

EXIT_CODES = [(ExitCode.OK, "done"), (ExitCode.FAILED, "failed part-way"),
              (ExitCode.USAGE, "bad arguments"), (ExitCode.REFUSED, "nothing was changed")]


def _parser() -> argparse.ArgumentParser:
    parser = command_parser("toy.py", "A toy command.", EXIT_CODES, notes="notes: none")
    parser.add_argument("--count", type=int, default=1, help="how many")
    return parser


class Toy:
    """Runs a body through run_command and keeps what the operator would see."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self.ran = False

    def __call__(self, body: Callable[[argparse.Namespace, Invocation], int],
                 *argv: str) -> int:
        self.caplog.clear()

        def wrapped(args: argparse.Namespace, invocation: Invocation) -> int:
            self.ran = True
            return body(args, invocation)

        with self.caplog.at_level(logging.INFO):
            return run_command(_parser(), wrapped, list(argv))

    @property
    def errors(self) -> list[str]:
        return [r.getMessage() for r in self.caplog.records if r.levelno >= logging.ERROR]

    @property
    def tracebacks(self) -> int:
        return sum(1 for r in self.caplog.records if r.exc_info and r.levelno >= logging.INFO)


@pytest.fixture
def toy(caplog: pytest.LogCaptureFixture) -> Toy:
    return Toy(caplog)


def ok(args: argparse.Namespace, run: Invocation) -> int:
    run.data["count"] = args.count
    run.message = "counted"
    return ExitCode.OK


def raises(exc: BaseException, *, changing: bool = False
           ) -> Callable[[argparse.Namespace, Invocation], int]:
    def body(args: argparse.Namespace, run: Invocation) -> int:
        if changing:
            run.changing()
        raise exc

    return body


def test_help_ends_with_the_exit_codes() -> None:
    text = _parser().format_help()
    assert text.rstrip().endswith("3  nothing was changed")
    assert text.index("notes: none") < text.index("exit codes:")
    assert "--report PATH" in text and "--verbose" in text


def test_a_clean_run_writes_the_base_report(toy: Toy, tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "report.json"     # missing parents are created
    assert toy(ok, "--count", "3", "--report", str(path)) == 0
    report = json.loads(path.read_text())
    assert report["command"] == "toy" and report["exit_code"] == 0
    assert report["outcome"] == "ok" and report["message"] == "counted" and report["count"] == 3
    assert report["duration_seconds"] >= 0
    assert list(path.parent.iterdir()) == [path]


def test_parser_refusals_are_one_line_exit_2_with_a_report(toy: Toy, tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    for argv in (["--count", "many"], ["--bogus"], ["--count"]):
        assert toy(ok, *argv, "--report", str(path)) == ExitCode.USAGE
        assert not toy.ran
        assert len(toy.errors) == 1 and "(exit 2: usage)" in toy.errors[0], toy.errors
        assert toy.tracebacks == 0
        report = json.loads(path.read_text())
        assert report["exit_code"] == 2 and report["outcome"] == "usage error"


@pytest.mark.parametrize("where", ["directory", "under a file", "unwritable"])
def test_a_bad_report_path_is_refused_before_any_work(toy: Toy, tmp_path: Path,
                                                      where: str) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    # /proc/1 is not writable, not even by root (who may write any mode-0500 directory).
    path = {"directory": tmp_path, "under a file": blocker / "r.json",
            "unwritable": Path("/proc/1/r.json")}[where]
    before = sorted(tmp_path.rglob("*"))
    assert toy(ok, "--report", str(path)) == ExitCode.USAGE
    assert not toy.ran
    assert len(toy.errors) == 1 and "--report" in toy.errors[0] and "exit 2" in toy.errors[0]
    assert sorted(tmp_path.rglob("*")) == before          # nothing written, no .tmp


@pytest.mark.parametrize(("exc", "code", "outcome"), [
    (UsageError("unknown stack 'x'"), ExitCode.USAGE, "usage error"),
    (RefusedError("lag beyond the RPO"), ExitCode.REFUSED, "refused"),
    (StepFailedError("step x failed"), ExitCode.FAILED, "failed"),
    (KeyboardInterrupt(), ExitCode.REFUSED, "interrupted"),
    (Interrupted(15), ExitCode.REFUSED, "interrupted"),
    (FileNotFoundError(2, "No such file or directory", "/backups"), ExitCode.FAILED, "failed"),
    (ZeroDivisionError("division by zero"), ExitCode.FAILED, "crashed"),
])
def test_every_way_out_is_one_line_and_a_report(toy: Toy, tmp_path: Path, exc: BaseException,
                                                code: ExitCode, outcome: str) -> None:
    path = tmp_path / "r.json"
    assert toy(raises(exc), "--report", str(path)) == code
    assert len(toy.errors) == 1, toy.errors
    assert f"(exit {int(code)}: " in toy.errors[0]
    assert toy.tracebacks == 0               # the traceback is a debug record (-v)
    report = json.loads(path.read_text())
    assert (report["exit_code"], report["outcome"]) == (int(code), outcome)
    if outcome == "crashed":
        assert "ZeroDivisionError" in report["traceback"] and "a bug" in report["message"]
    if outcome == "interrupted":
        assert "nothing was changed" in report["message"]


def test_an_interruption_after_a_change_is_exit_1(toy: Toy) -> None:
    assert toy(raises(KeyboardInterrupt(), changing=True)) == ExitCode.FAILED
    assert "part-way" in toy.errors[0]


CREDENTIAL_ERRORS = [
    NoCredentialsError(),
    ClientError({"Error": {"Code": "ExpiredToken", "Message": "The security token included "
                           "in the request is expired"}}, "GetParameter"),
    ClientError({"Error": {"Code": "InvalidClientTokenId", "Message": "bad"}}, "Publish"),
]


@pytest.mark.parametrize("exc", CREDENTIAL_ERRORS, ids=["missing", "expired", "unknown key"])
def test_missing_credentials_name_the_operator_role(toy: Toy, exc: Exception) -> None:
    assert toy(raises(exc)) == ExitCode.REFUSED
    (line,) = toy.errors
    assert "caresync-dr-operator" in line and "aws sts assume-role" in line
    assert "role_arn" in line and "nothing was changed" in line


def test_a_wrapped_credentials_error_keeps_its_code_and_gains_the_hint(toy: Toy) -> None:
    def body(args: argparse.Namespace, run: Invocation) -> int:
        try:
            raise NoCredentialsError()
        except NoCredentialsError as exc:
            raise UsageError("cannot read the inventory") from exc

    assert toy(body) == ExitCode.USAGE
    assert "cannot read the inventory; no usable AWS credentials" in toy.errors[0]
    assert "caresync-dr-operator" in toy.errors[0]


def test_an_unreachable_endpoint_before_any_change_is_exit_3(toy: Toy) -> None:
    unreachable = EndpointConnectionError(endpoint_url="https://ssm.us-west-2.amazonaws.com/")
    assert toy(raises(unreachable)) == ExitCode.REFUSED
    assert "AWS did not answer" in toy.errors[0] and "nothing was changed" in toy.errors[0]
    assert toy(raises(unreachable, changing=True)) == ExitCode.FAILED
    assert "part-way" in toy.errors[0]


def test_a_body_report_replaces_the_base_one(toy: Toy, tmp_path: Path) -> None:
    def body(args: argparse.Namespace, run: Invocation) -> int:
        run.write_report({"mine": True})
        raise RefusedError("no")

    path = tmp_path / "r.json"
    assert toy(body, "--report", str(path)) == ExitCode.REFUSED
    assert json.loads(path.read_text()) == {"mine": True}


@pytest.mark.parametrize("claim", [{"ok": True}, {"outcome": "ok"}, {"exit_code": 0},
                                   {"exitCode": 0}])
def test_a_success_report_followed_by_ctrl_c_is_corrected(toy: Toy, tmp_path: Path,
                                                          claim: dict[str, Any]) -> None:
    """A body that wrote its own report saying it succeeded, then was interrupted (Ctrl-C while
    it printed its summary, the drill's case): the report said success while the process
    exited 1. Every report a body wrote that claims success is rewritten with the ending."""
    def body(args: argparse.Namespace, run: Invocation) -> int:
        run.changing()
        run.write_report({"mine": True, **claim})
        raise KeyboardInterrupt

    path = tmp_path / "r.json"
    assert toy(body, "--report", str(path)) == ExitCode.FAILED
    written = json.loads(path.read_text())
    assert written["mine"] is True
    assert written["ending"]["outcome"] == "interrupted"
    assert written["ending"]["exit_code"] == ExitCode.FAILED
    key = next(iter(claim))
    assert written[key] == {"ok": False, "outcome": "interrupted"}.get(key, ExitCode.FAILED)


def test_a_failed_report_write_leaves_no_temporary_file(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("caresync_dr.cli.reporting.os.replace", refuse)
    with pytest.raises(OSError):
        write_json_report(tmp_path / "r.json", {"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_one_error_family() -> None:
    """The failover's and the backup's errors are the commands' one hierarchy, each with its
    code (issue 12 item 5: "backup errors carry their exit code like failover's do")."""
    assert FailoverError is CommandError
    assert BackupNotFoundError("x").exit_code == ExitCode.USAGE
    assert KeyUnavailableError("x").exit_code == ExitCode.USAGE
    assert IntegrityError("x").exit_code == ExitCode.FAILED
    assert IntegrityError("x", exit_code=ExitCode.REFUSED).exit_code == ExitCode.REFUSED
    assert isinstance(IntegrityError("x"), CommandError)


def test_a_report_through_a_symbolic_link_replaces_the_file_it_names(
        toy: Toy, tmp_path: Path) -> None:
    """A rename over the link itself would replace the link: over /dev/stdout, the machine's."""
    target = tmp_path / "kept" / "report.json"
    target.parent.mkdir()
    target.write_text("{\"outcome\": \"failed\"}\n")   # a previous report
    link = tmp_path / "latest.json"
    link.symlink_to(target)
    assert toy(ok, "--report", str(link)) == ExitCode.OK
    assert link.is_symlink() and link.resolve() == target
    assert json.loads(target.read_text())["outcome"] == "ok"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["kept", "latest.json", "report.json"]


@pytest.mark.parametrize("kind", ["fifo", "link to /dev/full", "link to /dev/null"])
def test_a_report_path_that_is_not_a_regular_file_is_refused_and_kept(
        toy: Toy, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "report"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(kind.removeprefix("link to "))
    assert toy(ok, "--report", str(path)) == ExitCode.USAGE
    assert not toy.ran
    assert "not a regular file" in toy.errors[0] and "--report" in toy.errors[0]
    assert path.is_symlink() if kind != "fifo" else stat.S_ISFIFO(path.lstat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_the_atomic_writer_never_replaces_a_device_or_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "stdout"
    link.symlink_to("/dev/null")
    for path in (fifo, link, tmp_path):
        with pytest.raises(OSError, match="not a regular file"):
            write_text_atomic(path, "{}\n")
    assert stat.S_ISFIFO(fifo.lstat().st_mode) and link.is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "stdout"]


def test_help_lists_the_base_endings_a_command_leaves_out() -> None:
    """Ctrl-C (exit 3) and a closed pipe (exit 1) end every command: objectives.py listed
    0, 2 and 5 only, and `objectives.py | head -0` exited 1, undocumented."""
    parser = command_parser("quiet.py", "Reads only.", [(ExitCode.OK, "fine"),
                                                         (ExitCode.USAGE, "bad arguments")])
    text = parser.format_help()
    block = text[text.index("exit codes:"):]
    assert [int(c) for c in re.findall(r"^  (\d)  ", block, re.MULTILINE)] == [0, 1, 2, 3]
    assert "closed pipe" in block and "interrupted (Ctrl-C" in block
    # A code the command lists keeps its own meaning.
    assert "nothing was changed" in _parser().format_help().rstrip().splitlines()[-1]


def test_a_closed_pipe_is_said_so(toy: Toy) -> None:
    assert toy(raises(BrokenPipeError(32, "Broken pipe"))) == ExitCode.FAILED
    (line,) = toy.errors
    assert "output was cut off" in line and "nothing was changed" in line


def test_a_full_disk_names_the_file_it_could_not_write(
        toy: Toy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """objectives.py --report on a full file system said only '[Errno 28] No space left on
    device'."""
    def full(*_: Any) -> None:
        raise OSError(28, "No space left on device")

    def body(args: argparse.Namespace, run: Invocation) -> int:
        run.write_report({"feasible": True})
        return ExitCode.OK

    monkeypatch.setattr("caresync_dr.cli.reporting.os.replace", full)
    path = tmp_path / "objectives.json"
    assert toy(body, "--report", str(path)) == ExitCode.FAILED
    assert toy.errors[0].startswith(f"{path}: No space left on device; nothing was changed")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", ["backup", "key", "stack file", "manifest"])
def test_a_report_never_replaces_a_file_that_is_not_a_report(
        toy: Toy, tmp_path: Path, kind: str) -> None:
    """rollback.sh B --report B replaced the backup B with the JSON report (backup.py
    --report KEY the key file every backup is encrypted with, objectives.py --report
    Pulumi.prod.yaml the stack file)."""
    name, content = {"backup": ("backup_20260101_000000.sql.gz", b"\x1f\x8b\x08\x00 data"),
                     "key": ("backup.key", b"9f" * 32 + b"\n"),
                     "stack file": ("Pulumi.prod.yaml", b"config:\n  aws:region: us-east-1\n"),
                     "manifest": ("backup_20260101_000000.sql.gz.manifest.json",
                                  b'{"name": "backup_20260101_000000.sql.gz"}')}[kind]
    path = tmp_path / name
    path.write_bytes(content)
    assert toy(ok, "--report", str(path)) == ExitCode.USAGE
    assert not toy.ran and "--report" in toy.errors[0] and "replaced" in toy.errors[0]
    assert path.read_bytes() == content
    assert toy(ok, "--report", str(path), "--bogus") == ExitCode.USAGE   # refused arguments
    assert path.read_bytes() == content


def test_a_previous_report_or_an_empty_file_is_replaced(toy: Toy, tmp_path: Path) -> None:
    for content in (b"", b'\n{"outcome": "failed"}\n', b"[]"):
        path = tmp_path / "report.json"
        path.write_bytes(content)
        assert toy(ok, "--report", str(path)) == ExitCode.OK
        assert json.loads(path.read_text())["outcome"] == "ok"


def test_a_report_that_is_one_of_the_inputs_is_refused(toy: Toy, tmp_path: Path) -> None:
    """A JSON input (failover.py --inventory F --report F) passes the content check."""
    inventory = tmp_path / "inventory.json"
    inventory.write_text('{"version": 1}\n')

    def parser() -> argparse.ArgumentParser:
        parsed = _parser()
        parsed.add_argument("--inventory", type=Path)
        return parsed

    code = run_command(parser(), ok, ["--inventory", str(inventory), "--report",
                                      str(tmp_path / "." / "inventory.json")])
    assert code == ExitCode.USAGE
    assert "--inventory" in toy.caplog.text and inventory.read_text() == '{"version": 1}\n'
