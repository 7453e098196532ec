"""The CrossGuard entry point: `pulumi preview --policy-pack policy`. The rules live in rules.py."""

import sys
from pathlib import Path

# The pack runs from policy/; the rules import the project's own modules (settings, objectives).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pulumi_policy import EnforcementLevel, PolicyPack

from policy.rules import PACK_NAME, POLICIES

PolicyPack(name=PACK_NAME, policies=POLICIES, enforcement_level=EnforcementLevel.MANDATORY)
