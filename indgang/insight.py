"""Insight for the municipality: what citizens ask for, what no offer fits, how long they wait
for a person, and whether help came, as counts only.

Each count is kept per local day, channel (sms or web), metric and category in SQL
(records.models.InsightCount): never a word, a number or a conversation id. Recording goes
through `Insight.count`, which never holds up or breaks a citizen's turn: the write runs in a
task of its own, and a slow or failing database is logged and the count dropped.

Reading (`figures`) gives the tables of the insight page with small cells already suppressed: a
count under SUPPRESS_BELOW conversations is shown as "<5" (None here), zero included, so "<5"
never tells that somebody was there. A share or a waiting time is suppressed when it rests on
fewer conversations than that.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from indgang.records.db import Database
from indgang.records.models import BookingRow, InsightCount

log = logging.getLogger(__name__)

SUPPRESS_BELOW = 5
CHANNELS = ("sms", "web")
UNKNOWN_THEME = "ukendt"
# Upper bounds (seconds) of the handoff waiting-time histogram; a wait beyond the last is "longer".
WAIT_BUCKETS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)
LONGER = "longer"
MAX_PENDING = 1000  # counts waiting for the database; beyond, a count is dropped (and logged)
WRITE_TIMEOUT_SECONDS = 10.0
MAX_RANGE_DAYS = 366
DEFAULT_RANGE_DAYS = 30


class Metric(StrEnum):
    CONVERSATION = "conversation"  # a conversation's first message; no category
    NEED = "need"  # a guidance turn, by the type of the first offer shown
    UNMET = "unmet"  # a need no offer fitted well, by theme (the need classifier's guess)
    HANDOFF_WAIT = "handoff_wait"  # a request for a person taken by staff, by waiting-time bucket
    CRISIS = "crisis"  # an alarm of the safety check, by risk (acute or concern)
    BOOKING_MADE = "booking_made"  # no category
    BOOKING_CANCELLED = "booking_cancelled"  # no category
    FOLLOWUP = "followup"  # "<offer type>:<yes|no|partly>"
    SATISFACTION = "satisfaction"  # the score, 1-5


def wait_bucket(seconds: float) -> str:
    return next((str(bound) for bound in WAIT_BUCKETS if seconds <= bound), LONGER)


def channel_of(channel: str) -> str:
    return "sms" if channel == "sms" else "web"


async def increment(
    db: Database, day: date, channel: str, metric: Metric, category: str = "", by: int = 1
) -> None:
    """Add `by` to one count, atomically (two processes counting at once both count)."""
    insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
    statement = insert(InsightCount).values(
        day=day, channel=channel_of(channel), metric=metric.value, category=category[:80], count=by
    )
    statement = statement.on_conflict_do_update(
        index_elements=["day", "channel", "metric", "category"],
        set_={"count": InsightCount.count + statement.excluded.count},
    )
    async with db.transaction() as session:
        await session.execute(statement)


class Insight:
    """The recorder a process holds: `count` returns at once; the write runs in its own task."""

    def __init__(self, db: Database | None, timezone: str, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.zone = ZoneInfo(timezone)
        self.clock = clock  # the gateway's clock, so a test that moves time counts on that day
        self._pending: set[asyncio.Task[None]] = set()

    def today(self) -> date:
        return datetime.fromtimestamp(self.clock(), self.zone).date()

    def count(self, metric: Metric, channel: str, category: str = "") -> None:
        if self.db is None:
            return
        if len(self._pending) >= MAX_PENDING:
            log.warning("insight: too many counts wait for the database; dropped", extra={"metric": metric})
            return
        task = asyncio.get_running_loop().create_task(self._write(self.today(), channel, metric, category))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def handoff_taken(self, channel: str, waited_seconds: float) -> None:
        self.count(Metric.HANDOFF_WAIT, channel, wait_bucket(max(0.0, waited_seconds)))

    def followup_answered(self, channel: str, types: Iterable[str], outcome: str) -> None:
        for offer_type in sorted(set(types)):
            self.count(Metric.FOLLOWUP, channel, f"{offer_type}:{outcome}")

    async def _write(self, day: date, channel: str, metric: Metric, category: str) -> None:
        assert self.db is not None
        try:
            await asyncio.wait_for(increment(self.db, day, channel, metric, category), WRITE_TIMEOUT_SECONDS)
        except Exception as exc:  # a count is never worth a citizen's turn, whatever went wrong
            log.warning("insight: count not recorded", extra={"metric": metric, "error": type(exc).__name__})

    async def settled(self) -> None:
        """Wait for the counts under way (tests; and on shutdown, so none is lost)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def aclose(self) -> None:
        await self.settled()


