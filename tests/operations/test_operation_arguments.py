"""Every command on the operation engine has one set of engine flags: the same names, the same
meaning and the same words in --help; only what truly differs per command (the stack's
default, what --check checks, where the journal goes, the polling defaults) differs."""

from __future__ import annotations

import argparse

import pytest

from caresync_dr.cli import UsageError
from caresync_dr.commands import app, failback, pitr, switchover
from caresync_dr.failover import command as failover

PARSERS = {"failover": failover.build_parser, "switchover": switchover.build_parser,
           "failback": failback.build_parser, "app": app.build_parser,
           "pitr": pitr.build_parser}
SAME_EVERYWHERE = ("--dry-run", "--yes", "--resume", "--report")


def _option(parser: argparse.ArgumentParser, flag: str) -> argparse.Action:
    return next(a for a in parser._actions if flag in a.option_strings)


@pytest.mark.parametrize("flag", SAME_EVERYWHERE)
def test_the_engine_flags_say_the_same_everywhere(flag: str) -> None:
    helps = {name: _option(build(), flag).help for name, build in PARSERS.items()}
    assert len(set(helps.values())) == 1, helps


def test_what_differs_is_each_commands_own() -> None:
    parsers = {name: build() for name, build in PARSERS.items()}
    assert {n: _option(p, "--stack").default for n, p in parsers.items()} == {
        "failover": "dr", "switchover": "dr", "failback": "dr", "app": "prod", "pitr": "prod"}
    journal = {n: _option(p, "--journal-file").help for n, p in parsers.items()}
    assert "reports/failover-journal.json" in str(journal["failover"])
    assert "reports/switchover-journal.json" in str(journal["switchover"])
    assert "reports/pitr-journal.json" in str(journal["pitr"])
    assert {n: _option(p, "--poll-seconds").default for n, p in parsers.items()} == {
        "failover": None, "switchover": None,   # from the environment knob, else 5
        "failback": 30.0, "app": 5.0, "pitr": 15.0}
    # pitr's --check is its own (a condition the restored database must meet)
    assert _option(parsers["pitr"], "--check").default == []
    assert not any("--check" in a.option_strings for a in parsers["app"]._actions)
    for name in ("failover", "switchover", "failback"):
        parser = parsers[name]
        assert any({_option(parser, "--check"), _option(parser, "--dry-run")}
                   <= set(group._group_actions)
                   for group in parser._mutually_exclusive_groups), name


VALID = {"failback": [], "app": ["status"], "pitr": ["--restore-time", "2026-11-29T00:00:00Z"]}


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1", "601"])
@pytest.mark.parametrize("name", sorted(VALID))
def test_the_validated_polling_flags_refuse_what_is_not_finite_seconds(name: str,
                                                                        value: str) -> None:
    parser = PARSERS[name]()
    assert parser.parse_args([*VALID[name], "--poll-seconds", "2"]).poll_seconds == 2.0
    with pytest.raises(UsageError, match="--poll-seconds"):
        parser.parse_args([*VALID[name], "--poll-seconds", value])
