"""Route 53's data plane: which failover record a resolver gets, computed from health checks.

moto has no DNS answers and fakes health-check status, so this module does what Route 53's
checkers and name servers do, from the configuration alone (records and health checks as
``pulumi up`` created them in the emulator). It never calls the Route 53 API, which lives in
us-east-1 and is down during a regional outage, exactly as the real data plane keeps answering
while the control plane is impaired.

- Endpoint checks (``HTTP``/``HTTPS``, ``*_STR_MATCH``) probe the target. Targets are names:
  ``endpoints`` maps a load balancer's DNS name to the local site app. An S3 object URL
  (``<bucket>.s3.<region>.amazonaws.com/<key>``) is read from the emulator's S3 in that region:
  that is how the standby-region traffic switch is observed.
- ``STR_MATCH`` checks look for the search string in the first 5,120 bytes of the body;
  ``Inverted`` flips the result; ``CALCULATED`` checks are healthy when at least
  ``HealthThreshold`` children are.
- A check changes state after ``FailureThreshold`` consecutive opposite observations, like
  Route 53; the interval between observations is ``tick_seconds`` (0.1 s here instead of
  10 s or 30 s -- health-check timing is scaled down, not modelled in wall time).
- Failover routing: the PRIMARY record answers while its check is healthy; otherwise the
  SECONDARY does if its check is healthy (or it has none); when both are unhealthy Route 53
  answers PRIMARY.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.route53.models import route53_backends
from moto.s3.models import s3_backends

from caresync_dr.emulation.server import ACCOUNT_ID

log = logging.getLogger(__name__)

STR_MATCH_BYTES = 5120
_S3_HOST_RE = re.compile(
    r"^(?P<bucket>[a-z0-9.-]+)\.s3[.-](?:(?P<region>[a-z0-9-]+)\.)?amazonaws\.com$")


@dataclass(frozen=True)
class Answer:
    """What a resolver gets for the record name: the answering record and its target."""

    set_identifier: str
    failover: str
    target: str


@dataclass
class CheckState:
    healthy: bool = True
    streak: int = 0  # consecutive observations disagreeing with ``healthy``
    reason: str = "not yet probed"


def _normalize(name: str) -> str:
    return name.rstrip(".").lower()


def _strip_zone_id(zone_id: str) -> str:
    return zone_id.rsplit("/", 1)[-1]


@dataclass
class DnsResolver:
    """Evaluates health checks on a background tick and answers failover queries."""

    hosted_zone_id: str
    record_name: str
    endpoints: dict[str, str]  # DNS name (load balancer) -> local base URL of the site app
    s3_reachable: Callable[[str], bool] = lambda region: True
    account_id: str = ACCOUNT_ID
    tick_seconds: float = 0.1
    probe_timeout: float = 0.5
    states: dict[str, CheckState] = field(default_factory=dict)
    history: list[tuple[float, Answer]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    # --- configuration, as the data plane holds it --------------------------------------------
    def _backend(self) -> Any:
        return route53_backends[self.account_id]["aws"]

    def failover_records(self) -> dict[str, Any]:
        """PRIMARY and SECONDARY records for ``record_name`` in the zone."""
        zone = self._backend().zones.get(_strip_zone_id(self.hosted_zone_id))
        if zone is None:
            raise LookupError(f"hosted zone {self.hosted_zone_id} does not exist in the emulator")
        found = {r.failover: r for r in zone.rrsets
                 if _normalize(r.name) == _normalize(self.record_name) and r.failover}
        if "PRIMARY" not in found or "SECONDARY" not in found:
            raise LookupError(f"{self.record_name} needs a PRIMARY and a SECONDARY failover "
                              f"record; found {sorted(found) or 'none'}")
        return found

    def _check(self, check_id: str) -> Any:
        check = self._backend().health_checks.get(check_id)
        if check is None:
            raise LookupError(f"health check {check_id} does not exist in the emulator")
        return check

    # --- one observation ----------------------------------------------------------------------
    def observe(self, check_id: str) -> tuple[bool, str]:
        """Probe a health check once: (healthy, reason). Calculated checks use child states."""
        check = self._check(check_id)
        kind = (check.type_ or "").upper()
        if kind == "CALCULATED":
            children = check.children or []
            healthy_children = sum(1 for c in children if self.status(c))
            threshold = int(check.health_threshold or len(children))
            ok = healthy_children >= threshold
            reason = f"{healthy_children}/{len(children)} children healthy (need {threshold})"
        elif kind in ("HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH"):
            ok, reason = self._probe_endpoint(check, kind)
        else:
            ok, reason = False, f"health check type {kind or '?'} is not emulated"
        if check.inverted:
            ok, reason = not ok, f"inverted: {reason}"
        return ok, reason

    def _probe_endpoint(self, check: Any, kind: str) -> tuple[bool, str]:
        host = _normalize(check.fqdn or check.ip_address or "")
        path = check.resource_path or "/"
        body: bytes
        s3 = _S3_HOST_RE.match(host)
        if s3:
            region = s3.group("region") or "us-east-1"
            bucket, key = s3.group("bucket"), path.lstrip("/")
            if not self.s3_reachable(region):
                return False, f"s3 in {region} unreachable"
            try:
                obj = s3_backends[self.account_id]["aws"].get_object(bucket, key)
            except Exception as exc:  # missing bucket: the checker sees a 403/404
                return False, f"s3://{bucket}/{key}: {type(exc).__name__}"
            if obj is None:
                return False, f"s3://{bucket}/{key}: no such key"
            body = obj.value
        else:
            base = self.endpoints.get(host)
            if base is None:
                return False, f"no route to {host}"
            try:
                with urllib.request.urlopen(base + path, timeout=self.probe_timeout) as resp:
                    body = resp.read(STR_MATCH_BYTES)
            except urllib.error.HTTPError as exc:
                return False, f"{host}{path} answered {exc.code}"
            except OSError as exc:
                return False, f"{host}{path}: {exc}"
        if kind.endswith("STR_MATCH"):
            needle = (check.search_string or "").encode()
            found = needle in body[:STR_MATCH_BYTES]
            return found, f"{'found' if found else 'no'} {check.search_string!r} in {host}{path}"
        return True, f"{host}{path} answered"

    # --- state machine and answers ------------------------------------------------------------
    def status(self, check_id: str) -> bool:
        with self._lock:
            state = self.states.get(check_id)
        return True if state is None else state.healthy

    def _referenced_checks(self) -> list[str]:
        """Every check the failover records depend on, children before parents."""
        ordered: list[str] = []

        def visit(check_id: str) -> None:
            for child in self._check(check_id).children or []:
                visit(child)
            if check_id not in ordered:
                ordered.append(check_id)

        for record in self.failover_records().values():
            if record.health_check_id:
                visit(record.health_check_id)
        return ordered

    def tick(self) -> Answer:
        """One round of observations by every checker, then the answer."""
        for check_id in self._referenced_checks():
            ok, reason = self.observe(check_id)
            threshold = int(self._check(check_id).failure_threshold or 3)
            if (self._check(check_id).type_ or "").upper() == "CALCULATED":
                threshold = 1  # calculated checks follow their children at once
            with self._lock:
                state = self.states.setdefault(check_id, CheckState(healthy=ok, reason=reason))
                state.reason = reason
                if ok == state.healthy:
                    state.streak = 0
                else:
                    state.streak += 1
                    if state.streak >= threshold:
                        state.healthy, state.streak = ok, 0
                        log.info("route53: health check %s is now %s (%s)", check_id,
                                 "healthy" if ok else "unhealthy", reason)
        answer = self.answer()
        with self._lock:
            if not self.history or self.history[-1][1] != answer:
                self.history.append((time.monotonic(), answer))
                if len(self.history) > 1:
                    log.info("route53: %s now answers %s (%s)", self.record_name,
                             answer.set_identifier, answer.target)
        return answer

    def answer(self) -> Answer:
        """The failover routing decision from the current check states."""
        records = self.failover_records()
        primary, secondary = records["PRIMARY"], records["SECONDARY"]

        def healthy(record: Any) -> bool:
            return not record.health_check_id or self.status(record.health_check_id)

        chosen = primary
        if not healthy(primary) and healthy(secondary):
            chosen = secondary
        return Answer(set_identifier=chosen.set_identifier or chosen.failover,
                      failover=chosen.failover, target=_record_target(chosen))

    def current(self) -> Answer | None:
        with self._lock:
            return self.history[-1][1] if self.history else None

    def site_url(self) -> str | None:
        """Base URL of the site app the current answer points at."""
        answer = self.current()
        return None if answer is None else self.endpoints.get(_normalize(answer.target))

    def start(self) -> None:
        self.tick()
        self._thread = threading.Thread(target=self._run, daemon=True, name="route53-resolver")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            try:
                self.tick()
            except Exception:  # the resolver must outlive one bad round
                log.exception("route53: resolver round failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


def _record_target(record: Any) -> str:
    if record.alias_target:
        return _normalize(str(record.alias_target.get("DNSName", "")))
    values = record.records or []
    return _normalize(str(values[0])) if values else ""
