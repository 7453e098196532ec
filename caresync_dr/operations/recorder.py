"""Every AWS API call of a run, classified as a read or a change: the dry-run proof.

:class:`ApiCallRecorder` hooks a boto3 or botocore session (``before-parameter-build``: once
per API call, above the retry loop, for every client the session makes). Each call is classified by
:func:`classify`: operations named ``Describe*``, ``Get*``, ``List*``, ``Head*`` and a short list
of others that change nothing (:data:`NON_MUTATING`) are reads; every other operation counts as
a change -- an operation this module does not know is a change until someone says otherwise.

In ``--check`` and ``--dry-run`` the engine installs it with ``block=True``: a change is refused
before it is sent (:class:`MutationBlockedError`), so a dry run cannot change AWS even through a
bug, and the report lists every call it made (``awsCalls``).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from caresync_dr.aws import event_hooks, session_hooks_lock
from caresync_dr.cli.errors import RefusedError

if TYPE_CHECKING:
    from caresync_dr.aws import AwsSession

READ_PREFIXES = ("Describe", "Get", "List", "Head")
# Operations that read, or compute without changing state, although their names do not say so.
NON_MUTATING = frozenset({
    "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncrypt", "kms:Verify", "kms:Sign",
    "sts:AssumeRole", "sts:DecodeAuthorizationMessage",
    "s3:SelectObjectContent",
    "rds:DownloadDBLogFilePortion",
    "ssm:DescribeParameters",
    "cloudwatch:GetMetricStatistics", "cloudwatch:GetMetricData",
    "logs:FilterLogEvents", "logs:StartQuery", "logs:StopQuery",
})

Kind = Literal["read", "change"]


def classify(service: str, operation: str) -> Kind:
    """``service`` as in IAM action names (``ssm``, ``rds``, ``autoscaling``)."""
    if operation.startswith(READ_PREFIXES) or f"{service}:{operation}" in NON_MUTATING:
        return "read"
    return "change"


class MutationBlockedError(RefusedError):
    """A read-only mode tried to change AWS; the call was not sent. Nothing was changed."""


@dataclass
class ApiCallRecorder:
    """The calls of one run: (service, operation, region, kind), in order."""

    block: bool = False
    calls: list[tuple[str, str, str, Kind]] = field(default_factory=list)
    _mutex: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _session: Any = field(default=None, repr=False)

    def install(self, session: AwsSession) -> ApiCallRecorder:
        # Not while another thread builds a client of this session (it copies these hooks).
        with session_hooks_lock():
            event_hooks(session).register_first("before-parameter-build", self._record,
                                                unique_id=f"operations-recorder-{id(self)}")
        self._session = session
        return self

    def uninstall(self) -> None:
        if self._session is not None:
            with session_hooks_lock():
                event_hooks(self._session).unregister(
                    "before-parameter-build", unique_id=f"operations-recorder-{id(self)}")
            self._session = None

    def _record(self, model: Any, context: dict[str, Any], **_: Any) -> None:
        service = str(model.service_model.service_name)
        operation = str(model.name)
        kind = classify(service, operation)
        with self._mutex:
            self.calls.append((service, operation, str(context.get("client_region", "")), kind))
        if kind == "change" and self.block:
            raise MutationBlockedError(
                f"a read-only run tried to call {service}:{operation}; the call was blocked "
                "before it was sent (a bug: please report it). Nothing was changed")

    @property
    def changes(self) -> list[str]:
        return [f"{s}:{o}" for s, o, _, k in self.calls if k == "change"]

    def as_report(self) -> dict[str, Any]:
        counts = Counter(f"{s}:{o}" for s, o, _, _ in self.calls)
        return {"reads": sum(1 for *_, k in self.calls if k == "read"),
                "changes": len(self.changes), "blocked": self.block,
                "operations": dict(sorted(counts.items()))}
