"""What every operator command shares (issue 12 item 5, decision D5).

- :mod:`.errors`: the exit codes and the one error hierarchy (usage 2, refused 3, locked 4,
  not ready 5, failed part-way 1); the failover's and the backup's errors derive from it.
- :mod:`.parser`: the base parser (``--report``, ``-v``, ``--help`` ending with exit codes).
- :mod:`.main`: ``run_main(parser, body, argv)``, so each command is ``main(argv) -> int`` that
  never prints a traceback (unless ``-v``), checks ``--report`` first, writes a report on every
  exit and names the operator role when AWS credentials are missing.
- :mod:`.reporting`: the report path check and atomic JSON writes.
- :mod:`.signals`: SIGTERM and SIGHUP end a run the way Ctrl-C does.

A new command, in full::

    EXIT_CODES = [(ExitCode.OK, "the thing was done"),
                  (ExitCode.USAGE, "bad arguments; nothing was changed"),
                  (ExitCode.REFUSED, "AWS refused or did not answer; nothing was changed")]

    def build_parser() -> CommandParser:
        parser = command_parser("thing.py", "Do the thing.", EXIT_CODES)
        parser.add_argument("--stack", required=True, help="stack name")
        return parser

    def body(args: argparse.Namespace, run: Invocation) -> int:
        run.data["stack"] = args.stack          # lands in the --report JSON
        run.changing()                          # failures from here on are exit 1
        ...
        return ExitCode.OK

    def main(argv: list[str] | None = None) -> int:
        return run_main(build_parser(), body, argv)
"""

from caresync_dr.cli.errors import (
    CODE_NAMES,
    CommandError,
    ExitCode,
    FailedError,
    LockedError,
    NotReadyError,
    RefusedError,
    UsageError,
)
from caresync_dr.cli.main import (
    Ending,
    Invocation,
    run_command,
    run_main,
    setup_logging,
    verbose_in,
)
from caresync_dr.cli.parser import CommandParser, command_parser, exit_code_help
from caresync_dr.cli.reporting import (
    finish_report,
    writable_directory,
    writable_file,
    write_json_report,
    write_text_atomic,
)

__all__ = [
    "CODE_NAMES", "CommandError", "CommandParser", "Ending", "ExitCode", "FailedError",
    "Invocation", "LockedError", "NotReadyError", "RefusedError", "UsageError",
    "command_parser", "exit_code_help", "finish_report", "run_command", "run_main",
    "setup_logging", "verbose_in", "writable_directory",
    "writable_file", "write_json_report", "write_text_atomic",
]
