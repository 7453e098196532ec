"""Every AWS call an operator command makes in any test, as the IAM action it needs.

:func:`record_command_calls` wraps botocore's ``BaseClient._make_api_call`` (one call per API
operation, above the retry loop) and keeps a call when

- the code that made it is the project's runtime code: the first frame outside botocore, boto3,
  s3transfer and the thread machinery is under ``caresync_dr/`` but not ``caresync_dr/emulation/``
  (moto shims) or ``caresync_dr/drill/`` (a drill's stand-in for ``pulumi up``, its scene
  set-up), or there is no such frame (an s3transfer worker of an upload or download). A test's
  own set-up and verification calls are not the command's; and
- an operator command is running: :func:`caresync_dr.cli.run_command` is on the calling
  thread's stack, or on the stack of the thread that started it (its worker, prewarm, lock
  heartbeat and notification threads, and theirs: recorded as each thread starts). Its
  ``Invocation.command`` names the command, whose role
  (:data:`caresync_dr.operator_permissions.ROLES`) must grant the call.

Only a thread's own frames are read. Reading other threads' frames (``sys._current_frames()``,
as this module did before) can deadlock CPython 3.11 for good: the call holds the runtime's
HEAD_LOCK while it makes frame objects, an allocation there may run the garbage collector, and
an object it frees that needs the same lock (a thread-local, a thread state) waits forever,
holding the GIL (python/cpython#106883, #116969; not fixed in 3.11, 3.12 collects only at the
eval breaker). No signal handler runs then, so pytest-timeout never fired: the official CI's
suite hung twice this way, in a different test each time. Reading a running thread's
``f_back`` could also read a frame being freed (seen here once: "'bool' object has no
attribute 'f_code'").

The root ``tests/conftest.py`` installs it around every test and fails the test when a call is
not granted: every existing test of a command is also a test of its role. Calls made in a
subprocess (the drill runs some commands that way) are not seen here; the same commands' own
tests run them in-process. Only actions are checked, not the resources IAM would match; a
permission AWS checks on the caller besides the call's own action is recorded too where a
request names it (:func:`implied_actions`: a launch template's ec2:RunInstances and
iam:PassRole).
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import botocore.client

cli_main = importlib.import_module("caresync_dr.cli.main")
ROOT = Path(__file__).resolve().parents[1]
RUNTIME = str(ROOT / "caresync_dr") + "/"
# The moto shims, and the drill's own calls: they stand in for `pulumi up` (run with the
# deployer's credentials, not an operator role) or set the scene of a scenario.
NOT_RUNTIME = tuple(str(ROOT / "caresync_dr" / part) + "/" for part in ("emulation", "drill"))
# Frames that only carry a call: the AWS SDK, and the worker threads s3transfer starts for a
# download or upload (their stack holds no frame of the code that asked for it).
LIBRARIES = (*(f"/{name}/" for name in ("botocore", "boto3", "s3transfer")),
             "/concurrent/futures/", "/threading.py")

# botocore service id (hyphenised) -> IAM service prefix (Service Authorization Reference).
IAM_PREFIX = {
    "auto-scaling": "autoscaling", "elastic-load-balancing-v2": "elasticloadbalancing",
    "elastic-load-balancing": "elasticloadbalancing", "cloudwatch": "cloudwatch",
    "cloudwatch-logs": "logs", "route-53": "route53", "secrets-manager": "secretsmanager",
    "cloudtrail": "cloudtrail", "ec2": "ec2", "s3": "s3", "ssm": "ssm", "sns": "sns",
    "rds": "rds", "kms": "kms", "iam": "iam", "sts": "sts", "backup": "backup",
}
# API operations authorized as another IAM action (Amazon S3 User Guide, "Required permissions
# for Amazon S3 API operations").
IAM_ACTION = {
    "s3:HeadObject": "s3:GetObject", "s3:HeadBucket": "s3:ListBucket",
    "s3:ListObjectsV2": "s3:ListBucket", "s3:ListObjects": "s3:ListBucket",
    "s3:ListObjectVersions": "s3:ListBucketVersions", "s3:DeleteObjects": "s3:DeleteObject",
    "s3:CreateMultipartUpload": "s3:PutObject", "s3:UploadPart": "s3:PutObject",
    "s3:CompleteMultipartUpload": "s3:PutObject", "s3:ListParts":
    "s3:ListMultipartUploadParts",
}
# Need no permission: IAM User Guide, "GetCallerIdentity" (works even when explicitly denied).
FREE = frozenset({"sts:GetCallerIdentity"})
# Permissions a service checks on the caller for a call that names a launch template: "An IAM
# user or role that creates or updates an Auto Scaling group using a launch template must have
# permission to use the ec2:RunInstances action" (EC2 Auto Scaling User Guide, "Control Amazon
# EC2 launch template usage in Auto Scaling groups"), and iam:PassRole for the instance profile
# the template names (every site's template does: components/app_tier.py). An instance
# refresh's DesiredConfiguration updates the group's template the same way.
LAUNCH_TEMPLATE_CHECKS = ("ec2:RunInstances", "iam:PassRole")


def _names_a_launch_template(params: Any) -> bool:
    if not isinstance(params, dict):
        return False
    configuration = params.get("DesiredConfiguration") or {}
    return any(isinstance(p, dict) and (p.get("LaunchTemplate") or p.get("MixedInstancesPolicy"))
               for p in (params, configuration))


def implied_actions(action: str, params: Any) -> tuple[str, ...]:
    """IAM actions AWS authorizes on the caller besides ``action`` itself, for this request."""
    if action in ("autoscaling:StartInstanceRefresh", "autoscaling:UpdateAutoScalingGroup",
                  "autoscaling:CreateAutoScalingGroup") and _names_a_launch_template(params):
        return LAUNCH_TEMPLATE_CHECKS
    return ()


def iam_action(service_id: str, operation: str) -> str:
    prefix = IAM_PREFIX.get(service_id)
    if prefix is None:
        raise AssertionError(f"no IAM prefix known for botocore service {service_id!r} "
                             f"({operation}): add it to tests/iam_calls.py")
    name = f"{prefix}:{operation}"
    return IAM_ACTION.get(name, name)


@dataclass(frozen=True)
class CommandCall:
    command: str
    action: str
    region: str
    caller: str        # file:line of the runtime code that made the call


@dataclass
class CallLog:
    calls: list[CommandCall] = field(default_factory=list)

    def actions(self, command: str) -> set[str]:
        return {c.action for c in self.calls if c.command == command} - FREE


def _caller(frame: FrameType | None) -> FrameType | None:
    while frame is not None and any(lib in frame.f_code.co_filename for lib in LIBRARIES):
        frame = frame.f_back
    return frame


def _command_on(frame: FrameType | None) -> str | None:
    code = cli_main.run_command.__code__
    while frame is not None:
        if frame.f_code is code:
            invocation = frame.f_locals.get("invocation")
            return str(invocation.command) if invocation is not None else None
        frame = frame.f_back
    return None


# The attribute of a thread started while a command ran (on the starting thread's stack, or
# inherited by it): the command its calls belong to.
THREAD_COMMAND = "_caresync_iam_command"


def _running_command(frame: FrameType | None) -> str | None:
    """The command on this thread's stack, else the one of the thread that started it."""
    command = _command_on(frame)
    if command is not None:
        return command
    inherited = getattr(threading.current_thread(), THREAD_COMMAND, None)
    return inherited if isinstance(inherited, str) else None