# --- reading: the page's tables, small cells suppressed -------------------------------------------


Shown = int | None  # None: fewer than SUPPRESS_BELOW conversations behind it ("<5")


def shown(count: int) -> Shown:
    return count if count >= SUPPRESS_BELOW else None


def share(part: int, whole: int) -> Shown:
    """A percentage, suppressed when it rests on too few conversations."""
    return round(100 * part / whole) if whole >= SUPPRESS_BELOW else None


@dataclass(frozen=True)
class Row:
    label: str  # a day or week (ISO), an offer type or theme id, a score
    values: tuple[Shown, ...]


@dataclass(frozen=True)
class Table:
    key: str  # the figure, and its texts: staff.insight.<key>
    label_kind: str  # day, week, type, theme or score: how the page names a row
    columns: tuple[str, ...]  # column keys (staff.insight.columns.<key>)
    units: tuple[str, ...]  # per column: count, percent or seconds (a bucket's upper bound)
    charted: tuple[int, ...]  # the columns the chart draws
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Figures:
    start: date
    end: date
    tables: tuple[Table, ...]


def default_range(today: date) -> tuple[date, date]:
    return today - timedelta(days=DEFAULT_RANGE_DAYS - 1), today


def week_of(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _weeks(start: date, end: date) -> list[str]:
    return list(dict.fromkeys(week_of(start + timedelta(days=n)) for n in range((end - start).days + 1)))


def percentile_bucket(histogram: dict[str, int], fraction: float) -> Shown:
    """The upper bound (seconds) of the bucket holding the `fraction` quantile; a wait beyond the
    last bucket counts as twice the last bound. None when too few were measured."""
    total = sum(histogram.values())
    if total < SUPPRESS_BELOW:
        return None
    bounds = [*map(str, WAIT_BUCKETS), LONGER]
    seen = 0
    for bound in bounds:
        seen += histogram.get(bound, 0)
        if seen >= fraction * total:
            return int(bound) if bound != LONGER else 2 * WAIT_BUCKETS[-1]
    return 2 * WAIT_BUCKETS[-1]


async def _counts(db: Database, start: date, end: date) -> list[tuple[date, str, str, str, int]]:
    query = (
        select(InsightCount.day, InsightCount.channel, InsightCount.metric, InsightCount.category,
               func.sum(InsightCount.count))
        .where(InsightCount.day >= start, InsightCount.day <= end)
        .group_by(InsightCount.day, InsightCount.channel, InsightCount.metric, InsightCount.category)
    )  # fmt: skip
    async with db.transaction() as session:
        return [(d, ch, m, cat, int(n)) for d, ch, m, cat, n in await session.execute(query)]


def _by_category(counts: list[tuple[date, str, str, str, int]], metric: Metric) -> dict[str, int]:
    totals: dict[str, int] = {}
    for _day, _channel, m, category, n in counts:
        if m == metric:
            totals[category] = totals.get(category, 0) + n
    return totals


def _ranked(totals: dict[str, int]) -> tuple[Row, ...]:
    ordered = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    return tuple(Row(category, (shown(n),)) for category, n in ordered)


async def _no_shows(db: Database, start: date, end: date) -> dict[str, int]:
    """No-shows by the week of the meeting (local day), from the bookings staff marked: the
    booking record itself is the count, so a mark undone is no longer counted."""
    query = select(BookingRow.starts_at, BookingRow.timezone).where(
        BookingRow.no_show.is_(True),
        BookingRow.starts_at >= datetime.combine(start - timedelta(days=1), datetime.min.time(), UTC),
        BookingRow.starts_at < datetime.combine(end + timedelta(days=2), datetime.min.time(), UTC),
    )
    weeks: dict[str, int] = {}
    async with db.transaction() as session:
        for starts_at, zone in await session.execute(query):
            day = starts_at.astimezone(ZoneInfo(zone)).date()
            if start <= day <= end:
                weeks[week_of(day)] = weeks.get(week_of(day), 0) + 1
    return weeks


async def figures(db: Database, start: date, end: date) -> Figures:
    counts = await _counts(db, start, end)
    no_shows = await _no_shows(db, start, end)
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    weeks = _weeks(start, end)

    per_day: dict[tuple[date, str], int] = {}
    per_week: dict[tuple[str, str, str], int] = {}
    waits: dict[str, dict[str, int]] = {week: {} for week in weeks}
    for day, channel, metric, category, n in counts:
        if metric == Metric.CONVERSATION:
            per_day[day, channel] = per_day.get((day, channel), 0) + n
        week = week_of(day)
        per_week[week, metric, category] = per_week.get((week, metric, category), 0) + n
        if metric == Metric.HANDOFF_WAIT:
            waits[week][category] = waits[week].get(category, 0) + n

    def weekly(*series: tuple[Metric, str]) -> tuple[Row, ...]:
        return tuple(Row(w, tuple(shown(per_week.get((w, m, c), 0)) for m, c in series)) for w in weeks)

    outcomes: dict[str, dict[str, int]] = {}
    for key, n in _by_category(counts, Metric.FOLLOWUP).items():
        offer_type, _, outcome = key.rpartition(":")
        outcomes.setdefault(offer_type, {})[outcome] = n
    answered = {offer_type: sum(o.values()) for offer_type, o in outcomes.items()}
    scores = _by_category(counts, Metric.SATISFACTION)
    count, counts2 = ("count",), ("count", "count")  # the units of one and of two count columns

    return Figures(
        start,
        end,
        (
            Table(
                "conversations", "day", CHANNELS, counts2, (0, 1),
                tuple(Row(d.isoformat(), tuple(shown(per_day.get((d, c), 0)) for c in CHANNELS))
                      for d in days),
            ),
            Table("needs", "type", ("turns",), count, (0,), _ranked(_by_category(counts, Metric.NEED))),
            Table("unmet", "theme", ("turns",), count, (0,), _ranked(_by_category(counts, Metric.UNMET))),
            Table(
                "waits", "week", ("handoffs", "p50", "p95"), ("count", "seconds", "seconds"), (1, 2),
                tuple(
                    Row(w, (shown(sum(waits[w].values())), percentile_bucket(waits[w], 0.5),
                            percentile_bucket(waits[w], 0.95)))
                    for w in weeks
                ),
            ),
            Table(
                "crises", "week", ("acute", "concern"), counts2, (0, 1),
                weekly((Metric.CRISIS, "acute"), (Metric.CRISIS, "concern")),
            ),
            Table(
                "bookings", "week", ("made", "cancelled", "no_show"), ("count",) * 3, (0, 1, 2),
                tuple(
                    Row(row.label, (*row.values, shown(no_shows.get(row.label, 0))))
                    for row in weekly((Metric.BOOKING_MADE, ""), (Metric.BOOKING_CANCELLED, ""))
                ),
            ),
            Table(
                "followup", "type", ("answers", "got_help", "partly"), ("count", "percent", "percent"), (1,),
                tuple(
                    Row(t, (shown(answered[t]), share(o.get("yes", 0), answered[t]),
                            share(o.get("partly", 0), answered[t])))
                    for t, o in sorted(outcomes.items(), key=lambda item: (-answered[item[0]], item[0]))
                ),
            ),
            Table(
                "satisfaction", "score", ("answers",), count, (0,),
                tuple(Row(str(score), (shown(scores.get(str(score), 0)),)) for score in range(1, 6)),
            ),
        ),
    )  # fmt: skip
