"""The names a point-in-time restore acts on, derived from the site as the stack names them
(``components/database.py``, ``components/network.py``; tests/stack/test_pitr_names.py keeps
them equal): nothing here needs a stack output or the Pulumi state."""

from __future__ import annotations


def db_identifier(site: str, generation: int = 1) -> str:
    """``caresync-<site>-db`` (generation 1) or ``caresync-<site>-db-g<N>``."""
    return f"caresync-{site}-db" if generation == 1 else f"caresync-{site}-db-g{generation}"


def endpoint_parameter_name(site: str) -> str:
    """The SecureString the site's app reads its database endpoint from at boot."""
    return f"/caresync-dr/{site}/database-host"


def no_access_group_name(site: str) -> str:
    """The site's security group without any rule (AWS Backup's restore tests use it too):
    a fenced instance moves there."""
    return f"caresync-{site}-restore-test"


def database_urn(stack: str, site: str) -> str:
    """The URN of the site's Database component: the parent an imported generation needs.
    (The engine leaves the root stack out of a URN's type chain; the offline mocks keep it.)"""
    return f"urn:pulumi:{stack}::caresync-dr::caresync:dr:Database::{site}-database"
