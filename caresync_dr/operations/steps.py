"""Steps and plans: what an operation is made of.

A :class:`Step` is a small idempotent unit: ``check`` re-reads real state and returns a
:class:`Verdict` -- ``run`` (saying what it would change), ``done`` (why it needn't run) or
``blocked`` (why it can't) -- and ``apply`` makes the change, waits for it with bounded polling
(:mod:`~caresync_dr.operations.polling`), and returns one sentence saying what it did.
A plan is a tuple of :class:`Stage`; the steps of one stage run side by side. Modes are data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable
from dataclasses import dataclass
from typing import ClassVar, Generic, Literal, NamedTuple, Protocol, TypeVar

C = TypeVar("C")


class Verdict(NamedTuple):
    kind: Literal["run", "done", "blocked"]
    sentence: str


def run(sentence: str) -> Verdict:
    return Verdict("run", sentence)


def done(sentence: str) -> Verdict:
    return Verdict("done", sentence)


def blocked(sentence: str) -> Verdict:
    return Verdict("blocked", sentence)


@dataclass(frozen=True)
class Found:
    """What reading one resource found: there and usable (``ok``), and one sentence."""

    ok: bool
    detail: str


class Touched(Protocol):
    """A resource a step changes or needs. The preflight reads each one (once, by ``key``)
    before the first change and refuses the run when one is missing."""

    @property
    def label(self) -> str: ...          # the row in the readiness table

    @property
    def key(self) -> Hashable: ...       # the same resource declared by two steps reads once

    def read(self) -> Found: ...         # AWS errors other than "not found" propagate


class Step(ABC, Generic[C]):
    """One unit of an operation, over the operation's context type ``C``."""

    name: ClassVar[str]
    title: ClassVar[str]
    expected_seconds: ClassVar[float]
    best_effort: ClassVar[bool] = False   # failure is recorded as "not confirmed", never fatal
    converges: ClassVar[bool] = True      # has a target state; False: verify/notify/observe
    marks_done: ClassVar[bool] = False    # all such steps done: the operation is already done
    # The change the run hurries to (at most one per plan, e.g. the promotion the rest waits
    # for): its apply sets ``ctx.critical_sent`` right after sending the request; until then,
    # when it is in the plan's first waited-for stage, work off the way to it waits
    # (RunContext.critical_sent).
    critical: ClassVar[bool] = False

    @abstractmethod
    def check(self, ctx: C) -> Verdict: ...

    def touches(self, ctx: C) -> tuple[Touched, ...]:
        """The resources this step changes or needs, read by the preflight before the first
        change. Empty: nothing a missing resource would break, or best effort on a region
        that may not answer."""
        return ()

    def write_ahead(self, ctx: C) -> None:
        """Called just before the runner saves this step's write-ahead record (a
        ``converges`` step whose check said ``run``): facts recorded here without ``save``
        go into that same journal write, so a fact a resumed run must know before the change
        is asked for costs no write of its own. Default: nothing."""

    @abstractmethod
    def apply(self, ctx: C) -> str: ...


@dataclass(frozen=True)
class Stage(Generic[C]):
    """Steps that run together (in threads when more than one). A background stage is
    started and not waited for until the end of the run (it never blocks what follows)."""

    steps: tuple[Step[C], ...]
    background: bool = False


def all_steps(plan: tuple[Stage[C], ...]) -> list[Step[C]]:
    return [step for stage in plan for step in stage.steps]


def hurries(plan: tuple[Stage[C], ...]) -> bool:
    """A :attr:`Step.critical` step is among the first the run waits for: the run then
    hurries to its request, and the work off the way to it (the other steps, notifications,
    clients of later steps) starts once it is sent. A critical step further down the plan (a
    switchover's promotion after fencing) holds nothing back."""
    first = next((stage for stage in plan if not stage.background), None)
    return first is not None and any(step.critical for step in first.steps)


def critical_path_seconds(plan: tuple[Stage[C], ...]) -> float:
    """Expected duration: the longest step of each waited-for stage, summed."""
    return sum(max(s.expected_seconds for s in stage.steps) for stage in plan
               if not stage.background)
