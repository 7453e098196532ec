"""Auto Scaling as real Auto Scaling behaves where moto differs: refreshes and warm-up.

- **Instance refreshes.** moto 5.2 implements none of ``StartInstanceRefresh``,
  ``DescribeInstanceRefreshes`` or ``RollbackInstanceRefresh``. While armed,
  :class:`InstanceRefreshes` answers all three (moto's Auto Scaling responses gain the
  actions), as Auto Scaling does (API reference; user guide, "Undo changes with a manual or auto
  rollback"):

  * a request AWS refuses is refused (``ValidationError``): the checks of
    :func:`caresync_dr.emulation.aws_rules.autoscaling.refresh_problems` against the group as
    moto holds it (healthy percentages, alarms that exist, auto rollback only with a desired
    configuration and a group on a numbered template version), and an unknown group; a second
    start while one is active is refused with ``InstanceRefreshInProgress``;
  * a refresh is ``InProgress`` for ``delay_seconds`` (instances launched, booted, warmed up),
    then ``on_replace(region, group, version)`` runs - the new instances serve, from the desired
    configuration's template version (None: the group's own) -, then ``Baking`` for the
    request's ``BakeTime`` x ``bake_scale``, then ``Successful``: the desired version is saved
    on the group and ``on_complete(region, group)`` runs;
  * while it runs or bakes, an alarm of its ``AlarmSpecification`` in state ALARM fails it: with
    ``AutoRollback`` the group goes ``RollbackInProgress``, the instances are replaced again
    from the version the group had saved (``on_replace`` with that version), then
    ``RollbackSuccessful``; without, ``Failed``. The group's saved version changes only on
    success;
  * ``RollbackInstanceRefresh`` rolls an active refresh back the same way; without one it is
    refused (``ActiveInstanceRefreshNotFound``), and a refresh without a desired configuration,
    or of a group on ``$Latest``/``$Default``, cannot be rolled back
    (``IrreversibleInstanceRefresh``).

  With ``delay_seconds`` None a refresh stays ``InProgress`` (tests that look at the request).
  moto evaluates no alarms: someone must set their state (the drill's
  :mod:`caresync_dr.emulation.alarms`, or a test through ``SetAlarmState``).
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
from moto.autoscaling.models import autoscaling_backends
from moto.autoscaling.responses import AutoScalingResponse
from moto.cloudwatch.models import cloudwatch_backends
from moto.core.responses import ActionResult
from moto.elbv2.models import FakeHealthStatus, FakeTargetGroup

from caresync_dr.app.rollout import is_numbered
from caresync_dr.emulation.aws_rules.autoscaling import refresh_problems, rollback_unavailable
from caresync_dr.emulation.patching import ClassPatches, remember

log = logging.getLogger(__name__)
remember(AutoScalingResponse, "start_instance_refresh", "describe_instance_refreshes",
         "rollback_instance_refresh", "cancel_instance_refresh")
remember(FakeTargetGroup, "register", "health_for")
TERMINAL = frozenset({"Successful", "Failed", "Cancelled", "RollbackSuccessful",
                      "RollbackFailed"})
POLL_SECONDS = 0.02


class InstanceRefreshInProgressError(AutoscalingClientError):
    code = "InstanceRefreshInProgress"


class RefreshValidationError(AutoscalingClientError):
    code = "ValidationError"


class ActiveInstanceRefreshNotFoundError(AutoscalingClientError):
    code = "ActiveInstanceRefreshNotFound"


class IrreversibleInstanceRefreshError(AutoscalingClientError):
    code = "IrreversibleInstanceRefresh"


@dataclass
class Refresh:
    refresh_id: str
    account_id: str
    region: str
    group: str
    started: datetime
    ended: datetime | None = None
    status: str = "InProgress"
    status_reason: str | None = None
    desired_version: str | None = None   # the DesiredConfiguration's template version
    template_id: str | None = None
    previous_version: str | None = None  # what the group had saved when it started
    preferences: dict[str, Any] = field(default_factory=dict)
    rollback_requested: str | None = None  # why (RollbackInstanceRefresh)

    @property
    def active(self) -> bool:
        return self.status not in TERMINAL

    def api(self) -> dict[str, Any]:
        """The refresh as ``DescribeInstanceRefreshes`` shows it."""
        answer: dict[str, Any] = {
            "InstanceRefreshId": self.refresh_id, "AutoScalingGroupName": self.group,
            "Status": self.status, "StartTime": self.started,
            "PercentageComplete": 100 if self.status in ("Successful", "Baking") else 0}
        if self.ended:
            answer["EndTime"] = self.ended
        if self.status_reason:
            answer["StatusReason"] = self.status_reason
        if self.preferences:
            answer["Preferences"] = self.preferences
        if self.desired_version is not None:
            answer["DesiredConfiguration"] = {"LaunchTemplate": {
                "LaunchTemplateId": self.template_id, "Version": self.desired_version}}
        if self.status.startswith("Rollback"):
            answer["RollbackDetails"] = {"RollbackReason": self.status_reason,
                                         "RollbackStartTime": self.ended or self.started}
        return answer


def _group(account_id: str, region: str, name: str) -> Any:
    return autoscaling_backends[account_id][region].autoscaling_groups.get(name)


def _saved_version(group: Any) -> str | None:
    return None if group is None else (group.provided_launch_template_version
                                       or group.launch_template_version)


def _image_of(group: Any) -> str | None:
    template = getattr(group, "ec2_launch_template", None)
    version = _saved_version(group)
    if template is None or not is_numbered(version):
        return None
    try:
        return str(template.get_version(int(str(version))).image_id)
    except Exception:  # a version moto does not know: nothing to say about its image
        return None


def moto_alarm_state(account_id: str, region: str, name: str) -> str | None:
    alarm = cloudwatch_backends[account_id][region].alarms.get(name)
    return None if alarm is None else str(alarm.state_value)


@dataclass
class InstanceRefreshes:
    """Auto Scaling instance refreshes (see the module docstring)."""

    delay_seconds: float | None = None
    on_start: Callable[[Refresh], None] = lambda refresh: None
    on_complete: Callable[[str, str], None] = lambda region, group: None
    # The group's instances now run ``version`` (None: the group's saved configuration).
    on_replace: Callable[[str, str, str | None], None] | None = None
    bake_scale: float = 1.0
    alarm_state: Callable[[str, str, str], str | None] = moto_alarm_state
    refreshes: list[Refresh] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _patches: ClassPatches = field(default_factory=ClassPatches)

    # --- the API --------------------------------------------------------------------------
    def start(self, account_id: str, region: str, group: str,
              request: dict[str, Any] | None = None) -> Refresh:
        request = request or {}
        moto_group = _group(account_id, region, group)
        if moto_group is None:
            raise RefreshValidationError(f"AutoScalingGroup name not found - {group}")
        problems = refresh_problems(
            request, group_version=_saved_version(moto_group), image_id=_image_of(moto_group),
            alarm_exists=lambda name: self.alarm_state(account_id, region, name) is not None)
        if problems:
            raise RefreshValidationError("The request isn't valid: " + "; ".join(problems))
        desired = ((request.get("DesiredConfiguration") or {}).get("LaunchTemplate") or {})
        with self.lock:
            if any(r.active and (r.account_id, r.region, r.group) ==
                   (account_id, region, group) for r in self.refreshes):
                raise InstanceRefreshInProgressError(
                    f"An Instance Refresh is already in progress and blocks the execution of "
                    f"this Instance Refresh for group {group}.")
            refresh = Refresh(
                refresh_id=str(uuid.uuid4()), account_id=account_id, region=region,
                group=group, started=datetime.now(UTC),
                desired_version=None if not desired else str(desired.get("Version")),
                template_id=desired.get("LaunchTemplateId"),
                previous_version=_saved_version(moto_group),
                preferences=dict(request.get("Preferences") or {}))
            self.refreshes.append(refresh)
        self.on_start(refresh)
        if self.delay_seconds is not None:
            log.info("emulator: instance refresh of %s (%s) started, takes %.1f s", group,
                     region, self.delay_seconds)
            threading.Thread(target=self._run, args=(refresh,), daemon=True,
                             name=f"refresh-{group}").start()
        return refresh

    def rollback(self, account_id: str, region: str, group: str) -> Refresh:
        with self.lock:
            refresh = next((r for r in reversed(self.refreshes) if r.active and
                            (r.account_id, r.region, r.group) == (account_id, region, group)),
                           None)
        if refresh is None or refresh.status.startswith("Rollback"):
            raise ActiveInstanceRefreshNotFoundError(
                f"No active Instance Refresh found for Auto Scaling group {group}")
        reason = ("there is no desired configuration" if refresh.desired_version is None
                  else rollback_unavailable(refresh.previous_version))
        if reason is not None:
            raise IrreversibleInstanceRefreshError(
                f"The instance refresh cannot be rolled back: {reason}")
        refresh.rollback_requested = "RollbackInstanceRefresh called"
        if self.delay_seconds is None:
            refresh.status = "RollbackInProgress"
            refresh.status_reason = refresh.rollback_requested
        return refresh

    def cancel(self, account_id: str, region: str, group: str) -> Refresh:
        """CancelInstanceRefresh: the group's active refresh (or rollback) ends as Cancelled,
        the instances it replaced so far stay (Auto Scaling API reference,
        CancelInstanceRefresh; ActiveInstanceRefreshNotFound when none is active). AWS shows
        Cancelling while in-flight replacements finish; the emulator has none in flight."""
        with self.lock:
            refresh = next((r for r in reversed(self.refreshes) if r.active and
                            (r.account_id, r.region, r.group) == (account_id, region, group)),
                           None)
            if refresh is None:
                raise ActiveInstanceRefreshNotFoundError(
                    f"No in progress or pending Instance Refresh found for Auto Scaling group "
                    f"{group}")
            self._end(refresh, "Cancelled", "CancelInstanceRefresh called")
        return refresh

    def describe(self, account_id: str, region: str, group: str) -> list[dict[str, Any]]:
        """Newest first, like Auto Scaling."""
        with self.lock:
            mine = [r for r in self.refreshes
                    if (r.account_id, r.region, r.group) == (account_id, region, group)]
        return [r.api() for r in reversed(mine)]

    # --- one refresh, in time ------------------------------------------------------------
    def _firing(self, refresh: Refresh) -> str | None:
        alarms = (refresh.preferences.get("AlarmSpecification") or {}).get("Alarms") or []
        for name in alarms:
            if self.alarm_state(refresh.account_id, refresh.region, str(name)) == "ALARM":
                return f"CloudWatch alarm {name} went into ALARM state"
        return refresh.rollback_requested

    def _wait(self, refresh: Refresh, seconds: float) -> str | None:
        """Wait, watching the alarms; the reason to stop early, or None."""
        deadline = time.monotonic() + seconds
        while True:
            if refresh.status == "Cancelled":
                return "cancelled"
            reason = self._firing(refresh)
            if reason is not None or time.monotonic() >= deadline:
                return reason
            time.sleep(POLL_SECONDS)

    def _replace(self, refresh: Refresh, version: str | None) -> None:
        if self.on_replace is not None:
            self.on_replace(refresh.region, refresh.group, version)

    def _end(self, refresh: Refresh, status: str, reason: str | None = None) -> None:
        refresh.status, refresh.ended = status, datetime.now(UTC)
        if reason is not None:
            refresh.status_reason = reason
        log.info("emulator: instance refresh of %s: %s%s", refresh.group, status,
                 f" ({reason})" if reason else "")

    def _run(self, refresh: Refresh) -> None:
        assert self.delay_seconds is not None
        reason = self._wait(refresh, self.delay_seconds)
        if refresh.status == "Cancelled":
            return
        if reason is None:
            self._replace(refresh, refresh.desired_version)
            bake = float(refresh.preferences.get("BakeTime") or 0) * self.bake_scale
            if bake > 0:
                refresh.status = "Baking"
            reason = self._wait(refresh, bake)
        if refresh.status == "Cancelled":
            return
        if reason is None:
            group = _group(refresh.account_id, refresh.region, refresh.group)
            if refresh.desired_version is not None and group is not None:
                group.provided_launch_template_version = refresh.desired_version
                group.launch_template_version = refresh.desired_version
            self.on_complete(refresh.region, refresh.group)
            self._end(refresh, "Successful")
            return
        if refresh.preferences.get("AutoRollback") or refresh.rollback_requested:
            refresh.status, refresh.status_reason = "RollbackInProgress", reason
            log.info("emulator: instance refresh of %s rolls back: %s", refresh.group, reason)
            time.sleep(self.delay_seconds)
            self._replace(refresh, refresh.previous_version)
            self._end(refresh, "RollbackSuccessful")
            return
        self._end(refresh, "Failed", reason)

    # --- arming ---------------------------------------------------------------------------
    def arm(self) -> InstanceRefreshes:
        if self._patches.active:
            return self
        refreshes = self

        def start_instance_refresh(response: AutoScalingResponse) -> ActionResult:
            request = {key: response._get_param(key) for key in
                       ("DesiredConfiguration", "Preferences", "Strategy")
                       if response._get_param(key) is not None}
            refresh = refreshes.start(response.current_account, response.region,
                                      response._get_param("AutoScalingGroupName"), request)
            return ActionResult({"InstanceRefreshId": refresh.refresh_id})

        def describe_instance_refreshes(response: AutoScalingResponse) -> ActionResult:
            return ActionResult({"InstanceRefreshes": refreshes.describe(
                response.current_account, response.region,
                response._get_param("AutoScalingGroupName"))})

        def rollback_instance_refresh(response: AutoScalingResponse) -> ActionResult:
            refresh = refreshes.rollback(response.current_account, response.region,
                                         response._get_param("AutoScalingGroupName"))
            return ActionResult({"InstanceRefreshId": refresh.refresh_id})

        def cancel_instance_refresh(response: AutoScalingResponse) -> ActionResult:
            refresh = refreshes.cancel(response.current_account, response.region,
                                       response._get_param("AutoScalingGroupName"))
            return ActionResult({"InstanceRefreshId": refresh.refresh_id})

        self._patches.set(AutoScalingResponse, "start_instance_refresh", start_instance_refresh)
        self._patches.set(AutoScalingResponse, "cancel_instance_refresh",
                          cancel_instance_refresh)
        self._patches.set(AutoScalingResponse, "describe_instance_refreshes",
                          describe_instance_refreshes)
        self._patches.set(AutoScalingResponse, "rollback_instance_refresh",
                          rollback_instance_refresh)
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
    (instances that just launched and boot now), inside moto's request: keep it short.
    ``serving(target_group_arn)``, when given, is the load balancer's health check of what the
    targets run (moto reports any running instance healthy): False makes them ``unhealthy``
    (``Target.ResponseCodeMismatch``), as an app that crashed or answers 500 is."""

    delay_seconds: float
    on_registered: Callable[[str, list[str]], None] = lambda group, targets: None
    clock: Callable[[], float] = time.monotonic
    serving: Callable[[str], bool] | None = None
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
            if status.status == "healthy" and warmup.serving is not None \
                    and not warmup.serving(group.arn):
                return FakeHealthStatus(status.instance_id, status.port,
                                        status.health_check_port, "unhealthy",
                                        "Target.ResponseCodeMismatch",
                                        "Health checks failed with these codes: [503]")
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
