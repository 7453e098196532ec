"""IAM policy rules: sizes, the policy grammar IAM validates, and role names.

IAM refuses (``LimitExceeded``, ``MalformedPolicyDocument``) what the mocks accept: the
operator roles' policies are generated from grants (caresync_dr/operator_permissions.py), so a
grant added tomorrow could push a role past its quota without anyone noticing offline.
IAM counts policy size in characters without whitespace (IAM User Guide, "IAM and AWS STS
quotas": "IAM doesn't count white space when calculating the size of a policy").
"""

from __future__ import annotations

import json
import re
from typing import Any

from caresync_dr.emulation.aws_rules.core import (
    ResourceLike,
    Rule,
    RunView,
    as_list,
    policy_statements,
)

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
# IAM and AWS STS quotas: the aggregate of a role's inline policies, and a role trust policy
# (default; adjustable to 4,096 through Service Quotas, which this account has not asked for).
ROLE_INLINE_POLICIES_MAX = 10_240
TRUST_POLICY_MAX = 2_048
_NAME = re.compile(r"[\w+=,.@-]+")
_SID = re.compile(r"[A-Za-z0-9]*")
_ACTION = re.compile(r"[a-z0-9-]+:[A-Za-z0-9*]+|\*")


def policy_size(document: Any) -> int:
    """IAM's size of a policy: its JSON's characters, whitespace not counted."""
    text = document if isinstance(document, str) else json.dumps(document)
    return len(re.sub(r"\s", "", text))


def inline_policies_of(role: ResourceLike, view: RunView) -> list[ResourceLike]:
    """The RolePolicy resources attached to ``role`` (their ``role`` input is its name)."""
    keys = {role.inputs.get("name"), role.outputs.get("name"), role.outputs.get("id"),
            role.resource_id} - {None, ""}
    return [p for p in view.of_type(ROLE_POLICY) if p.inputs.get("role") in keys]


def role_inline_policy_size(role: ResourceLike, view: RunView) -> list[str]:
    sizes = {str(p.inputs.get("name")): policy_size(p.inputs.get("policy", ""))
             for p in inline_policies_of(role, view)}
    total = sum(sizes.values())
    if total > ROLE_INLINE_POLICIES_MAX:
        parts = ", ".join(f"{name} {size}" for name, size in sorted(sizes.items()))
        return [f"its inline policies hold {total} characters without whitespace ({parts}); "
                f"IAM allows {ROLE_INLINE_POLICIES_MAX} per role"]
    return []


def trust_policy_size(role: ResourceLike, view: RunView) -> list[str]:
    size = policy_size(role.inputs.get("assumeRolePolicy", ""))
    if size > TRUST_POLICY_MAX:
        return [f"its trust policy holds {size} characters without whitespace; IAM allows "
                f"{TRUST_POLICY_MAX}"]
    return []


def role_name(role: ResourceLike, view: RunView) -> list[str]:
    name = str(role.inputs.get("name") or "")
    if name and (len(name) > 64 or not _NAME.fullmatch(name)):
        return [f"role name {name!r} is not 1-64 of letters, digits and +=,.@_-"]
    return []


def policy_grammar(resource: ResourceLike, view: RunView) -> list[str]:
    """What IAM validates in every policy before it stores it."""
    problems: list[str] = []
    name = str(resource.inputs.get("name") or "")
    if name and (len(name) > 128 or not _NAME.fullmatch(name)):
        problems.append(f"policy name {name!r} is not 1-128 of letters, digits and +=,.@_-")
    raw = resource.inputs.get("policy")
    document = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(document, dict) or document.get("Version") != "2012-10-17":
        return [*problems, "the policy is not a JSON object with Version 2012-10-17"]
    sids: list[str] = []
    for statement in policy_statements(document):
        sid = str(statement.get("Sid", ""))
        sids.append(sid)
        if not _SID.fullmatch(sid):
            problems.append(f"Sid {sid!r} holds characters other than A-Z, a-z, 0-9")
        if statement.get("Effect") not in ("Allow", "Deny"):
            problems.append(f"statement {sid or '?'}: Effect must be Allow or Deny")
        acts = as_list(statement.get("Action"))
        if not acts or not all(_ACTION.fullmatch(str(a)) for a in acts):
            problems.append(f"statement {sid or '?'}: every Action must be service:Name")
        if not as_list(statement.get("Resource")):
            problems.append(f"statement {sid or '?'}: no Resource")
    repeated = sorted({s for s in sids if s and sids.count(s) > 1})
    if repeated:
        problems.append(f"Sid repeated within the policy: {', '.join(repeated)}")
    return problems


IAM_DOC = "https://docs.aws.amazon.com/IAM/latest/UserGuide/"
RULES = [
    Rule("iam-role-inline-policy-size", "A role's inline policies hold at most 10,240 "
         "characters together (whitespace not counted)",
         IAM_DOC + "reference_iam-quotas.html (Role policy size); PutRolePolicy "
         "LimitExceeded", (ROLE,), role_inline_policy_size),
    Rule("iam-trust-policy-size", "A role trust policy holds at most 2,048 characters "
         "(default quota)", IAM_DOC + "reference_iam-quotas.html (Role trust policy length)",
         (ROLE,), trust_policy_size),
    Rule("iam-role-name", "Role names are 1-64 of letters, digits and +=,.@_-",
         "pulumi-aws aws.iam.Role docstring, name; " + IAM_DOC + "reference_identifiers.html",
         (ROLE,), role_name),
    Rule("iam-policy-grammar", "Inline policies: Version 2012-10-17, alphanumeric Sids unique "
         "within the policy, Allow/Deny, service:Action, a Resource",
         IAM_DOC + "reference_policies_elements_sid.html, reference_policies_elements_"
         "version.html; PutRolePolicy MalformedPolicyDocument", (ROLE_POLICY,),
         policy_grammar),
]
