"""Auto Scaling instance refreshes, which moto 5.2 does not implement at all.

``StartInstanceRefresh`` and ``DescribeInstanceRefreshes`` (Auto Scaling query API) are answered
here instead of by moto. A refresh is ``InProgress`` for ``delay_seconds`` (instances replaced
and warmed up), then ``Successful``; on success ``on_complete(region, group)`` runs, which in the
drill reboots the site app so it re-reads its database endpoint parameter, as new instances do
at boot (see ``components/app_tier.py``'s user data).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from caresync_dr.drill.emulator import AwsCall

log = logging.getLogger(__name__)
NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/"


@dataclass
class Refresh:
    refresh_id: str
    region: str
    group: str
    started: datetime
    started_mono: float
    ended: datetime | None = None


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class InstanceRefreshes:
    delay_seconds: float
    on_complete: Callable[[str, str], None] = lambda region, group: None
    refreshes: list[Refresh] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, call: AwsCall) -> tuple[int, str] | None:
        if call.service != "autoscaling":
            return None
        if call.action == "StartInstanceRefresh":
            return 200, self._start(call.region or "", call.params["AutoScalingGroupName"])
        if call.action == "DescribeInstanceRefreshes":
            return 200, self._describe(call.region or "", call.params["AutoScalingGroupName"])
        return None

    def _start(self, region: str, group: str) -> str:
        refresh = Refresh(refresh_id=str(uuid.uuid4()), region=region, group=group,
                          started=datetime.now(UTC), started_mono=time.monotonic())
        with self.lock:
            self.refreshes.append(refresh)
        log.info("emulator: instance refresh of %s (%s) started, takes %.1f s", group, region,
                 self.delay_seconds)
        threading.Thread(target=self._finish, args=(refresh,), daemon=True,
                         name=f"refresh-{group}").start()
        return (f'<StartInstanceRefreshResponse xmlns="{NS}"><StartInstanceRefreshResult>'
                f"<InstanceRefreshId>{refresh.refresh_id}</InstanceRefreshId>"
                f"</StartInstanceRefreshResult><ResponseMetadata><RequestId>{uuid.uuid4()}"
                "</RequestId></ResponseMetadata></StartInstanceRefreshResponse>")

    def _finish(self, refresh: Refresh) -> None:
        time.sleep(self.delay_seconds)
        self.on_complete(refresh.region, refresh.group)
        refresh.ended = datetime.now(UTC)
        log.info("emulator: instance refresh of %s finished", refresh.group)

    def _describe(self, region: str, group: str) -> str:
        with self.lock:
            mine = [r for r in self.refreshes if r.region == region and r.group == group]
        members = []
        for r in reversed(mine):  # newest first, like Auto Scaling
            status = "Successful" if r.ended else "InProgress"
            end = f"<EndTime>{_iso(r.ended)}</EndTime>" if r.ended else ""
            members.append(
                f"<member><InstanceRefreshId>{r.refresh_id}</InstanceRefreshId>"
                f"<AutoScalingGroupName>{r.group}</AutoScalingGroupName>"
                f"<Status>{status}</Status><StartTime>{_iso(r.started)}</StartTime>{end}"
                f"<PercentageComplete>{100 if r.ended else 0}</PercentageComplete></member>")
        return (f'<DescribeInstanceRefreshesResponse xmlns="{NS}">'
                f"<DescribeInstanceRefreshesResult><InstanceRefreshes>{''.join(members)}"
                "</InstanceRefreshes></DescribeInstanceRefreshesResult><ResponseMetadata>"
                f"<RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
                "</DescribeInstanceRefreshesResponse>")
