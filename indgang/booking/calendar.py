"""The tovholdere's calendars: which slots exist (working hours on a fixed grid), which are free
(no confirmed booking in the SQL records), and which to propose to a citizen.

Every slot starts on the grid of its working-hours interval and lasts `booking_slot_minutes`,
so two bookings of one tovholder either share a start (and collide on the database's unique
index of confirmed slots) or do not overlap.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from indgang.booking.tovholdere import Directory, Tovholder, directory
from indgang.records.db import Database
from indgang.records.models import BookingRow
from indgang.settings import Settings


@dataclass(frozen=True)
class Slot:
    tovholder: Tovholder
    start: datetime  # aware, in the calendar's time zone

    @property
    def epoch(self) -> int:
        return int(self.start.timestamp())


class TimeWish(BaseModel):
    """What a citizen asked for in words: a day, a part of the day, or a clock time."""

    model_config = ConfigDict(frozen=True)

    day: date | None = None
    earliest: time | None = None
    latest: time | None = None  # exclusive
    exact: time | None = None

    def matches(self, start: datetime) -> bool:
        if self.day is not None and start.date() != self.day:
            return False
        if self.exact is not None:
            return self.day is not None or start.time() == self.exact
        if self.earliest is not None and start.time() < self.earliest:
            return False
        return self.latest is None or start.time() < self.latest

    def distance(self, start: datetime) -> float:
        """How far a slot is from an asked-for clock time (0 without one): nearest first."""
        if self.exact is None:
            return 0.0
        asked = datetime.combine(start.date(), self.exact, tzinfo=start.tzinfo)
        return abs((start - asked).total_seconds())

    def is_met_by(self, slot: Slot) -> bool:
        """The citizen named this very slot, so it can be booked without asking again."""
        return (
            self.exact is not None
            and slot.start.time() == self.exact
            and (self.day is None or slot.start.date() == self.day)
        )


@dataclass(frozen=True)
class Calendar:
    directory: Directory
    tz: ZoneInfo
    slot_length: timedelta
    min_notice: timedelta
    horizon: timedelta
    reminder_hour: int

    @classmethod
    def from_settings(cls, settings: Settings, tovholdere: Directory) -> Calendar:
        return cls(
            directory=tovholdere,
            tz=ZoneInfo(settings.booking_timezone),
            slot_length=timedelta(minutes=settings.booking_slot_minutes),
            min_notice=timedelta(minutes=settings.booking_min_notice_minutes),
            horizon=timedelta(days=settings.booking_horizon_days),
            reminder_hour=settings.booking_reminder_hour,
        )

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def _grid(self, tovholder: Tovholder, day: date) -> Iterator[datetime]:
        for opens, closes in tovholder.hours_on(day.weekday()):
            start = datetime.combine(day, opens, tzinfo=self.tz)
            end = datetime.combine(day, closes, tzinfo=self.tz)
            while start + self.slot_length <= end:
                yield start
                start += self.slot_length

    def slots(self, tovholder: Tovholder, now: datetime) -> Iterator[datetime]:
        """Every bookable start from now + notice to the horizon, in order."""
        earliest, latest = now + self.min_notice, now + self.horizon
        day = self.local(earliest).date()
        while datetime.combine(day, time.min, tzinfo=self.tz) <= latest:
            for start in self._grid(tovholder, day):
                if earliest <= start <= latest:
                    yield start
            day += timedelta(days=1)

    def is_bookable(self, tovholder: Tovholder, start: datetime, now: datetime) -> bool:
        """On the tovholder's grid, within working hours, notice and horizon (not: whether free)."""
        local = self.local(start)
        return local in set(self._grid(tovholder, local.date())) and (
            now + self.min_notice <= local <= now + self.horizon
        )

    def end_of(self, start: datetime) -> datetime:
        return start + self.slot_length

    def reminder_due(self, start: datetime, now: datetime) -> datetime | None:
        """The day before, at the reminder hour; none when that moment has already passed."""
        day_before = self.local(start).date() - timedelta(days=1)
        due = datetime.combine(day_before, time(self.reminder_hour), tzinfo=self.tz)
        return due if due > now else None

    async def free_slots(self, db: Database, tovholdere: Iterable[Tovholder], now: datetime) -> list[Slot]:
        """Every free slot of these tovholdere, earliest first (ties: the order given)."""
        people = list(tovholdere)
        confirmed = select(BookingRow.tovholder_id, BookingRow.starts_at).where(
            BookingRow.state == "confirmed",
            BookingRow.tovholder_id.in_([person.id for person in people]),
            BookingRow.starts_at >= now,
        )
        async with db.transaction() as session:
            taken = {(who, int(start.timestamp())) for who, start in await session.execute(confirmed)}
        free = [
            Slot(person, start)
            for person in people
            for start in self.slots(person, now)
            if (person.id, int(start.timestamp())) not in taken
        ]
        order = {person.id: rank for rank, person in enumerate(people)}
        return sorted(free, key=lambda s: (s.start, order[s.tovholder.id]))

    async def propose(
        self,
        db: Database,
        tovholdere: Iterable[Tovholder],
        now: datetime,
        count: int = 3,
        wish: TimeWish | None = None,
    ) -> tuple[list[Slot], bool]:
        """Up to `count` free slots at different times, and whether they fit the wish.

        Without a wish: the next ones. With one: those that fit it (nearest to an asked-for
        clock time first); when none fits, the next ones after the wish.
        """
        free = await self.free_slots(db, tovholdere, now)
        fitting = free
        if wish is not None:
            fitting = sorted((s for s in free if wish.matches(s.start)), key=lambda s: wish.distance(s.start))
        met = bool(fitting)
        if not met and wish is not None and wish.day is not None:
            after = datetime.combine(wish.day, wish.earliest or wish.exact or time.min, tzinfo=self.tz)
            fitting = [s for s in free if s.start >= after] or free
        elif not met:
            fitting = free
        chosen: list[Slot] = []
        for slot in fitting:
            if all(slot.start != c.start for c in chosen):
                chosen.append(slot)
            if len(chosen) == count:
                break
        return chosen, met


async def calendar_for(db: Database, settings: Settings) -> Calendar:
    """The calendar of the tovholdere the database holds."""
    return Calendar.from_settings(settings, await directory(db, settings))
