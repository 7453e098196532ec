"""Shims for moto's documented gaps (DESIGN.md), shared by the drill and the tests.

Each shim edits moto's in-process backends so the emulator shows what real AWS would show;
none of them is used by production code paths.
"""
