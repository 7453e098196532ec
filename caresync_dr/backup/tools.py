"""PostgreSQL client tools and connection strings."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from caresync_dr.backup.errors import BackupError

SYSTEM_BIN = Path("/usr/lib/postgresql/15/bin")


def pg_tool(name: str, bin_dir: Path | None = None) -> str:
    """``bin_dir``, then ``PG_BIN``, then the PostgreSQL 15 install, then ``PATH``.

    pg_dump must be at least the server's major version; 15 matches CareSync's RDS engine.
    """
    for directory in (bin_dir, Path(os.environ["PG_BIN"]) if "PG_BIN" in os.environ else None,
                      SYSTEM_BIN):
        if directory is not None and (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: install the PostgreSQL 15 client "
                          "(Debian: apt-get install postgresql-client-15) or set PG_BIN")
    return found


def with_dbname(conninfo: str, dbname: str) -> str:
    """The same server and credentials, another database."""
    return make_conninfo(conninfo, dbname=dbname)


def dbname_of(conninfo: str) -> str:
    name = conninfo_to_dict(conninfo).get("dbname")
    if not name:
        raise BackupError("the database URL names no database (postgresql://user@host/DBNAME)")
    return str(name)
