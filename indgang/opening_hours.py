"""When staff answer: the opening hours from configuration, and what a citizen waiting for a
person is told (their place in the queue; outside the hours, when staff answer and the
emergency numbers)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from indgang.booking.texts import when
from indgang.i18n import t
from indgang.safety import crisis_lines
from indgang.settings import Settings

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# "mon-thu 08:00-15:00" or "fri 8-13"
_ENTRY = re.compile(
    r"^(?P<first>[a-z]{3})(?:-(?P<last>[a-z]{3}))?\s+"
    r"(?P<open>\d{1,2}(?::\d{2})?)-(?P<close>\d{1,2}(?::\d{2})?)$"
)


class OpeningHoursError(ValueError):
    """The STAFF_OPENING_HOURS setting cannot be read."""


def _clock(text: str) -> time:
    hour, _, minute = text.partition(":")
    if int(hour) == 24 and int(minute or 0) == 0:
        return time.max  # "until midnight"
    try:
        return time(int(hour), int(minute or 0))
    except ValueError as exc:
        raise OpeningHoursError(f"{text!r} is not a time of day") from exc


@dataclass(frozen=True)
class OpeningHours:
    """Per weekday (0 = Monday) the (open, close) local times; a day without hours is closed."""

    days: dict[int, tuple[time, time]]
    timezone: ZoneInfo

    @classmethod
    def parse(cls, text: str, timezone: str) -> OpeningHours:
        days: dict[int, tuple[time, time]] = {}
        for raw in filter(None, (part.strip() for part in re.split(r"[;,]", text.lower()))):
            entry = _ENTRY.match(raw)
            if entry is None or entry["first"] not in DAYS or (entry["last"] or "mon") not in DAYS:
                raise OpeningHoursError(f"cannot read opening hours {raw!r} (e.g. 'mon-thu 08:00-15:00')")
            first = DAYS.index(entry["first"])
            last = DAYS.index(entry["last"] or entry["first"])
            opens, closes = _clock(entry["open"]), _clock(entry["close"])
            if closes <= opens:
                raise OpeningHoursError(f"closing time before opening time in {raw!r}")
            for day in range(first, last + 1):
                days[day] = (opens, closes)
        return cls(days=days, timezone=ZoneInfo(timezone))

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(self.timezone)
        hours = self.days.get(local.weekday())
        return hours is not None and hours[0] <= local.time() < hours[1]

    def next_opening(self, moment: datetime) -> datetime | None:
        """The next local time staff open after `moment` (None: no hours are configured)."""
        local = moment.astimezone(self.timezone)
        for ahead in range(8):
            day = local.date() + timedelta(days=ahead)
            hours = self.days.get(day.weekday())
            if hours is None:
                continue
            opens = datetime.combine(day, hours[0], tzinfo=self.timezone)
            if opens > local:
                return opens
        return None


@lru_cache
def opening_hours(text: str, timezone: str) -> OpeningHours:
    return OpeningHours.parse(text, timezone)


def staff_hours(settings: Settings) -> OpeningHours:
    return opening_hours(settings.staff_opening_hours, settings.booking_timezone)


def waiting_notice(settings: Settings, language: str, position: int, now: datetime | None = None) -> str:
    """What a citizen who waits for a person reads: the queue, and outside opening hours when
    staff answer and where to call if it cannot wait."""
    hours = staff_hours(settings)
    now = now or datetime.now(hours.timezone)
    if hours.is_open(now):
        return t("staff.notice.queue", language, position=position)
    opening = hours.next_opening(now)
    emergency = crisis_lines(language)[0]
    lines = [
        t("staff.notice.closed", language, when=when(opening, language))
        if opening
        else t("staff.notice.closed_unknown", language),
        t("staff.notice.emergency", language, number=emergency.number),
    ]
    return "\n".join(lines)
