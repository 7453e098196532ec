"""caresync_dr.startup owns the cyclic collector's switch: pauses from any thread (failover.py's
start-up pause, its prewarm thread's resume, model_cache's unmarshalling) are counted under one
lock, so however they interleave the collector ends as the embedding program had it. The
interleavings are forced (a hook on the reading thread's steps), not waited for."""

from __future__ import annotations

import ast
import gc
import marshal
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest

from caresync_dr import model_cache, startup

PACKAGE = Path(startup.__file__).parent
# How long the reading thread waits for what lands at its step. Only an action blocked on the
# owner's lock (which the read holds at that step) takes it all; the read then goes on first.
BLOCKED_SECONDS = 0.2


@pytest.fixture(autouse=True)
def fresh_collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A new owner (no pause held, nothing frozen yet) and the collector on; afterwards the
    collector on and nothing frozen, whatever the test did."""
    monkeypatch.setattr(startup, "_COLLECTOR", startup._Collector())
    assert gc.isenabled()
    try:
        yield
    finally:
        startup.resume_collection()
        gc.unfreeze()
        gc.enable()


@pytest.fixture
def entry(tmp_path: Path) -> Path:
    path = tmp_path / ("0" * 32 + model_cache.SUFFIX)
    assert model_cache.write_entry(path, {"shapes": {"a": {"type": "string"}}})
    return path


class LandsDuringTheRead:
    """Within the block, ``action`` runs once on another thread at this thread's first step
    of a cache read: its first call of ``gc.isenabled``/``disable``/``enable`` or its
    unmarshalling, whichever comes first (:attr:`landed_at` names it). On exit the other
    thread has finished and the hooks are gone."""

    STEPS = (("gc", gc, "isenabled"), ("gc", gc, "disable"), ("gc", gc, "enable"),
             ("marshal", marshal, "loads"))

    def __init__(self, action: Callable[[], object]) -> None:
        self.action = action
        self.landed_at: str | None = None
        self.other: threading.Thread | None = None
        self.reader = threading.get_ident()
        self.originals: list[tuple[Any, str, Callable[..., Any]]] = []

    def _hooked(self, label: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def step(*args: Any) -> Any:
            result = real(*args)
            if threading.get_ident() == self.reader and self.landed_at is None:
                self.landed_at = label
                self.other = threading.Thread(target=self.action, name=f"lands-at-{label}")
                self.other.start()
                self.other.join(BLOCKED_SECONDS)
            return result
        return step

    def __enter__(self) -> LandsDuringTheRead:
        for module_name, module, name in self.STEPS:
            real = getattr(module, name)
            self.originals.append((module, name, real))
            setattr(module, name, self._hooked(f"{module_name}.{name}", real))
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        for module, name, real in self.originals:
            setattr(module, name, real)
        if self.other is not None:
            self.other.join()


def test_a_resume_on_another_thread_during_a_read_leaves_the_collector_on(
        entry: Path) -> None:
    """The audit's case: failover.py's start-up pause is held, the main thread reads a cached
    model, and the prewarm thread's resume lands between the read's look at the collector and
    its pause (it saw "off", so it never turned it on again): the collector stayed off for
    the rest of the process."""
    assert startup.pause_collection(backstop_seconds=120.0)
    with LandsDuringTheRead(startup.resume_collection) as landing:
        assert model_cache.read_entry(entry) == {"shapes": {"a": {"type": "string"}}}
    assert landing.landed_at is not None, "nothing landed during the read"
    assert gc.isenabled(), f"collector left off (resumed at {landing.landed_at})"


def test_a_start_up_pause_that_begins_during_a_read_outlives_the_read(entry: Path) -> None:
    """The reverse: the read began with the collector on, the start-up pause begins during
    it. It is a pause (True), and the end of the read does not end it."""
    began: list[bool] = []
    with LandsDuringTheRead(lambda: began.append(startup.pause_collection(120.0))) as landing:
        model_cache.read_entry(entry)
    assert began == [True], f"no pause began at {landing.landed_at}"
    assert not gc.isenabled(), f"the read's end turned it on (paused at {landing.landed_at})"
    startup.resume_collection()
    assert gc.isenabled()


def _yielding(real: Callable[[], Any]) -> Callable[[], Any]:
    """``real``, then a switch to another thread: a look at the collector and the switch
    that follows it are where one thread's step can fall between another's."""
    def step() -> Any:
        result = real()
        time.sleep(0)
        return result
    return step


@pytest.mark.parametrize("collector_was_on", [True, False], ids=["on", "off"])
def test_concurrent_pauses_and_resumes_from_many_threads_end_as_they_began(
        entry: Path, collector_was_on: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight threads read cached entries, take nested pauses and start and end the start-up
    pause in random order, switching threads every microsecond and after every look at or
    switch of the collector. Afterwards the collector is as the program had it, and a
    collector the program turned off was never turned on."""
    if not collector_was_on:
        gc.disable()
    for name in ("isenabled", "disable", "enable"):
        monkeypatch.setattr(gc, name, _yielding(getattr(gc, name)))
    seen_on: list[bool] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if gc.isenabled():
                seen_on.append(True)

    def work(seed: int) -> None:
        chance = random.Random(seed)
        start.wait()
        for _ in range(200):
            move = chance.randrange(4)
            if move == 0:
                assert model_cache.read_entry(entry) is not None
            elif move == 1:
                with startup.collection_paused(), startup.collection_paused():
                    model_cache.read_entry(entry)
            elif move == 2:
                startup.pause_collection(backstop_seconds=chance.choice([0.0, 120.0]))
            else:
                startup.resume_collection()

    start = threading.Barrier(8)
    workers = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    watcher = threading.Thread(target=watch)
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        watcher.start()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(interval)
        stop.set()
        watcher.join()
    startup.resume_collection()
    with startup._COLLECTOR.lock:
        assert startup._COLLECTOR.holds == 0
    assert gc.isenabled() is collector_was_on
    if not collector_was_on:
        assert not seen_on, "a collector the program turned off was turned on"


def test_only_the_first_start_up_pause_freezes(monkeypatch: pytest.MonkeyPatch) -> None:
    """gc.freeze keeps whatever exists, cyclic garbage too, out of every later collection:
    start-up's objects once, not everything a process holds at each later pause's end."""
    freezes: list[None] = []
    monkeypatch.setattr(gc, "freeze", lambda: freezes.append(None))
    for _ in range(3):
        assert startup.pause_collection(backstop_seconds=120.0)
        startup.resume_collection()
        assert gc.isenabled()
    assert len(freezes) == 1


def test_only_the_owner_switches_the_collector() -> None:
    """No other module of caresync_dr turns the cyclic collector off or on, or freezes it:
    a second switch is what let one pause's end undo another's."""
    switches = {"disable", "enable", "freeze", "unfreeze", "isenabled"}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == Path(startup.__file__):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Attribute) and node.attr in switches
                    and isinstance(node.value, ast.Name) and node.value.id == "gc"):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} gc.{node.attr}")
            if (isinstance(node, ast.ImportFrom) and node.module == "gc"
                    and {alias.name for alias in node.names} & switches):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} from gc import")
    assert not found, found
