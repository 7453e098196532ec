"""Every operational script shares one surface: --help documents the exit codes, a --report
option writes machine-readable JSON, and every option says what it does."""

from __future__ import annotations

import argparse
import re
from typing import Any, NoReturn

import pytest

from tests.operator.commands import entry_points, load_main

SCRIPTS = tuple(sorted(entry_points()))


class _ParserCaughtError(Exception):
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__("parser captured")
        self.parser = parser


def _parser_of(script: str, monkeypatch: pytest.MonkeyPatch) -> argparse.ArgumentParser:
    """The parser the script's main builds, caught before it parses anything."""
    def capture(self: argparse.ArgumentParser, *_: Any, **__: Any) -> NoReturn:
        raise _ParserCaughtError(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(_ParserCaughtError) as caught:
        load_main(entry_points()[script])([])
    return caught.value.parser


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_documents_exit_codes_and_report(script: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    parser = _parser_of(script, monkeypatch)
    text = parser.format_help()
    codes = re.search(r"exit codes:\n((?:\s+\d+\s+\S.*\n?)+)", text, re.IGNORECASE)
    assert codes, f"{script} --help has no 'exit codes:' list"
    assert re.search(r"^\s+0\s", codes.group(1), re.MULTILINE), f"{script}: exit code 0"
    report = [a for a in parser._actions if "--report" in a.option_strings]
    assert report, f"{script} has no --report option"


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_option_says_what_it_does(script: str, monkeypatch: pytest.MonkeyPatch) -> None:
    parser = _parser_of(script, monkeypatch)
    silent = [a.option_strings[-1] for a in parser._actions
              if a.option_strings and not a.help]
    assert not silent, f"{script} --help: options without a description: {silent}"
