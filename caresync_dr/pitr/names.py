"""What a point-in-time restore names that is not a physical name (those are in
:mod:`caresync_dr.names`): the parent an imported generation takes in the Pulumi state."""

from __future__ import annotations

from caresync_dr.names import PROJECT


def database_urn(stack: str, site: str) -> str:
    """The URN of the site's Database component: the parent an imported generation needs.
    (The engine leaves the root stack out of a URN's type chain; the offline mocks keep it.)"""
    return f"urn:pulumi:{stack}::{PROJECT}::caresync:dr:Database::{site}-database"
