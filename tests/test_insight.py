"""Insight counts (indgang/insight.py): recorded in SQL (each domain test on SQLite and on
PostgreSQL), from the real code paths of the gateway, never breaking a citizen's turn, and read
back with every small cell suppressed."""

from __future__ import annotations

import asyncio
import time
from datetime import date, timedelta

import httpx
import pytest
import redis.asyncio as aioredis
from conftest import asgi_gateway, gateway_settings
from insight_helpers import counted, every_row, wait_counted

from indgang import conversation, handoff, keys
from indgang.devstack import Stack, free_port
from indgang.guidance import Situation, guide
from indgang.inbound import Inbound
from indgang.insight import (
    LONGER,
    UNKNOWN_THEME,
    Insight,
    Metric,
    figures,
    increment,
    percentile_bucket,
    wait_bucket,
)
from indgang.records.db import Database
from indgang.records.import_redis import IMPORTED_SUFFIX, import_all
from indgang.search import get_offer_search
from indgang.settings import Settings
from indgang.staff.accounts import Role, StaffMember
from indgang.staff.console import StaffConsole

pytestmark = pytest.mark.anyio
DAY = date(2026, 11, 2)  # a Monday


def _table(found: object, key: str) -> dict[str, tuple[int | None, ...]]:
    [table] = [t for t in found.tables if t.key == key]  # type: ignore[attr-defined]
    return {row.label: row.values for row in table.rows}


async def test_counts_add_up_when_written_at_once(db: Database) -> None:
    await asyncio.gather(*(increment(db, DAY, "web", Metric.CONVERSATION) for _ in range(20)))
    await increment(db, DAY, "sms", Metric.CONVERSATION, by=3)
    await increment(db, DAY, "telegram", Metric.CONVERSATION)  # an unknown channel counts as web
    assert sorted(await every_row(db)) == [
        (DAY.isoformat(), "sms", "conversation", "", 3),
        (DAY.isoformat(), "web", "conversation", "", 21),
    ]


async def test_every_cell_under_five_is_suppressed_zero_included(db: Database) -> None:
    for n, channel in ((5, "web"), (4, "sms")):
        await increment(db, DAY, channel, Metric.CONVERSATION, by=n)
    await increment(db, DAY, "web", Metric.NEED, "gaeldsraadgivning", by=7)
    await increment(db, DAY, "sms", Metric.NEED, "krisecenter", by=1)
    await increment(db, DAY, "web", Metric.UNMET, UNKNOWN_THEME, by=2)
    await increment(db, DAY, "web", Metric.CRISIS, "acute", by=6)
    await increment(db, DAY, "sms", Metric.SATISFACTION, "5", by=5)
    for outcome, n in (("yes", 3), ("no", 1), ("partly", 1)):  # five answers, three of them "got help"
        await increment(db, DAY, "web", Metric.FOLLOWUP, f"raadgivning:{outcome}", by=n)
    await increment(db, DAY, "web", Metric.FOLLOWUP, "bostoette:yes", by=4)  # four: no share at all

    found = await figures(db, DAY, DAY + timedelta(days=1))
    assert _table(found, "conversations") == {DAY.isoformat(): (None, 5), "2026-11-03": (None, None)}
    assert _table(found, "needs") == {"gaeldsraadgivning": (7,), "krisecenter": (None,)}
    assert _table(found, "unmet") == {UNKNOWN_THEME: (None,)}
    assert _table(found, "crises") == {"2026-W45": (6, None)}
    assert _table(found, "satisfaction") == {**{str(n): (None,) for n in range(1, 5)}, "5": (5,)}
    assert _table(found, "followup") == {"raadgivning": (5, 60, 20), "bostoette": (None, None, None)}
    assert _table(found, "bookings") == {"2026-W45": (None, None, None)}


