"""Opening hours from configuration, and what a citizen waiting for a person is told."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from indgang.opening_hours import OpeningHours, OpeningHoursError, waiting_notice
from indgang.settings import Settings

CPH = ZoneInfo("Europe/Copenhagen")
HOURS = "mon-thu 08:00-15:00; fri 8-13"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in the week of Monday 2026-11-23, local time."""
    return datetime(2026, 11, 23 + day, hour, minute, tzinfo=CPH)


def test_open_within_the_hours_of_the_day() -> None:
    hours = OpeningHours.parse(HOURS, "Europe/Copenhagen")
    assert hours.is_open(at(0, 8)) and hours.is_open(at(3, 14, 59))
    assert not hours.is_open(at(0, 7, 59)) and not hours.is_open(at(0, 15))
    assert hours.is_open(at(4, 12, 30)) and not hours.is_open(at(4, 13))
    assert not hours.is_open(at(5, 10))  # Saturday


def test_the_next_opening_skips_closed_days() -> None:
    hours = OpeningHours.parse(HOURS, "Europe/Copenhagen")
    assert hours.next_opening(at(4, 14)) == at(7, 8)  # Friday afternoon -> Monday 08:00
    assert hours.next_opening(at(1, 6)) == at(1, 8)
    assert hours.next_opening(at(1, 9)) == at(2, 8)
    assert OpeningHours.parse("", "Europe/Copenhagen").next_opening(at(0, 9)) is None


@pytest.mark.parametrize("bad", ["monday 8-15", "mon 15-8", "mon-xyz 8-15", "mon 25-26", "mon 8:75-9"])
def test_unreadable_hours_are_a_clear_error(bad: str) -> None:
    with pytest.raises(OpeningHoursError):
        OpeningHours.parse(bad, "Europe/Copenhagen")


def test_a_waiting_citizen_hears_the_queue_when_open_and_the_next_opening_when_closed() -> None:
    settings = Settings(_env_file=None, staff_opening_hours=HOURS)
    open_notice = waiting_notice(settings, "da", 3, now=at(0, 10))
    assert "nummer 3 i køen" in open_notice and "112" not in open_notice
    closed = waiting_notice(settings, "da", 1, now=at(4, 20))
    assert "lukket" in closed and "mandag" in closed and "kl. 8.00" in closed and "112" in closed
    english = waiting_notice(settings, "en", 1, now=at(5, 9))
    assert "closed" in english and "Monday" in english and "112" in english
