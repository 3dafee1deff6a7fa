"""A time in a citizen's own words ("tirsdag eftermiddag", "i morgen kl 10", "27/11") -> TimeWish.

Relative days, weekdays, parts of the day and clock times are read here, because dateparser's
Danish does not understand them well; dateparser reads what is left (dates such as "27/11" or
"27. november").
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

import dateparser

from indgang.booking.calendar import TimeWish

RELATIVE_DAYS = {
    "i overmorgen": 2, "overmorgen": 2, "day after tomorrow": 2,
    "i morgen": 1, "imorgen": 1, "tomorrow": 1,
    "i dag": 0, "idag": 0, "today": 0,
}  # fmt: skip
WEEKDAYS = {
    "mandag": 0, "tirsdag": 1, "onsdag": 2, "torsdag": 3, "fredag": 4, "lørdag": 5, "søndag": 6,
    "loerdag": 5, "soendag": 6, "lordag": 5, "sondag": 6,
    "monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6,
}  # fmt: skip
PARTS_OF_DAY = {
    "eftermiddag": (time(12), time(17)), "formiddag": (time(8), time(12)),
    "morgen": (time(7), time(10)), "middag": (time(11), time(13)), "aften": (time(17), time(21)),
    "afternoon": (time(12), time(17)), "morning": (time(7), time(12)), "evening": (time(17), time(21)),
}  # fmt: skip
CLOCK = re.compile(
    r"\b(?:kl\.?|klokken|at)\s*(?P<h1>\d{1,2})(?:[.:](?P<m1>\d{2}))?(?:\s*(?P<ap1>am|pm))?"
    r"|\b(?P<h2>\d{1,2}):(?P<m2>\d{2})"
    r"|\b(?P<h3>\d{1,2})\s*(?P<ap3>am|pm)\b"
)
NEXT = re.compile(r"\b(?:næste|naeste|next)\b")
DAY_MONTH = re.compile(r"\b(\d{1,2})\.(\d{1,2})\b\.?")  # 3.12 is a date here (clocks are gone)
# Words that carry no time ("på fredag", "next friday", "den 27."): dropped before dateparser.
FILLER = re.compile(
    r"\b(?:på|næste|naeste|kommende|den|d|om|ved|omkring|ca|gerne|helst|on|next|this|the|at|around|"
    r"please|en|et|tid|time|jeg|vil|kan|vi|i)\b\.?"
)


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text.casefold()).strip()


def _clock(text: str) -> tuple[time | None, str]:
    found = CLOCK.search(text)
    if not found:
        return None, text
    hour = int(found["h1"] or found["h2"] or found["h3"])
    minute = int(found["m1"] or found["m2"] or 0)
    if (found["ap1"] or found["ap3"]) == "pm" and hour < 12:
        hour += 12
    if hour > 23 or minute > 59:
        return None, text
    return time(hour, minute), text[: found.start()] + " " + text[found.end() :]


def _take(text: str, phrases: dict[str, object]) -> tuple[object | None, str]:
    """The first phrase found (longest first, whole words, with a Danish definite -en), removed."""
    for phrase in sorted(phrases, key=len, reverse=True):
        found = re.search(rf"\b{re.escape(phrase)}(?:en)?\b", text)
        if found:
            return phrases[phrase], text[: found.start()] + " " + text[found.end() :]
    return None, text


def parse_wish(text: str, now: datetime) -> TimeWish | None:
    """The wish in `text`, relative to `now` (aware, local time); None when it names no time."""
    rest = _words(text)
    if rest.isdigit():
        return None  # a bare number is a choice from a list, not a time
    today = now.date()
    day: date | None = None
    offset, rest = _take(rest, RELATIVE_DAYS)
    if isinstance(offset, int):
        day = today + timedelta(days=offset)
    exact, rest = _clock(rest)
    part, rest = _take(rest, PARTS_OF_DAY)
    weekday, rest = _take(rest, WEEKDAYS)
    if day is None and isinstance(weekday, int):
        ahead = (weekday - today.weekday()) % 7
        day = today + timedelta(days=ahead or (7 if NEXT.search(rest) else 0))
    leftover = FILLER.sub(" ", rest).strip(" .,!?")
    if day is None and leftover:
        day = _date(leftover, now)
    if day is None and exact is None and part is None:
        return None
    earliest, latest = part if isinstance(part, tuple) else (None, None)
    return TimeWish(day=day, earliest=earliest, latest=latest, exact=exact)


def _date(text: str, now: datetime) -> date | None:
    if not re.search(r"\d|[a-zæøå]{3,}", text):
        return None
    parsed = dateparser.parse(
        DAY_MONTH.sub(r"\1/\2", text),
        languages=["da", "en"],
        settings={
            "PREFER_DATES_FROM": "future",
            "RELATIVE_BASE": now.replace(tzinfo=None),
            "DATE_ORDER": "DMY",
            "REQUIRE_PARTS": ["day"],
        },
    )
    return parsed.date() if parsed else None