async def test_the_date_range_takes_in_its_first_and_last_day_only(db: Database) -> None:
    for offset in (-1, 0, 6, 7):
        await increment(db, DAY + timedelta(days=offset), "web", Metric.CONVERSATION, by=10 + offset)
    found = await figures(db, DAY, DAY + timedelta(days=6))
    days = _table(found, "conversations")
    assert list(days) == [(DAY + timedelta(days=n)).isoformat() for n in range(7)]
    assert days[DAY.isoformat()] == (None, 10) and days["2026-11-08"] == (None, 16)
    assert sum(v[1] or 0 for v in days.values()) == 26


async def test_waiting_times_give_p50_and_p95_per_week_from_the_histogram(db: Database) -> None:
    for seconds, n in ((30, 9), (400, 9), (5000, 1), (100_000, 1)):
        await increment(db, DAY, "web", Metric.HANDOFF_WAIT, wait_bucket(seconds), by=n)
    await increment(db, DAY + timedelta(days=7), "sms", Metric.HANDOFF_WAIT, wait_bucket(30), by=4)
    found = _table(await figures(db, DAY, DAY + timedelta(days=7)), "waits")
    assert found == {"2026-W45": (20, 600, 7200), "2026-W46": (None, None, None)}  # four: suppressed
    assert wait_bucket(0) == "60" and wait_bucket(86_401) == LONGER
    assert percentile_bucket({LONGER: 5}, 0.5) == 2 * 86_400


async def test_a_database_that_fails_never_reaches_the_turn() -> None:
    dead = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    insight = Insight(dead, "Europe/Copenhagen")
    started = time.perf_counter()
    for _ in range(50):
        insight.count(Metric.CONVERSATION, "web")
    assert time.perf_counter() - started < 0.05  # nothing waited for the database
    await insight.settled()  # each failure was logged, none raised
    await dead.aclose()


async def test_days_are_the_municipalitys_local_days(db: Database) -> None:
    # 23:30 UTC on 1 November is 00:30 on 2 November in Copenhagen
    moment = time.mktime((2026, 11, 1, 23, 30, 0, 0, 0, 0)) - time.timezone
    insight = Insight(db, "Europe/Copenhagen", clock=lambda: moment)
    insight.count(Metric.CRISIS, "sms", "concern")
    await insight.settled()
    assert await every_row(db) == [(DAY.isoformat(), "sms", "crisis", "concern", 1)]


# --- from the real code paths ----------------------------------------------------------------------


async def test_a_web_chat_turn_counts_a_conversation_once_and_a_crisis_by_its_risk(
    redis: aioredis.Redis, records: Database, base_settings: Settings
) -> None:
    async with asgi_gateway(gateway_settings(base_settings)) as client:
        conv = "web-insight-0123456789abcdef"
        first = await client.post("/api/v1/chat", json={"conversation_id": conv, "text": "Hej"})
        token = {"X-Conversation-Token": first.json()["conversation_token"]}
        await client.post("/api/v1/chat", json={"conversation_id": conv, "text": "Tak"}, headers=token)
        danger = "jeg har taget alle mine piller og vil ikke leve mere"
        said = {"conversation_id": conv, "text": danger}
        crisis = await client.post("/api/v1/chat", json=said, headers=token)
        assert crisis.json()["replies"][0]["crisis"]
        sms = await client.get("/api/v1/crisis-lines")  # no conversation: nothing counted
        assert sms.status_code == 200
    assert await counted(records, Metric.CONVERSATION) == {"": 1}
    assert await counted(records, Metric.CRISIS) == {"acute": 1}
    rows = await every_row(records)
    assert {channel for _, channel, *_ in rows} == {"web"}
    assert not [row for row in rows if conv in repr(row) or "piller" in repr(row)]  # counts only