@contextmanager
def _threads_carry_their_command() -> Iterator[None]:
    """While it lasts, a thread started by a command's thread (or by one of its threads)
    carries that command's name: read from the starting thread's own stack, never another's."""
    original = threading.Thread.start

    def start(thread: threading.Thread) -> None:
        command = _running_command(sys._getframe(1))
        if command is not None:
            setattr(thread, THREAD_COMMAND, command)
        original(thread)

    setattr(threading.Thread, "start", start)  # noqa: B010 (a method, typed)
    try:
        yield
    finally:
        setattr(threading.Thread, "start", original)  # noqa: B010


@contextmanager
def record_command_calls() -> Iterator[CallLog]:
    log = CallLog()
    original = getattr(botocore.client.BaseClient, "_make_api_call")  # noqa: B009 (untyped)

    def recorded(client: Any, operation_name: str, api_params: Any) -> Any:
        frame = sys._getframe(1)
        caller = _caller(frame)
        # No frame but the SDK's and a thread's: a transfer worker of whatever runs now.
        filename = caller.f_code.co_filename if caller is not None else RUNTIME + "<worker>"
        if filename.startswith(RUNTIME) and not filename.startswith(NOT_RUNTIME):
            command = _running_command(frame)
            if command is not None:
                meta = client.meta
                action = iam_action(meta.service_model.service_id.hyphenize(), operation_name)
                where = f"{filename[len(str(ROOT)) + 1:]}:{caller.f_lineno if caller else 0}"
                for needed in (action, *implied_actions(action, api_params)):
                    log.calls.append(CommandCall(command, needed, str(meta.region_name),
                                                 where))
        return original(client, operation_name, api_params)

    setattr(botocore.client.BaseClient, "_make_api_call", recorded)  # noqa: B010
    try:
        with _threads_carry_their_command():
            yield log
    finally:
        setattr(botocore.client.BaseClient, "_make_api_call", original)  # noqa: B010
