"""Auto Scaling instances that pass target health only after ``delay_seconds`` (moto's gap).

moto reports every registered target ``healthy`` the moment an Auto Scaling group launches it.
Real instances boot, start the app and pass the load balancer's health checks first. While
armed, this layer reports a newly registered target ``initial``
(``Elb.RegistrationInProgress``) until ``delay_seconds`` after its registration. Targets
registered before :meth:`TargetWarmup.arm` (the warm capacity deployed with the stack) are
already in service. The patch is undone by :meth:`TargetWarmup.disarm`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup


@dataclass
class TargetWarmup:
    delay_seconds: float
    registered_at: dict[tuple[str, str], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _saved: dict[str, Any] = field(default_factory=dict)

    def arm(self) -> None:
        if self._saved:
            return
        warmup = self
        original_register = FakeTargetGroup.register
        original_health_for = FakeTargetGroup.health_for
        self._saved = {"register": original_register, "health_for": original_health_for}

        def register(group: FakeTargetGroup, targets: list[dict[str, Any]]) -> None:
            now = time.monotonic()
            with warmup.lock:
                for target in targets:
                    key = (group.arn, target["Id"])
                    if key not in warmup.registered_at and target["Id"] not in group.targets:
                        warmup.registered_at[key] = now
            original_register(group, targets)

        def health_for(group: FakeTargetGroup, target: dict[str, Any],
                       ec2_backend: Any) -> FakeHealthStatus:
            status = original_health_for(group, target, ec2_backend)
            with warmup.lock:
                since = warmup.registered_at.get((group.arn, target["Id"]))
            if status.status == "healthy" and since is not None \
                    and time.monotonic() - since < warmup.delay_seconds:
                return FakeHealthStatus(status.instance_id, status.port,
                                        status.health_check_port, "initial",
                                        "Elb.RegistrationInProgress",
                                        "Target registration is in progress")
            return status

        # setattr: a deliberate, reversible patch of moto's model (disarm restores it).
        setattr(FakeTargetGroup, "register", register)  # noqa: B010
        setattr(FakeTargetGroup, "health_for", health_for)  # noqa: B010

    def disarm(self) -> None:
        if self._saved:
            for name, original in self._saved.items():
                setattr(FakeTargetGroup, name, original)
            self._saved = {}