async def test_staff_taking_a_waiting_request_counts_its_waiting_time(
    redis: aioredis.Redis, records: Database, base_settings: Settings
) -> None:
    insight = Insight(records, base_settings.booking_timezone)
    console = StaffConsole(redis, records, base_settings, engine=None, insight=insight)  # type: ignore[arg-type]
    member = StaffMember(username="mette", role=Role.STAFF, display_name="Mette")
    await conversation.touch(redis, "sms-waiting", "sms", "da", 600)
    await handoff.request_person(redis, "sms-waiting", "sms", 600, reason="request_human")
    await console.take_over("sms-waiting", member)
    await handoff.take(redis, "web-never-asked", "mette", 600)  # taken without a request: no wait
    await insight.settled()
    assert await counted(records, Metric.HANDOFF_WAIT) == {"60": 1}
    assert {row[1] for row in await every_row(records)} == {"sms"}


async def test_a_booking_made_moved_and_cancelled_in_turns_is_counted(
    redis: aioredis.Redis, records: Database, base_settings: Settings
) -> None:
    insight = Insight(records, base_settings.booking_timezone)
    inbound = Inbound(redis, records, engine=None, settings=base_settings, insight=insight)  # type: ignore[arg-type]
    confirmed = {"id": "bk_1", "state": "confirmed"}
    moving = {"id": "bk_1", "state": "collecting"}
    turns = [
        (None, {"id": None, "state": "collecting"}),  # the form starts: nothing yet
        ({"id": None, "state": "collecting"}, confirmed),  # made
        (confirmed, moving),  # a move starts: the booking still holds
        (moving, {"id": "bk_2", "state": "confirmed"}),  # moved: made and cancelled
        ({"id": "bk_2", "state": "confirmed"}, {"id": "bk_2", "state": "cancelled"}),  # cancelled
    ]
    for before, after in turns:
        inbound._count_bookings("web", before, after)
    await insight.settled()
    assert await counted(records, Metric.BOOKING_MADE) == {"": 2}
    assert await counted(records, Metric.BOOKING_CANCELLED) == {"": 2}


def test_guidance_names_the_theme_of_a_need_no_offer_fits(catalogue_settings: Settings) -> None:
    search = get_offer_search(catalogue_settings)
    fitted = guide(search, Situation(text="jeg har stor gæld og kan ikke betale min husleje"))
    assert fitted.offers and fitted.unmet is None
    unknown = guide(search, Situation(text="qwxz plmbr vvvk"))
    assert unknown.unmet is not None
    assert unknown.unmet == UNKNOWN_THEME or unknown.unmet in {o.type for o in search.catalogue.offers}


async def test_the_counts_redis_kept_move_over_once(
    db: Database, redis: aioredis.Redis, base_settings: Settings
) -> None:
    await redis.hset(keys.followup_outcomes(), mapping={"krisecenter:yes": 4, "booking:no": 2})
    await redis.hset(keys.satisfaction_counts(), mapping={"5": 7})
    first = await import_all(db, redis, base_settings, today=DAY)
    assert (first["insight counts"].found, first["insight counts"].added) == (3, 3)
    again = await import_all(db, redis, base_settings, today=DAY)
    assert again["insight counts"].found == 0
    assert await counted(db, Metric.FOLLOWUP) == {"krisecenter:yes": 4, "booking:no": 2}
    assert _table(await figures(db, DAY, DAY), "satisfaction")["5"] == (7,)
    assert await redis.hgetall(keys.satisfaction_counts() + IMPORTED_SUFFIX) == {"5": "7"}  # kept


async def test_a_guidance_turn_on_the_real_stack_counts_its_first_offer_type(stack: Stack) -> None:
    """The action server (its own process) writes to the same records as the gateway."""
    conv = f"web-insight-{time.time_ns()}"
    async with httpx.AsyncClient(timeout=60) as client:
        said = {"conversation_id": conv, "text": "Jeg har svært ved at betale min gæld"}
        answer = await client.post(f"{stack.gateway_url}/api/v1/chat", json=said)
    assert answer.status_code == 200, answer.text
    first_type = next(r["offers"][0]["type"] for r in answer.json()["replies"] if r["offers"])
    url = stack.settings.database_url
    assert (await wait_counted(url, Metric.NEED, first_type)).get(first_type, 0) >= 1
    assert (await wait_counted(url, Metric.CONVERSATION, "")).get("", 0) >= 1
