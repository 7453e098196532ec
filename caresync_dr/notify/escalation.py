"""The escalation path as a function of time: which tiers an incident open so long engages.

The seed plan: on-call engineer 0-15 min, technical lead 15-30, CTO 30-60, CEO after 60 min
or for any data breach. Tiers come from the ``escalationTiers`` setting; a breach engages every
tier at once. Pure functions of the elapsed minutes, so tests drive them with a fake clock.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from caresync_dr.settings import EscalationTier


@dataclass(frozen=True)
class EscalationPath:
    tiers: tuple[EscalationTier, ...]

    def due(self, elapsed_minutes: float, breach: bool = False) -> tuple[EscalationTier, ...]:
        """The tiers an incident open ``elapsed_minutes`` engages (all of them for a breach)."""
        if breach:
            return self.tiers
        return tuple(t for t in self.tiers if t.after_minutes <= elapsed_minutes)

    def newly_due(self, elapsed_minutes: float, engaged: Collection[str],
                  breach: bool = False) -> tuple[EscalationTier, ...]:
        return tuple(t for t in self.due(elapsed_minutes, breach) if t.name not in engaged)

    def next_tier(self, engaged: Collection[str]) -> EscalationTier | None:
        return next((t for t in self.tiers if t.name not in engaged), None)

    def by_name(self, names: Collection[str]) -> tuple[EscalationTier, ...]:
        return tuple(t for t in self.tiers if t.name in names)

    def describe_next(self, engaged: Collection[str]) -> str:
        tier = self.next_tier(engaged)
        if tier is None:
            return "Every tier is engaged."
        return f"Next: {tier.who} at {tier.after_minutes} min."


def who(tiers: Sequence[EscalationTier]) -> str:
    return ", ".join(t.who for t in tiers) or "nobody"
