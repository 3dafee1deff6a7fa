"""Reading the insight counts as the tests check them: raw sums, before any suppression."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import select

from indgang.insight import Metric
from indgang.records.db import Database
from indgang.records.models import InsightCount


async def counted(url_or_db: str | Database, metric: Metric) -> dict[str, int]:
    """Category -> count of `metric`, over every day and channel."""
    db = Database(url_or_db) if isinstance(url_or_db, str) else url_or_db
    try:
        async with db.transaction() as session:
            rows = await session.execute(
                select(InsightCount.category, InsightCount.count).where(InsightCount.metric == metric.value)
            )
            totals: dict[str, int] = {}
            for category, count in rows:
                totals[category] = totals.get(category, 0) + count
            return totals
    finally:
        if isinstance(url_or_db, str):
            await db.aclose()


async def every_row(db: Database) -> list[tuple[str, str, str, str, int]]:
    async with db.transaction() as session:
        rows = await session.execute(select(InsightCount))
        return [(r.day.isoformat(), r.channel, r.metric, r.category, r.count) for (r,) in rows]


async def wait_counted(url: str, metric: Metric, category: str, at_least: int = 1) -> dict[str, int]:
    """The counts once `category` reaches `at_least`: a gateway serving in another thread writes
    its counts in tasks of their own, a moment after it answered."""
    deadline = time.monotonic() + 10
    while (found := await counted(url, metric)).get(category, 0) < at_least and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return found
