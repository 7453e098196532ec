"""Best effort with a bound: short timeouts, a few attempts, one deadline per delivery.

A channel that is down must cost a recovery seconds, never minutes, and never its outcome:
every attempt's timeouts are cut to what is left of the delivery's deadline, and whatever a
channel raises ends as a ``failed`` :class:`~caresync_dr.notify.messages.Delivery`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from caresync_dr.notify.messages import Delivery, utc_now

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` in all (first included) within ``deadline_seconds``; each attempt waits at
    most ``connect_timeout`` to connect and ``read_timeout`` for the answer; between attempts
    ``backoff_seconds``, doubling, or the server's ``Retry-After`` when it is shorter than
    ``max_retry_after``."""

    attempts: int = 3
    connect_timeout: float = 2.0
    read_timeout: float = 5.0
    backoff_seconds: float = 0.5
    deadline_seconds: float = 15.0
    max_retry_after: float = 5.0


DEFAULT_POLICY = RetryPolicy()


class DeliveryError(Exception):
    """One attempt failed. ``retryable``: another attempt may succeed (a timeout, a refused
    connection, 429, 5xx). ``ambiguous``: the request may have been carried out with its
    answer lost (a read timeout, a 5xx), so a create must look before it creates again."""

    def __init__(self, detail: str, *, retryable: bool, ambiguous: bool = False,
                 retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retryable = retryable
        self.ambiguous = ambiguous
        self.retry_after = retry_after


@dataclass
class Budget:
    """What is left of one delivery's deadline."""

    policy: RetryPolicy
    started: float

    def remaining(self) -> float:
        return self.policy.deadline_seconds - (time.monotonic() - self.started)

    def timeout(self) -> tuple[float, float]:
        """(connect, read) for the next request, cut to the time left (at least 0.1 s)."""
        left = max(0.1, self.remaining())
        return (min(self.policy.connect_timeout, left), min(self.policy.read_timeout, left))


Attempt = Callable[[Budget], tuple[str, dict[str, Any]]]   # -> (detail, remember)


@dataclass
class Breaker:
    """One channel's memory of its last delivery: after a failed one, the next gets a single
    attempt (no retries) until one succeeds, so a dead channel costs each later message one
    timeout at most instead of the whole retry budget."""

    down: bool = False

    def policy(self, policy: RetryPolicy) -> RetryPolicy:
        if not self.down:
            return policy
        return RetryPolicy(attempts=1, connect_timeout=policy.connect_timeout,
                           read_timeout=policy.read_timeout, backoff_seconds=0.0,
                           deadline_seconds=policy.deadline_seconds,
                           max_retry_after=policy.max_retry_after)

    def record(self, delivery: Delivery) -> Delivery:
        self.down = delivery.status == "failed"
        return delivery


def deliver_with_retries(channel: str, event: str, attempt: Attempt,
                         policy: RetryPolicy = DEFAULT_POLICY, *,
                         sleep: Callable[[float], None] = time.sleep,
                         breaker: Breaker | None = None) -> Delivery:
    """Run ``attempt`` until it succeeds, fails for good, or the attempts or the deadline
    are used up (one attempt only while ``breaker`` says the channel is down). Never raises."""
    if breaker is not None:
        return breaker.record(deliver_with_retries(channel, event, attempt,
                                                   breaker.policy(policy), sleep=sleep))
    budget = Budget(policy, time.monotonic())
    attempts = 0
    errors: list[str] = []
    while True:
        attempts += 1
        try:
            detail, remember = attempt(budget)
            seconds = round(time.monotonic() - budget.started, 3)
            if errors:
                detail += f" (after {'; '.join(errors)})"
            return Delivery(channel, event, "sent", detail, attempts, seconds,
                            utc_now().isoformat(timespec="milliseconds"), remember)
        except DeliveryError as exc:
            error = exc
        except Exception as exc:   # a channel bug must not reach the recovery either
            log.debug("channel %s raised", channel, exc_info=True)
            error = DeliveryError(f"{type(exc).__name__}: {exc}", retryable=False)
        errors.append(f"attempt {attempts}: {error.detail}")
        pause = policy.backoff_seconds * 2 ** (attempts - 1)
        if error.retry_after is not None and error.retry_after <= policy.max_retry_after:
            pause = error.retry_after
        if not error.retryable or attempts >= policy.attempts or \
                budget.remaining() <= pause + 0.1:
            seconds = round(time.monotonic() - budget.started, 3)
            why = "; ".join(errors)
            if error.retryable and attempts < policy.attempts:
                why += f"; gave up: the {policy.deadline_seconds:g} s delivery deadline"
            return Delivery(channel, event, "failed", why, attempts, seconds,
                            utc_now().isoformat(timespec="milliseconds"))
        sleep(pause)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None   # an HTTP date: use our own backoff


def http_call(session: requests.Session, method: str, url: str, budget: Budget, *,
              shown_url: str, json_body: Any = None,
              headers: Mapping[str, str] | None = None) -> requests.Response:
    """One HTTP request within the budget; a failure becomes a :class:`DeliveryError` that
    names ``shown_url`` (never a URL that is itself a credential) and the status."""
    try:
        response = session.request(method, url, json=json_body, headers=dict(headers or {}),
                                    timeout=budget.timeout(), allow_redirects=False)
    except requests.ConnectTimeout as exc:
        raise DeliveryError(f"{shown_url}: no connection within "
                            f"{budget.timeout()[0]:.1f} s", retryable=True) from exc
    except requests.Timeout as exc:
        raise DeliveryError(f"{shown_url}: no answer within {budget.timeout()[1]:.1f} s",
                            retryable=True, ambiguous=True) from exc
    except requests.ConnectionError as exc:
        reason = "connection refused" if "refused" in str(exc).lower() else \
            f"connection failed ({type(exc).__name__})"
        raise DeliveryError(f"{shown_url}: {reason}", retryable=True) from exc
    except requests.RequestException as exc:
        raise DeliveryError(f"{shown_url}: {type(exc).__name__}", retryable=False) from exc
    if response.status_code < 300:
        return response
    snippet = " ".join(response.text.split())[:120]
    # 420 is Statuspage's old rate-limit answer, 429 the standard one.
    retryable = response.status_code in (420, 429) or response.status_code >= 500
    raise DeliveryError(f"{shown_url} answered HTTP {response.status_code}"
                        + (f": {snippet}" if snippet else ""), retryable=retryable,
                        ambiguous=response.status_code >= 500,
                        retry_after=_retry_after(response.headers))
