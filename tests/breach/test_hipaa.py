"""The HIPAA clock: 60 calendar days from discovery; HHS with the individual notices at 500 or
more, else by 60 days after the year ends; the media above 500 residents of one State."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from caresync_dr.breach.hipaa import HipaaClock

DISCOVERED = datetime(2026, 11, 30, 2, 11, tzinfo=UTC)


def test_individuals_within_60_calendar_days_of_discovery() -> None:
    clock = HipaaClock(DISCOVERED)
    assert clock.individual_deadline == date(2027, 1, 29)
    assert clock.days_left(DISCOVERED) == 60
    assert clock.days_left(datetime(2027, 2, 1, tzinfo=UTC)) == -3


def test_the_deadline_counts_from_discovery_in_utc() -> None:
    # 23:30 on the 30th in New York is already the 1st in UTC.
    local = datetime.fromisoformat("2026-11-30T23:30:00-05:00")
    assert HipaaClock(local).individual_deadline == date(2027, 1, 30)


@pytest.mark.parametrize(("affected", "hhs", "media"), [
    (None, "undetermined", "undetermined"),
    (499, "report to HHS by 2027-03-01", "not required (499 individuals in all"),
    (500, "required with the individual notices, by 2027-01-29", "not required (500"),
    (501, "required with the individual notices", "required if more than 500 of the 501"),
])
def test_hhs_and_media_follow_the_count(affected: int | None, hhs: str, media: str) -> None:
    clock = HipaaClock(DISCOVERED, affected=affected)
    assert hhs in clock.hhs_notice
    assert media in clock.media_notice


def test_media_needs_more_than_500_residents_of_one_state() -> None:
    assert "required by 2027-01-29" in HipaaClock(DISCOVERED, 2000, 501).media_notice
    assert "not required" in HipaaClock(DISCOVERED, 2000, 500).media_notice


def test_the_report_names_the_regulation_and_leaves_the_judgement_to_people() -> None:
    report = HipaaClock(DISCOVERED, 12).as_report(DISCOVERED)
    assert report["individualNoticeDeadline"] == "2027-01-29" and report["daysLeft"] == 60
    assert "45 CFR 164.404-164.408" in report["regulation"]
    assert "privacy officer" in report["note"]


def test_impossible_counts_are_refused() -> None:
    with pytest.raises(ValueError):
        HipaaClock(DISCOVERED, 10, 11)
    with pytest.raises(ValueError):
        HipaaClock(DISCOVERED.replace(tzinfo=None))
