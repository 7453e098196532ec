"""Auto Scaling as real Auto Scaling behaves where moto differs: refreshes and warm-up.

- **Instance refreshes.** moto 5.2 implements neither ``StartInstanceRefresh`` nor
  ``DescribeInstanceRefreshes``. While armed, :class:`InstanceRefreshes` answers both (moto's
  Auto Scaling responses gain the two actions): a refresh is ``InProgress`` for
  ``delay_seconds`` (instances replaced and warmed up), then ``Successful`` and
  ``on_complete(region, group)`` runs -- in the drill that reboots the site app, which
  re-reads its database endpoint as new instances do at boot. With ``delay_seconds`` None a
  refresh stays ``InProgress``. A second start while one is active is refused with
  ``InstanceRefreshInProgress``, as Auto Scaling does (API reference, StartInstanceRefresh).
- **Target warm-up.** moto reports every registered target ``healthy`` the moment a group
  launches it; real instances boot, start the app and pass the load balancer's health checks
  first. While armed, :class:`TargetWarmup` reports a newly registered target ``initial``
  (``Elb.RegistrationInProgress``) until ``delay_seconds`` after its registration; targets
  registered before :meth:`TargetWarmup.arm` (the warm capacity) are already in service.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.autoscaling.exceptions import AutoscalingClientError
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult
from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup

from caresync_dr.emulation.patching import ClassPatches, remember

log = logging.getLogger(__name__)
remember(AutoScalingResponse, "start_instance_refresh", "describe_instance_refreshes")
remember(FakeTargetGroup, "register", "health_for")


class InstanceRefreshInProgressError(AutoscalingClientError):
    code = "InstanceRefreshInProgress"


@dataclass
class Refresh:
    refresh_id: str
    account_id: str
    region: str
    group: str
    started: datetime
    ended: datetime | None = None

    def api(self) -> dict[str, Any]:
        """The refresh as ``DescribeInstanceRefreshes`` shows it."""
        answer: dict[str, Any] = {
            "InstanceRefreshId": self.refresh_id, "AutoScalingGroupName": self.group,
            "Status": "Successful" if self.ended else "InProgress", "StartTime": self.started,
            "PercentageComplete": 100 if self.ended else 0}
        if self.ended:
            answer["EndTime"] = self.ended
        return answer


@dataclass
class InstanceRefreshes:
    """Auto Scaling instance refreshes (see the module docstring)."""

    delay_seconds: float | None = None
    on_start: Callable[[Refresh], None] = lambda refresh: None
    on_complete: Callable[[str, str], None] = lambda region, group: None
    refreshes: list[Refresh] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _patches: ClassPatches = field(default_factory=ClassPatches)

    def start(self, account_id: str, region: str, group: str) -> Refresh:
        with self.lock:
            if any(r.ended is None and (r.account_id, r.region, r.group) ==
                   (account_id, region, group) for r in self.refreshes):
                raise InstanceRefreshInProgressError(
                    f"An Instance Refresh is already in progress and blocks the execution of "
                    f"this Instance Refresh for group {group}.")
            refresh = Refresh(refresh_id=str(uuid.uuid4()), account_id=account_id,
                              region=region, group=group, started=datetime.now(UTC))
            self.refreshes.append(refresh)
        self.on_start(refresh)
        if self.delay_seconds is not None:
            log.info("emulator: instance refresh of %s (%s) started, takes %.1f s", group,
                     region, self.delay_seconds)
            thread = threading.Timer(self.delay_seconds, self._finish, args=(refresh,))
            thread.daemon = True
            thread.name = f"refresh-{group}"
            thread.start()
        return refresh

    def _finish(self, refresh: Refresh) -> None:
        self.on_complete(refresh.region, refresh.group)
        refresh.ended = datetime.now(UTC)
        log.info("emulator: instance refresh of %s finished", refresh.group)

    def describe(self, account_id: str, region: str, group: str) -> list[dict[str, Any]]:
        """Newest first, like Auto Scaling."""
        with self.lock:
            mine = [r for r in self.refreshes
                    if (r.account_id, r.region, r.group) == (account_id, region, group)]
        return [r.api() for r in reversed(mine)]

    def arm(self) -> InstanceRefreshes:
        if self._patches.active:
            return self
        refreshes = self

        def start_instance_refresh(response: AutoScalingResponse) -> ActionResult:
            refresh = refreshes.start(response.current_account, response.region,
                                      response._get_param("AutoScalingGroupName"))
            return ActionResult({"InstanceRefreshId": refresh.refresh_id})

        def describe_instance_refreshes(response: AutoScalingResponse) -> ActionResult:
            return ActionResult({"InstanceRefreshes": refreshes.describe(
                response.current_account, response.region,
                response._get_param("AutoScalingGroupName"))})

        self._patches.set(AutoScalingResponse, "start_instance_refresh", start_instance_refresh)
        self._patches.set(AutoScalingResponse, "describe_instance_refreshes",
                          describe_instance_refreshes)
        return self

    def disarm(self) -> None:
        self._patches.restore()

    def __enter__(self) -> InstanceRefreshes:
        return self.arm()

    def __exit__(self, *exc: object) -> None:
        self.disarm()


@dataclass
class TargetWarmup:
    """New targets pass target health only ``delay_seconds`` after registration (see above).

    ``on_registered(target_group_arn, target_ids)`` runs for each registration of new targets
    (instances that just launched and boot now), inside moto's request: keep it short."""

    delay_seconds: float
    on_registered: Callable[[str, list[str]], None] = lambda group, targets: None
    clock: Callable[[], float] = time.monotonic
    registered_at: dict[tuple[str, str], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _patches: ClassPatches = field(default_factory=ClassPatches)

    def arm(self) -> TargetWarmup:
        if self._patches.active:
            return self
        warmup = self
        original_register = FakeTargetGroup.register
        original_health_for = FakeTargetGroup.health_for

        def register(group: FakeTargetGroup, targets: list[dict[str, Any]]) -> None:
            now = warmup.clock()
            new: list[str] = []
            with warmup.lock:
                for target in targets:
                    key = (group.arn, target["Id"])
                    if key not in warmup.registered_at and target["Id"] not in group.targets:
                        warmup.registered_at[key] = now
                        new.append(target["Id"])
            original_register(group, targets)
            if new:
                warmup.on_registered(group.arn, new)

        def health_for(group: FakeTargetGroup, target: dict[str, Any],
                       ec2_backend: Any) -> FakeHealthStatus:
            status = original_health_for(group, target, ec2_backend)
            with warmup.lock:
                since = warmup.registered_at.get((group.arn, target["Id"]))
            if status.status == "healthy" and since is not None \
                    and warmup.clock() - since < warmup.delay_seconds:
                return FakeHealthStatus(status.instance_id, status.port,
                                        status.health_check_port, "initial",
                                        "Elb.RegistrationInProgress",
                                        "Target registration is in progress")
            return status

        self._patches.set(FakeTargetGroup, "register", register)
        self._patches.set(FakeTargetGroup, "health_for", health_for)
        return self

    def disarm(self) -> None:
        self._patches.restore()

    def __enter__(self) -> TargetWarmup:
        return self.arm()

    def __exit__(self, *exc: object) -> None:
        self.disarm()
