"""The HIPAA breach-notification clock (45 CFR 164.404-164.408), from the discovery time and the
number of affected individuals the operator supplies.

What the regulation says (45 CFR Part 164 Subpart D, https://www.ecfr.gov/current/title-45/
subtitle-A/subchapter-C/part-164/subpart-D):

* 164.404(a)(2): a breach is treated as **discovered** on the first day it is known to the
  covered entity, or by exercising reasonable diligence would have been known (to any workforce
  member or agent other than the person committing it).
* 164.404(b): individuals are notified **without unreasonable delay and in no case later than 60
  calendar days after discovery** (except a law-enforcement delay, 164.412). The 60 days are an
  outer limit, not a target (HHS commentary, 2013 amendments).
* 164.406: the **media** are notified when a breach involves **more than 500 residents of a
  State or jurisdiction**, within the same 60 days.
* 164.408(b): the **Secretary (HHS)** is notified of a breach involving **500 or more**
  individuals contemporaneously with the individual notice (within the same 60 days);
  164.408(c): breaches of fewer than 500 are logged and reported **within 60 days after the end
  of the calendar year** in which they were discovered.

This module computes the dates and which notices apply; whether an incident *is* a reportable
breach (the four-factor risk assessment of 164.402) is a judgement for the privacy officer and
is recorded as such, never decided here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

REGULATION = ("45 CFR 164.404-164.408 (https://www.ecfr.gov/current/title-45/subtitle-A/"
              "subchapter-C/part-164/subpart-D)")
NOTICE_DAYS = 60
HHS_THRESHOLD = 500            # 164.408(b): "500 or more individuals"
MEDIA_THRESHOLD = 500          # 164.406(a): "more than 500 residents of a State or jurisdiction"


@dataclass(frozen=True)
class HipaaClock:
    """The notification deadlines of one incident. ``affected`` is the operator's count of
    individuals whose PHI may be involved (None: not known yet); ``largest_state`` the most
    residents of any one State or jurisdiction among them (None: not known)."""

    discovered_at: datetime
    affected: int | None = None
    largest_state: int | None = None

    def __post_init__(self) -> None:
        if self.discovered_at.tzinfo is None:
            raise ValueError("discovered_at needs a time zone")
        for name, value in (("affected", self.affected), ("largest_state", self.largest_state)):
            if value is not None and value < 0:
                raise ValueError(f"{name} cannot be negative")
        if (self.affected is not None and self.largest_state is not None
                and self.largest_state > self.affected):
            raise ValueError("largest_state cannot exceed affected")

    @property
    def individual_deadline(self) -> date:
        """The last day individuals may be notified (calendar days from discovery)."""
        return (self.discovered_at.astimezone(UTC) + timedelta(days=NOTICE_DAYS)).date()

    @property
    def hhs_notice(self) -> str:
        if self.affected is None:
            return "undetermined: supply the number of affected individuals (--affected)"
        if self.affected >= HHS_THRESHOLD:
            return (f"required with the individual notices, by {self.individual_deadline} "
                    f"({self.affected} >= {HHS_THRESHOLD} individuals; 164.408(b))")
        year_end = date(self.discovered_at.astimezone(UTC).year, 12, 31)
        return (f"log it; report to HHS by {year_end + timedelta(days=NOTICE_DAYS)} (fewer than "
                f"{HHS_THRESHOLD} individuals: within 60 days after the end of the calendar "
                "year; 164.408(c))")

    @property
    def media_notice(self) -> str:
        if self.largest_state is not None:
            if self.largest_state > MEDIA_THRESHOLD:
                return (f"required by {self.individual_deadline} ({self.largest_state} > "
                        f"{MEDIA_THRESHOLD} residents of one State or jurisdiction; 164.406)")
            return (f"not required ({self.largest_state} <= {MEDIA_THRESHOLD} residents of any "
                    "one State or jurisdiction; 164.406)")
        if self.affected is not None and self.affected <= MEDIA_THRESHOLD:
            return (f"not required ({self.affected} individuals in all, so no State has more "
                    f"than {MEDIA_THRESHOLD}; 164.406)")
        if self.affected is None:
            return "undetermined: supply the number of affected individuals (--affected)"
        return (f"required if more than {MEDIA_THRESHOLD} of the {self.affected} live in one "
                "State or jurisdiction: supply --largest-state (164.406)")

    def days_left(self, now: datetime) -> int:
        """Calendar days until the individual-notice deadline (negative: missed)."""
        return (self.individual_deadline - now.astimezone(UTC).date()).days

    def as_report(self, now: datetime | None = None) -> dict[str, Any]:
        now = now or datetime.now(UTC)
        return {
            "discoveredAt": self.discovered_at.astimezone(UTC).isoformat(),
            "affectedIndividuals": self.affected,
            "largestStateCount": self.largest_state,
            "individualNoticeDeadline": self.individual_deadline.isoformat(),
            "daysLeft": self.days_left(now),
            "hhsNotice": self.hhs_notice,
            "mediaNotice": self.media_notice,
            "note": "whether this is a reportable breach (the risk assessment of 164.402) is "
                    "the privacy officer's decision; the dates apply if it is",
            "regulation": REGULATION,
        }

    def sentence(self, now: datetime | None = None) -> str:
        now = now or datetime.now(UTC)
        return (f"HIPAA clock: discovered {self.discovered_at.astimezone(UTC):%Y-%m-%d %H:%M} "
                f"UTC; notify individuals by {self.individual_deadline} "
                f"({self.days_left(now)} days left); HHS: {self.hhs_notice}; media: "
                f"{self.media_notice}")
