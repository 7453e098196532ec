"""Run the real Pulumi program offline: mocks that behave like AWS, several runs per process.

``run_program("dr")`` loads ``Pulumi.dr.yaml`` (plus overrides), installs mocks that fill in
provider-computed fields by resource type (:mod:`caresync_dr.offline.fakes`), answers the data
sources the program invokes, runs ``__main__.py`` and returns every registered resource and the
stack's resolved outputs. The mocks accept anything AWS would refuse, so every run is then
checked against the AWS rules oracle (:mod:`caresync_dr.emulation.aws_rules`): a violation
raises ``AwsRulesError`` naming the rule, the resource's URN and the rule's source.

Pulumi keeps its runtime state (settings, config, root stack) in context variables and a few
module-level objects. Each run therefore happens in a fresh :func:`contextvars.copy_context`
with its own event loop and its own mock monitor, so runs of different stacks and configs in one
process do not see each other. Nothing is written to disk and no network is used.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import runpy
import sys
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pulumi
import pulumi.runtime
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc
from pulumi.runtime.settings import ROOT
from pulumi.runtime.stack import run_in_stack
from pulumi.runtime.sync_await import _ensure_event_loop

from caresync_dr.offline.fakes import ACCOUNT_ID, fake_call, fake_state
from caresync_dr.settings import NAMESPACE, read_stack_file

PROJECT = "caresync-dr"
REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_REFERENCE = "pulumi:pulumi:StackReference"


@dataclass(frozen=True)
class RegisteredResource:
    """One resource as the mocks saw it."""

    type: str  # e.g. "aws:rds/instance:Instance"; component types too (custom=False)
    name: str  # logical name
    custom: bool
    inputs: dict[str, Any]  # as the mocks receive them (camelCase, numbers as floats)
    outputs: dict[str, Any]  # the state returned by the mock/handler
    resource_id: str
    urn: str = ""  # the resource's URN (parent types included), for failure messages
    protect: bool = False  # ResourceOptions(protect=True): pulumi refuses to delete it
    # Input property -> URNs of the resources its value came from (the engine's
    # propertyDependencies), and every resource this one depends on (explicit depends_on
    # included): the references a Terraform plan export draws between resources.
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    dependencies: tuple[str, ...] = ()
    # The other resource options the engine acts on in an update (the lifecycle model reads
    # them): properties whose old value the engine keeps, deletion that leaves the cloud
    # resource alone, and replacement order.
    ignore_changes: tuple[str, ...] = ()
    retain_on_delete: bool = False
    delete_before_replace: bool = False
    secret_inputs: tuple[str, ...] = ()  # top-level inputs the engine holds as secrets


class ResourceHandler(Protocol):
    """Optional hook (the drill) to create resources in an emulator instead of faking them.

    ``new_resource`` receives the inputs with secrets unwrapped (``aws.ssm.Parameter.value`` is
    a secret in pulumi-aws). Whatever state it returns is what the program sees as outputs, so
    it should include the inputs plus the computed fields (``arn`` etc.); see ``fakes.py``.
    """

    def new_resource(self, args: pulumi.runtime.MockResourceArgs
                     ) -> tuple[str, dict[str, Any]] | None:
        """(id, state) for the resource, or None for the default fake."""

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any] | None:
        """The invoke's result, or None for the default answer."""


@dataclass(frozen=True)
class ProgramRun:
    stack: str
    resources: list[RegisteredResource]
    outputs: dict[str, Any]  # the stack's exported outputs, resolved


class OfflineRunError(RuntimeError):
    """The program could not be run under the mocks (not a settings problem)."""


