"""The data-breach response (the seed's scenario 3): contain, revoke, more logging, investigate,
notify. See ``--help`` and docs/runbooks/data-breach.md; the work is in
:mod:`caresync_dr.breach`."""

from __future__ import annotations

from caresync_dr.breach.command import breach_main, build_breach_parser

__all__ = ["build_parser", "main"]
build_parser = build_breach_parser


def main(argv: list[str] | None = None) -> int:
    return breach_main(argv)
