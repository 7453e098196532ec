"""CloudWatch alarm evaluation, which moto never does: alarms stay ``OK`` whatever the data.

:class:`AlarmEvaluator` evaluates the alarms it is told to watch the way CloudWatch does for a
metric alarm with ``N`` evaluation periods and ``N`` datapoints to alarm: every period it takes
one datapoint from the alarm's probe, and the alarm goes ``ALARM`` when the last ``N`` all
breach, back to ``OK`` when the newest does not (CloudWatch user guide, "Evaluating an alarm").
The state is set in moto's backend (``SetAlarmState`` semantics), so ``DescribeAlarms`` and the
emulated instance refresh (:mod:`caresync_dr.emulation.autoscaling`) see it.

The probe stands in for the metric: in the drill it is the load balancer's view of the site's
app (its health check answered or not, the share of 5xx answers), sampled on a scaled period
(CloudWatch: 60 or 300 s).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from moto.cloudwatch.models import cloudwatch_backends

log = logging.getLogger(__name__)


@dataclass
class Watch:
    region: str
    name: str
    probe: Callable[[], float]            # one datapoint
    breaching: Callable[[float], bool]    # the alarm's comparison against its threshold
    datapoints: int                       # evaluation periods = datapoints to alarm
    history: list[float] = field(default_factory=list)
    state: str = "OK"


@dataclass
class AlarmEvaluator:
    account_id: str
    period_seconds: float
    watches: list[Watch] = field(default_factory=list)
    transitions: list[tuple[str, str, str]] = field(default_factory=list)  # (alarm, state, why)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def watch(self, region: str, name: str, probe: Callable[[], float],
              breaching: Callable[[float], bool], datapoints: int) -> None:
        self.watches.append(Watch(region, name, probe, breaching, datapoints))

    def evaluate_once(self) -> None:
        for watch in self.watches:
            try:
                value = watch.probe()
            except Exception as exc:  # a probe that fails is missing data: not breaching
                log.debug("alarm probe %s failed: %s", watch.name, exc)
                continue
            watch.history = [*watch.history, value][-watch.datapoints:]
            recent = watch.history
            state = ("ALARM" if len(recent) == watch.datapoints
                     and all(watch.breaching(v) for v in recent) else
                     "OK" if not watch.breaching(value) else watch.state)
            if state != watch.state:
                why = (f"{len(recent)} of {watch.datapoints} datapoints breaching "
                       f"(last {value:g})")
                self._set(watch, state, why)

    def _set(self, watch: Watch, state: str, why: str) -> None:
        alarm = cloudwatch_backends[self.account_id][watch.region].alarms.get(watch.name)
        if alarm is not None:
            alarm.update_state(why, "{}", state)
        watch.state = state
        self.transitions.append((watch.name, state, why))
        log.info("emulator: alarm %s -> %s (%s)", watch.name, state, why)

    def start(self) -> AlarmEvaluator:
        def loop() -> None:
            while not self._stop.wait(self.period_seconds):
                self.evaluate_once()

        self._stop.clear()
        self._thread = threading.Thread(target=loop, daemon=True, name="alarm-evaluator")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def disarm(self) -> None:
        """What the drill calls on every shim when it ends."""
        self.stop()
