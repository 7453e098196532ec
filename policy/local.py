"""Run the guardrails without the Pulumi engine: on resources registered under mocks.

The engine hands a resource policy the resource's inputs and a stack policy every resource's
outputs, wrapped in a proxy that raises on unknown values; this module builds the same argument
objects (the real ``pulumi_policy`` classes) so tests and ``scripts/preview.py`` call each
policy's ``validate`` exactly as ``pulumi preview --policy-pack policy`` would.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pulumi_policy import (
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.policy import _NotApplicableError as NotApplicableError
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from caresync_dr.preview import snapshot
from caresync_dr.settings import Settings
from policy.context import GIVEN_SETTINGS

PROJECT = "caresync-dr"


class ResourceLike(snapshot.ResourceLike, Protocol):
    """What ``caresync_dr.offline.runtime.RegisteredResource`` provides."""

    @property
    def outputs(self) -> Mapping[str, Any]: ...
    @property
    def resource_id(self) -> str: ...


@dataclass(frozen=True)
class Resource:
    """A resource described by hand (tests) with the same shape as a registered one."""

    type: str
    name: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any] = field(default_factory=dict)
    resource_id: str = ""
    custom: bool = True
    ignore_changes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Violation:
    policy: str
    message: str
    resource: str | None = None
    advisory: bool = False    # a check that could not run (an unknown value), not a failure

    def __str__(self) -> str:
        where = f" [{self.resource}]" if self.resource else ""
        kind = "advisory" if self.advisory else "mandatory"
        return f"{self.policy} ({kind}){where}: {self.message}"


def urn(stack: str, resource_type: str, name: str) -> str:
    return f"urn:pulumi:{stack}::{PROJECT}::{resource_type}::{name}"


def _options(resource: object = None) -> PolicyResourceOptions:
    """The resource options the engine hands a policy: those the mocks recorded (protect,
    ignore_changes, delete_before_replace), defaults for a resource described by hand."""
    return PolicyResourceOptions(
        protect=bool(getattr(resource, "protect", False)),
        ignore_changes=list(getattr(resource, "ignore_changes", ())),
        delete_before_replace=getattr(resource, "delete_before_replace", None) or None,
        aliases=[], custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[])


def urn_of(stack: str, resource: ResourceLike) -> str:
    """The resource's own URN when the runtime recorded one, else one built from its name."""
    recorded = getattr(resource, "urn", "")
    return str(recorded) if recorded else urn(stack, resource.type, resource.name)


def resource_args(stack: str, resource: ResourceLike) -> ResourceValidationArgs:
    props = unknown_checking_proxy(copy.deepcopy(dict(resource.inputs)))
    return ResourceValidationArgs(resource.type, props, urn_of(stack, resource), resource.name,
                                  _options(resource), None)


def _stack_props(resource: ResourceLike) -> dict[str, Any]:
    props = copy.deepcopy(dict(resource.inputs))
    props.update(copy.deepcopy(dict(resource.outputs)))
    if resource.resource_id:
        props.setdefault("id", resource.resource_id)   # bridged providers report it as well
    return props


def stack_args(stack: str, resources: Iterable[ResourceLike]) -> StackValidationArgs:
    policy_resources = [
        PolicyResource(r.type, unknown_checking_proxy(_stack_props(r)), urn_of(stack, r), r.name,
                       _options(), None, None, [], {})
        for r in resources]
    return StackValidationArgs(policy_resources)


def checked(resources: Iterable[ResourceLike]) -> list[ResourceLike]:
    """What the engine analyzes: custom resources, not providers or stack references."""
    return [r for r in resources if r.custom and not r.type.startswith("pulumi:")]


def evaluate(stack: str, resources: Iterable[ResourceLike],
             policies: Sequence[Policy] | None = None,
             settings: Settings | None = None) -> list[Violation]:
    """Every violation the policies report for these resources.

    ``settings`` replaces the stack file's settings (a run made with config overrides);
    by default the rules read ``Pulumi.<stack>.yaml`` as the pack does under the engine.
    """
    if policies is None:
        from policy.rules import POLICIES
        policies = POLICIES
    token = GIVEN_SETTINGS.set(settings)
    try:
        return _evaluate(stack, checked(resources), policies)
    finally:
        GIVEN_SETTINGS.reset(token)


def _evaluate(stack: str, targets: list[ResourceLike],
              policies: Sequence[Policy]) -> list[Violation]:
    found: list[Violation] = []
    for policy in policies:
        def report(message: str, resource_urn: str | None = None,
                   name: str | None = None, policy: Policy = policy) -> None:
            where = name or (resource_urn.rsplit("::", 1)[-1] if resource_urn else None)
            found.append(Violation(policy.name, message, where))

        try:
            if isinstance(policy, ResourceValidationPolicy):
                for resource in targets:
                    def on_resource(message: str, resource_urn: str | None = None,
                                    name: str = resource.name) -> None:
                        report(message, resource_urn, name)

                    try:
                        policy.validate(resource_args(stack, resource), on_resource)
                    except UnknownValueError as exc:
                        found.append(Violation(policy.name, exc.message, resource.name, True))
            elif isinstance(policy, StackValidationPolicy):
                policy.validate(stack_args(stack, targets), report)
        except UnknownValueError as exc:
            found.append(Violation(policy.name, exc.message, None, True))
        except NotApplicableError:
            continue    # e.g. a stack with no resources
    return found
