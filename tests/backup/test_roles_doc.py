"""docs/database-roles.md shows the SQL that caresync_dr/db/roles.py runs, not a stale copy."""

from __future__ import annotations

import re
from pathlib import Path

from caresync_dr.db.roles import APP_ROLE, OPERATOR_ROLES, app_roles_sql, operator_roles_sql

DOC = Path(__file__).resolve().parents[2] / "docs" / "database-roles.md"


def test_the_documented_sql_is_the_modules() -> None:
    blocks = re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert blocks == [operator_roles_sql("caresync") + "\n",
                      app_roles_sql("caresync", "caresync_owner") + "\n"]


def test_every_role_is_in_the_table() -> None:
    text = DOC.read_text()
    for role in OPERATOR_ROLES:
        assert f"| `{role.name}` |" in text
    for name in (*APP_ROLE.logins, APP_ROLE.holder):
        assert f"| `{name}` |" in text
        assert all(group in text for group in role.member_of)