def load_config(stack: str, project_dir: Path,
                overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """``Pulumi.<stack>.yaml`` as the fully qualified string config the Pulumi runtime holds.

    Overrides take keys with or without the ``caresync-dr:`` prefix; ``None``-like removal is
    done by passing an empty string (the settings loader treats it as not set).
    """
    values, aws_region = read_stack_file(stack, project_dir)
    config: dict[str, str] = {}
    for key, value in values.items():
        config[f"{NAMESPACE}:{key}"] = _config_string(value)
    if aws_region is not None:
        config["aws:region"] = aws_region
    for key, value in (overrides or {}).items():
        full = key if ":" in key else f"{NAMESPACE}:{key}"
        config[full] = value
    return {k: v for k, v in config.items() if v != ""}


def _config_string(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value)


def _is_secret(value: Any) -> bool:
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return True
        return any(_is_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_is_secret(v) for v in value)
    return False


def unwrap_secrets(value: Any) -> Any:
    """Plain values for secret-wrapped inputs (e.g. ``aws.ssm.Parameter.value`` is a secret)."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return unwrap_secrets(value.get("value"))
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


_CURRENT = threading.local()  # the registration in progress on this monitor thread


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self, region: str, stack_references: Mapping[str, Mapping[str, Any]],
                 handler: ResourceHandler | None) -> None:
        self.region = region
        self.stack_references = stack_references
        self.handler = handler
        self.resources: list[RegisteredResource] = []
        self._lock = threading.Lock()

    def _reference(self, name: str) -> Mapping[str, Any]:
        if name in self.stack_references:
            return self.stack_references[name]
        short = name.rsplit("/", 1)[-1]
        return self.stack_references.get(short, {})

    def new_resource(self, args: pulumi.runtime.MockResourceArgs
                     ) -> tuple[str | None, dict[Any, Any]]:
        secret_inputs = tuple(sorted(k for k, v in dict(args.inputs).items() if _is_secret(v)))
        inputs: dict[str, Any] = unwrap_secrets(dict(args.inputs))
        if args.typ == STACK_REFERENCE:
            target = str(inputs.get("name") or args.resource_id or args.name)
            state: dict[str, Any] = {"name": target,
                                     "outputs": dict(self._reference(target)),
                                     "secretOutputNames": []}
            ident = target
        else:
            # The handler sees plain inputs too (secret-wrapped values unwrapped).
            plain = pulumi.runtime.MockResourceArgs(
                typ=args.typ, name=args.name, inputs=inputs, provider=args.provider,
                resource_id=args.resource_id, custom=args.custom)
            found = self.handler.new_resource(plain) if self.handler is not None else None
            if found is None:
                region = str(inputs.get("region") or self.region)
                ident, state = fake_state(args.typ, args.name, inputs, region, ACCOUNT_ID)
            else:
                ident, state = found
        with self._lock:
            self.resources.append(RegisteredResource(
                type=args.typ, name=args.name, custom=bool(args.custom), inputs=inputs,
                outputs=state, resource_id=ident, urn=getattr(_CURRENT, "urn", ""),
                protect=getattr(_CURRENT, "protect", False),
                property_dependencies=getattr(_CURRENT, "property_dependencies", {}),
                dependencies=getattr(_CURRENT, "dependencies", ()),
                ignore_changes=getattr(_CURRENT, "ignore_changes", ()),
                retain_on_delete=getattr(_CURRENT, "retain_on_delete", False),
                delete_before_replace=getattr(_CURRENT, "delete_before_replace", False),
                secret_inputs=secret_inputs))
        return ident, state

    def call(self, args: pulumi.runtime.MockCallArgs
             ) -> tuple[dict[Any, Any], list[tuple[str, str]]]:
        answer = self.handler.call(args) if self.handler is not None else None
        if answer is None:
            answer = fake_call(args.token, dict(args.args), self.region, ACCOUNT_ID)
        if answer is None:
            raise OfflineRunError(f"the offline mocks do not answer the invoke {args.token}; "
                                  "add it to caresync_dr/offline/fakes.py:fake_call")
        return answer, []


class _Monitor(pulumi_mocks.MockMonitor):
    """The mock monitor, plus the stack's registered outputs (the exports)."""

    def __init__(self, mocks: _Mocks) -> None:
        super().__init__(mocks)
        self.stack_outputs: dict[str, Any] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        _CURRENT.urn = self.make_urn(request.parent, request.type, request.name)
        # The engine's view of the resource options.
        _CURRENT.protect = bool(request.protect)
        _CURRENT.ignore_changes = tuple(request.ignoreChanges)
        _CURRENT.retain_on_delete = bool(request.retainOnDelete)
        _CURRENT.delete_before_replace = bool(request.deleteBeforeReplace)
        _CURRENT.property_dependencies = {
            key: tuple(value.urns) for key, value in request.propertyDependencies.items()
            if value.urns}
        _CURRENT.dependencies = tuple(request.dependencies)
        return super().RegisterResource(request)  # type: ignore[no-untyped-call]

    def ReadResource(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        _CURRENT.urn = self.make_urn(request.parent, request.type, request.name)
        _CURRENT.protect = False
        _CURRENT.ignore_changes = ()
        _CURRENT.retain_on_delete = False
        _CURRENT.delete_before_replace = False
        _CURRENT.property_dependencies = {}
        _CURRENT.dependencies = ()
        return super().ReadResource(request)  # type: ignore[no-untyped-call]

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
        if request.urn.split("::")[2] == "pulumi:pulumi:Stack":
            _ensure_event_loop()  # type: ignore[no-untyped-call]
            self.stack_outputs = dict(rpc.deserialize_properties(request.outputs))
        return super().RegisterResourceOutputs(request)  # type: ignore[no-untyped-call]


def run_program(stack: str, *, project_dir: Path = REPO_ROOT,
                config_overrides: Mapping[str, str] | None = None,
                stack_references: Mapping[str, Mapping[str, Any]] | None = None,
                handler: ResourceHandler | None = None, preview: bool = False,
                aws_rules: bool = True) -> ProgramRun:
    """Run ``__main__.py`` for ``stack`` under the mocks and return what it registered.

    ``preview=True`` runs it as ``pulumi preview`` does (``pulumi.runtime.is_dry_run()``).
    ``aws_rules=False`` skips the AWS rules oracle (only for tests of the oracle itself, which
    need a deliberately wrong run to check).

    ``stack_references`` maps a referenced stack's name (``organization/caresync-dr/prod`` or
    just ``prod``) to its outputs; an unmentioned stack has no outputs (not deployed yet). An
    invalid setting raises :class:`caresync_dr.settings.SettingsError` with its message.
    """
    config = load_config(stack, project_dir, config_overrides)
    region = config.get("aws:region", "us-east-1")
    mocks = _Mocks(region, stack_references or {}, handler)
    monitor = _Monitor(mocks)
    main = project_dir / "__main__.py"

    def program() -> None:
        if str(project_dir) not in sys.path:
            sys.path.insert(0, str(project_dir))
        runpy.run_path(str(main), run_name="__main__")

    def run() -> None:
        ROOT.set(None)
        pulumi.runtime.set_all_config(config)
        settings = pulumi_mocks.MockSettings(  # type: ignore[no-untyped-call]
            monitor=monitor, monitor_features=set(), engine=pulumi_mocks.MockEngine(None),
            project=PROJECT, stack=stack, dry_run=preview, organization="organization",
            root_directory=str(project_dir), callbacks=None)
        pulumi.runtime.settings.configure(settings)
        loop = asyncio.new_event_loop()
        try:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(run_in_stack(program))
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    contextvars.copy_context().run(run)
    result = ProgramRun(stack=stack, resources=list(mocks.resources),
                        outputs=dict(monitor.stack_outputs))
    if aws_rules:
        # Imported here: the oracle is dev-only code that production modules never load.
        from caresync_dr.emulation import aws_rules as oracle

        settings = {key.partition(":")[2]: value for key, value in config.items()
                    if key.startswith(f"{NAMESPACE}:")}
        oracle.enforce(stack, region, result.resources, config=settings,
                       outputs=result.outputs)
    return result


# --- finding resources ------------------------------------------------------------------------

def of_type(resources: Iterable[RegisteredResource], type_: str) -> list[RegisteredResource]:
    """All resources of one type token, e.g. ``aws:s3/bucket:Bucket``."""
    return [r for r in resources if r.type == type_]


def named(resources: Iterable[RegisteredResource], name: str) -> RegisteredResource:
    """The one resource with this logical name (raises LookupError naming what exists)."""
    found = [r for r in resources if r.name == name]
    if len(found) != 1:
        names = sorted(r.name for r in resources)
        raise LookupError(f"expected one resource named {name!r}, found {len(found)}; "
                          f"registered: {', '.join(names)}")
    return found[0]


def by_id(resources: Iterable[RegisteredResource], resource_id: str) -> RegisteredResource:
    """The resource whose id is ``resource_id`` (inputs often refer to others by id)."""
    for r in resources:
        if r.resource_id == resource_id:
            return r
    raise LookupError(f"no registered resource has id {resource_id!r}")
