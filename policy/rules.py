"""The caresync-dr guardrails: every policy of the pack, importable without starting a server.

``policy/__main__.py`` hands :data:`POLICIES` to ``PolicyPack``; tests and
``scripts/preview.py`` call each policy's ``validate`` directly (see ``policy/local.py``).
"""

from __future__ import annotations

from pulumi_policy import Policy

from policy import (
    app_rules,
    backup_rules,
    detection_rules,
    network_rules,
    rds_rules,
    s3_rules,
    security_rules,
    stack_rules,
)

PACK_NAME = "caresync-dr-guardrails"

POLICIES: list[Policy] = [
    *s3_rules.POLICIES,
    *rds_rules.POLICIES,
    *network_rules.POLICIES,
    *backup_rules.POLICIES,
    *security_rules.POLICIES,
    *stack_rules.POLICIES,
    *detection_rules.POLICIES,
    *app_rules.POLICIES,
]

__all__ = ["PACK_NAME", "POLICIES"]
