"""Rotate the database credentials (decision D1's secrets and passwords), verify the old ones
refused and replace the app instances: the scheduled rotation (deploy/systemd), on the same
steps as the breach response's."""

from __future__ import annotations

from caresync_dr.breach.command import build_rotation_parser, rotation_main

__all__ = ["build_parser", "main"]
build_parser = build_rotation_parser


def main(argv: list[str] | None = None) -> int:
    return rotation_main(argv)
