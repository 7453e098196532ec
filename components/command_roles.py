"""The operator roles besides failover's (dr stack): one IAM role per kind of on-call work.

Which role runs which command, and why they are separate, is
:data:`caresync_dr.operator_permissions.ROLES`; each role's inline policies are rendered from
its grants by :func:`components.operator_role.policy_document`, each grant narrowed to the
resources ``args.resources`` names for its sid. Every role is assumable only by operators of
this account with MFA, for at most 4 hours (a breach response or a PITR outlasts the default
hour; IAM allows 1-12 h).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from caresync_dr.operator_permissions import OperatorRoleSpec, Policy
from components.operator_role import (
    SESSION_SECONDS,
    GrantScope,
    mfa_trust_policy,
    policy_document,
)

__all__ = ["SESSION_SECONDS", "CommandRole", "CommandRoleArgs"]


@dataclass(frozen=True)
class CommandRoleArgs:
    spec: OperatorRoleSpec
    account_id: pulumi.Input[str]
    values: dict[str, pulumi.Input[Any]]
    # resolved values -> grant sid -> ARNs, for every grant and deny of the spec's policies
    resources: Callable[[dict[str, Any]], Mapping[str, GrantScope]]


def _renderer(policy: Policy, args: CommandRoleArgs) -> Callable[[dict[str, Any]], str]:
    return lambda values: policy_document(policy, args.resources(values))


class CommandRole(pulumi.ComponentResource):
    role: aws.iam.Role
    documents: dict[str, pulumi.Output[str]]   # policy name -> its JSON

    def __init__(self, name: str, args: CommandRoleArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("caresync:dr:CommandRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.role = aws.iam.Role(
            f"{name}-role", name=args.spec.name,
            assume_role_policy=pulumi.Output.from_input(args.account_id).apply(
                mfa_trust_policy),
            max_session_duration=SESSION_SECONDS, description=args.spec.purpose, opts=child)
        self.documents = {}
        for policy in args.spec.policies:
            document = pulumi.Output.all(**args.values).apply(_renderer(policy, args))
            aws.iam.RolePolicy(f"{name}-{policy.name}-policy", name=policy.name,
                               role=self.role.id, policy=document, opts=child)
            self.documents[policy.name] = document
        self.register_outputs({"roleArn": self.role.arn})
