"""One worker thread per channel, so a slow channel delays only its own messages.

Messages of one channel keep their order (the status page's incident is created before it is
updated). :meth:`Dispatcher.close` waits for the queues within one deadline and reports every
message a channel did not get to as ``not sent``: the run's report stays truthful and the
process never waits on a dead channel. A delivery that finishes after that is dropped, so each
message has exactly one result.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from caresync_dr.notify.messages import Channel, Delivery, Message, utc_now

log = logging.getLogger(__name__)


def routes_to(channel: Channel, message: Message) -> bool:
    if channel.audience is None:
        return True
    return channel.audience == message.audience and channel.name in message.channels


class Dispatcher:
    def __init__(self, channels: Sequence[Channel],
                 on_delivery: Callable[[Delivery], None]) -> None:
        self._on_delivery = on_delivery
        self._channels = list(channels)
        self._queues: dict[str, queue.Queue[int | None]] = {}
        self._tickets: dict[int, tuple[Channel, Message, str]] = {}   # id -> (.., state)
        self._numbers = itertools.count()
        self._mutex = threading.Condition()
        self._closed = False
        for channel in self._channels:
            self._queues[channel.name] = queue.Queue()
            threading.Thread(target=self._work, args=(channel,), daemon=True,
                             name=f"notify-{channel.name}").start()

    def submit(self, message: Message) -> list[str]:
        """Queue ``message`` for every channel it is for; returns their names."""
        names = []
        with self._mutex:
            if self._closed:
                return []
            for channel in self._channels:
                if routes_to(channel, message):
                    number = next(self._numbers)
                    self._tickets[number] = (channel, message, "still queued")
                    self._queues[channel.name].put(number)
                    names.append(channel.name)
        return names

    def _work(self, channel: Channel) -> None:
        while True:
            number = self._queues[channel.name].get()
            if number is None:
                return
            with self._mutex:
                ticket = self._tickets.get(number)
                if ticket is None or self._closed:
                    continue
                self._tickets[number] = (channel, ticket[1], "in flight: the channel had not "
                                                             "answered")
            message = ticket[1]
            try:
                delivery = channel.deliver(message)
            except Exception as exc:   # deliver() never raises; a bug still must not kill us
                log.debug("channel %s raised", channel.name, exc_info=True)
                delivery = Delivery(channel.name, message.event, "failed",
                                    f"{type(exc).__name__}: {exc}", 1, 0.0,
                                    utc_now().isoformat(timespec="milliseconds"))
            with self._mutex:
                if self._tickets.pop(number, None) is None:
                    continue      # reported "not sent" at close already
                self._mutex.notify_all()
            try:
                self._on_delivery(delivery)
            except Exception:
                log.debug("recording a delivery failed", exc_info=True)

    def flush(self, timeout: float) -> bool:
        """Wait until every queued message has its result; False at the timeout."""
        until = time.monotonic() + timeout
        with self._mutex:
            while self._tickets:
                left = until - time.monotonic()
                if left <= 0:
                    return False
                self._mutex.wait(left)
        return True

    def close(self, timeout: float) -> list[Delivery]:
        """Stop taking messages, give the channels ``timeout`` seconds in all to finish, and
        return a ``not sent`` delivery for each message left behind."""
        with self._mutex:
            if self._closed:
                return []
        self.flush(timeout)
        with self._mutex:
            self._closed = True
            left = sorted(self._tickets.items())
            self._tickets.clear()
        for channel_queue in self._queues.values():
            channel_queue.put(None)
        return [Delivery(channel.name, message.event, "not sent",
                         f"{state} when the run ended ({timeout:g} s allowed)",
                         at=utc_now().isoformat(timespec="milliseconds"))
                for _number, (channel, message, state) in left]
