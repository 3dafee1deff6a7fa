"""Bookings and tovholdere as durable SQL records, each test on SQLite and on PostgreSQL: they
survive a Redis flush, two bookers never share a slot (new bookings and moves alike), one citizen
cannot reach another's booking, and the one-time import from Redis loses nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from booking_helpers import MONDAY, at, request
from conftest import asgi_gateway, gateway_settings
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import create_engine, delete, func, select

from actions import booking as booking_actions
from actions import context
from indgang import insight, keys
from indgang.booking import (
    Booking,
    BookingState,
    Slot,
    SlotUnavailable,
    book,
    calendar_for,
    cancel_booking,
    directory,
    find_active_booking,
    get_booking,
    list_bookings,
    load_directory,
    mark_no_show,
    move_booking,
    tovholdere_for,
)
from indgang.booking.bookings import keep_until
from indgang.records.db import Database, sync_url
from indgang.records.import_redis import import_all, import_bookings
from indgang.records.models import Base, BookingRow, TovholderRow
from indgang.settings import Settings
from indgang.staff import audit
from indgang.staff.accounts import Role, add_account, authenticate

pytestmark = pytest.mark.anyio

VICTIM, ATTACKER = "+4520555111", "+4520666222"


async def _slot(db: Database, settings: Settings, tovholder: str, day: int, hour: int) -> Slot:
    person = (await calendar_for(db, settings)).directory.get(tovholder)
    assert person is not None
    return Slot(person, at(day, hour))


# --- the tovholdere ---------------------------------------------------------------------------


async def test_the_tovholdere_are_seeded_from_the_yaml_file_once(
    db: Database, base_settings: Settings
) -> None:
    seed = load_directory(base_settings.tovholdere_file)
    found = await directory(db, base_settings)
    assert sorted(t.id for t in found.tovholdere) == sorted(t.id for t in seed.tovholdere)
    assert found.get("mette") == seed.get("mette")  # hours, areas and kinds come back whole
    # A change made in the database stands: the file seeds an empty table only.
    async with db.transaction() as session:
        await session.execute(delete(TovholderRow).where(TovholderRow.id != "mette"))
    assert [t.id for t in (await directory(db, base_settings)).tovholdere] == ["mette"]


# --- durable: a Redis flush loses no booking --------------------------------------------------


async def test_bookings_accounts_and_the_audit_log_survive_a_redis_flush(
    db: Database, redis: aioredis.Redis, base_settings: Settings
) -> None:
    await add_account(db, redis, "anne", "et langt og godt kodeord", role=Role.ADMIN, display_name="Anne")
    await audit.record(db, "anne", "bookings")
    kept = await book(
        db, redis, base_settings, await _slot(db, base_settings, "mette", 4, 10), request(), MONDAY
    )
    gone = await book(
        db,
        redis,
        base_settings,
        await _slot(db, base_settings, "lars", 5, 10),
        request("c2", ATTACKER),
        MONDAY,
    )
    await cancel_booking(db, redis, gone.id, by="citizen", now=MONDAY)

    await redis.flushdb()

    assert await get_booking(db, kept.id) == kept
    assert [(b.id, b.state) for b in await list_bookings(db)] == [
        (kept.id, BookingState.CONFIRMED),
        (gone.id, BookingState.CANCELLED),
    ]
    assert await find_active_booking(db, base_settings, "conv-1", now=MONDAY) == kept
    calendar = await calendar_for(db, base_settings)
    free = await calendar.free_slots(db, [calendar.directory.get("mette")], MONDAY)
    assert at(4, 10) not in {s.start for s in free}  # the slot stays taken
    with pytest.raises(SlotUnavailable):
        await book(
            db, redis, base_settings, await _slot(db, base_settings, "mette", 4, 10), request("c3"), MONDAY
        )
    people, own = await tovholdere_for(db, base_settings, kept.phone)
    assert own and [p.id for p in people] == ["mette"]  # the citizen keeps their tovholder
    assert await authenticate(db, "anne", "et langt og godt kodeord") is not None
    assert [e.action for e in await audit.entries(db)] == ["bookings"]


# --- one slot, one citizen, under concurrency ---------------------------------------------------


async def test_two_moves_racing_for_one_free_slot_leave_it_to_one(
    db: Database, redis: aioredis.Redis, base_settings: Settings
) -> None:
    """Moves take a slot by the same unique index as new bookings: of bookings moved at once to
    the same time (from separate pools, as separate processes would), exactly one gets it."""
    mine = [
        await book(
            db,
            redis,
            base_settings,
            await _slot(db, base_settings, "sofie", 4, hour),
            request(f"m{hour}", f"+45201000{hour:02d}"),
            MONDAY,
        )
        for hour in (8, 9, 10, 11)
    ]
    pools = [Database(db.url) for _ in mine]

    async def move(pool: Database, booking: Booking) -> str | None:
        try:
            moved = await move_booking(
                pool, redis, base_settings, booking.id, at(6, 10), by="citizen", now=MONDAY
            )
        except SlotUnavailable:
            return None
        return moved.id if moved else None

    try:
        results = await asyncio.gather(*(move(pool, b) for pool, b in zip(pools, mine, strict=True)))
    finally:
        for pool in pools:
            await pool.aclose()
    [winner] = [r for r in results if r]
    at_ten = [b for b in await list_bookings(db) if b.start == at(6, 10)]
    assert [b.id for b in at_ten] == [winner]
    losers = [b for b in mine if b.id != winner]
    for loser in losers:  # kept their times
        assert (await get_booking(db, loser.id)).start == loser.start


async def test_a_cancelled_booking_frees_its_slot_but_the_record_stays(
    db: Database, redis: aioredis.Redis, base_settings: Settings
) -> None:
    slot = await _slot(db, base_settings, "karim", 5, 12)
    first = await book(db, redis, base_settings, slot, request("a"), MONDAY)
    await cancel_booking(db, redis, first.id, by="staff", now=MONDAY)
    second = await book(db, redis, base_settings, slot, request("b", ATTACKER), MONDAY)
    async with db.transaction() as session:
        rows = (
            await session.execute(select(BookingRow.id, BookingRow.state).order_by(BookingRow.created_at))
        ).all()
    assert sorted(rows) == sorted([(first.id, "cancelled"), (second.id, "confirmed")])


# --- no-shows -----------------------------------------------------------------------------------


async def test_no_shows_reach_the_insight_page_by_the_week_of_the_meeting(
    db: Database, redis: aioredis.Redis, base_settings: Settings
) -> None:
    slots = [("mette", day) for day in (4, 5, 6, 7)] + [("lars", day) for day in (4, 5)]
    booked = []
    for n, (who, day) in enumerate(slots):  # six citizens, each with a phone of their own
        slot = await _slot(db, base_settings, who, day, 10)
        booked.append(await book(db, redis, base_settings, slot, request(f"c{n}", f"+452055500{n}"), MONDAY))
    week = insight.week_of(at(4, 10).date())
    for booking in booked:
        assert await mark_no_show(db, booking.id, True, now=at(8, 12)) is not None
    found = await insight.figures(db, at(3, 0).date(), at(9, 0).date())
    [bookings] = [t for t in found.tables if t.key == "bookings"]
    assert [row.values[2] for row in bookings.rows if row.label == week] == [6]
    await mark_no_show(db, booked[0].id, False, now=at(8, 12))  # a mark undone is not counted
    await mark_no_show(db, booked[1].id, False, now=at(8, 12))
    found = await insight.figures(db, at(3, 0).date(), at(9, 0).date())
    [bookings] = [t for t in found.tables if t.key == "bookings"]
    assert [row.values[2] for row in bookings.rows if row.label == week] == [None]  # 4: shown as <5


async def test_staff_mark_a_no_show_only_once_the_meeting_has_begun(
    db: Database, redis: aioredis.Redis, base_settings: Settings
) -> None:
    booking = await book(
        db, redis, base_settings, await _slot(db, base_settings, "mette", 4, 10), request(), MONDAY
    )
    assert await mark_no_show(db, booking.id, True, now=MONDAY) is None  # not yet
    marked = await mark_no_show(db, booking.id, True, now=at(4, 10, 15))
    assert marked is not None and marked.no_show
    assert (await get_booking(db, booking.id)).no_show
    assert not (await mark_no_show(db, booking.id, False, now=at(4, 11))).no_show
    assert await mark_no_show(db, "bk_0000000000000000", True, now=at(4, 11)) is None


# --- attacks: identity comes from the channel ---------------------------------------------------


def _tracker(sender: str, channel: str, phone: str, slots: dict[str, Any] | None = None) -> Tracker:
    return Tracker.from_dict(
        {
            "sender_id": sender,
            "slots": slots or {},
            "latest_message": {
                "text": "AFLYS",
                "intent": {"name": "cancel_booking", "confidence": 0.95},
                "entities": [],
                "metadata": {"language": "da", "channel": channel, "phone": phone},
            },
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        }
    )


async def test_another_citizen_can_neither_find_nor_cancel_a_booking(
    db: Database, redis: aioredis.Redis, base_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The victim booked by SMS. The attacker writes AFLYS from their own web chat with the
    victim's number in the metadata and the form's phone slot, and from their own phone by SMS:
    the cancel action finds nothing either way, and the victim's booking stays confirmed."""
    monkeypatch.setattr(context, "redis", lambda: redis)
    monkeypatch.setattr(context, "db", lambda: db)
    monkeypatch.setattr(context, "settings", lambda: base_settings)
    victim = await book(
        db,
        redis,
        base_settings,
        await _slot(db, base_settings, "mette", 4, 10),
        request("sms-victim", VICTIM, "sms"),
        MONDAY,
    )
    assert await find_active_booking(db, base_settings, "web-attacker", now=MONDAY) is None
    assert await find_active_booking(db, base_settings, "sms-attacker", ATTACKER, now=MONDAY) is None

    for attempt in (
        _tracker("web-attacker-000000000001", "web", VICTIM, {"booking_phone": VICTIM}),
        _tracker("sms-attacker", "sms", ATTACKER),
    ):
        dispatcher = CollectingDispatcher()
        await booking_actions.ActionBookingCancel().run(dispatcher, attempt, {})
        assert "Mette" not in " ".join(m.get("text") or "" for m in dispatcher.messages)
    assert (await get_booking(db, victim.id)).state == BookingState.CONFIRMED
    # The victim themselves, by SMS from their number, can.
    assert await find_active_booking(db, base_settings, "sms-other-thread", VICTIM) == victim


async def test_the_calendar_file_needs_the_bookings_own_token(
    db: Database, redis: aioredis.Redis, base_settings: Settings
) -> None:
    """The .ics link is the only key to a booking outside the chat: another booking's token, or
    a guessed id, opens nothing (the same 404 for both)."""
    settings = gateway_settings(base_settings).model_copy(update={"database_url": db.url})
    mine = await book(db, redis, settings, await _slot(db, settings, "mette", 4, 10), request(), MONDAY)
    theirs = await book(
        db, redis, settings, await _slot(db, settings, "lars", 4, 10), request("c2", ATTACKER), MONDAY
    )
    async with asgi_gateway(settings) as client:
        own = await client.get(f"/api/v1/bookings/{mine.id}.ics", params={"token": mine.token})
        assert own.status_code == 200 and own.headers["content-type"].startswith("text/calendar")
        assert f"UID:{mine.id}@indgang" in own.text
        crossed = await client.get(f"/api/v1/bookings/{theirs.id}.ics", params={"token": mine.token})
        guessed = await client.get("/api/v1/bookings/bk_00000000000000ff.ics", params={"token": mine.token})
    assert crossed.status_code == guessed.status_code == 404
    assert crossed.json() == guessed.json()


# --- the one-time move from Redis ---------------------------------------------------------------


async def _legacy_booking(redis: aioredis.Redis, booking: Booking, expire_at: int) -> None:
    """A booking as the Redis store before SQL wrote it: a hash of its fields with an expiry, in
    the index, with its SMS queued."""
    values = booking.model_dump(mode="json", exclude_none=True)
    values |= {"token": booking.token, "start_epoch": int(booking.start.timestamp())}
    await redis.hset(keys.booking(booking.id), mapping={k: str(v) for k, v in values.items()})
    await redis.expireat(keys.booking(booking.id), expire_at)
    await redis.zadd(keys.booking_notifications(), {f"reminder:{booking.id}": int(at(4, 10).timestamp())})


def _legacy(booking_id: str, state: BookingState, day: int, **extra: Any) -> Booking:
    return Booking(
        **request(f"conv-{booking_id}", f"+4520{int(booking_id[-4:], 16):06d}", "sms").model_dump(),
        id=booking_id,
        state=state,
        tovholder="mette",
        tovholder_name="Mette",
        team="Socialpsykiatri",
        start=at(day, 10),
        end=at(day, 11),
        created_at=MONDAY,
        updated_at=MONDAY,
        token=f"token-{booking_id}",
        **extra,
    )


async def test_the_import_moves_every_booking_once_and_they_outlive_redis(
    db: Database, redis: aioredis.Redis, base_settings: Settings
) -> None:
    confirmed = _legacy("bk_00000000000000a1", BookingState.CONFIRMED, 5)
    moved = _legacy("bk_00000000000000a2", BookingState.CONFIRMED, 6, moved_from=at(4, 10))
    cancelled = _legacy("bk_00000000000000a3", BookingState.CANCELLED, 5, cancelled_by="staff")
    expire_at = int((at(6, 11) + timedelta(days=30)).timestamp())
    for legacy in (confirmed, moved, cancelled):
        await _legacy_booking(redis, legacy, expire_at)

    first = (await import_all(db, redis, base_settings))["bookings"]
    assert (first.found, first.added, first.conflicts) == (3, 3, [])
    again = await import_bookings(db, redis, base_settings)
    assert (again.found, again.added) == (3, 0)  # run twice: the same records
    async with db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(BookingRow)) == 3
        kept = await session.scalar(select(BookingRow.keep_until).where(BookingRow.id == confirmed.id))
    assert int(kept.timestamp()) == expire_at  # the retention the citizen agreed to

    await redis.flushdb()
    for legacy in (confirmed, moved, cancelled):
        assert await get_booking(db, legacy.id) == legacy  # every field, the .ics token too
    assert await find_active_booking(db, base_settings, "conv-x", confirmed.phone, now=MONDAY) == confirmed
    with pytest.raises(SlotUnavailable):  # an imported confirmed booking holds its slot
        await book(
            db, redis, base_settings, await _slot(db, base_settings, "mette", 5, 10), request("new"), MONDAY
        )


async def test_a_legacy_booking_whose_slot_was_taken_in_sql_is_named_not_lost(
    db: Database, redis: aioredis.Redis, base_settings: Settings
) -> None:
    taken = await book(
        db, redis, base_settings, await _slot(db, base_settings, "mette", 5, 10), request(), MONDAY
    )
    legacy = _legacy("bk_00000000000000b1", BookingState.CONFIRMED, 5)
    await _legacy_booking(redis, legacy, int((at(6, 11) + timedelta(days=30)).timestamp()))
    result = await import_bookings(db, redis, base_settings)
    assert (result.found, result.added, result.conflicts) == (1, 0, [legacy.id])
    assert legacy.id in str(result)
    assert await redis.exists(keys.booking(legacy.id))  # still there for staff to settle
    assert (await get_booking(db, taken.id)).state == BookingState.CONFIRMED


def test_keep_until_is_never_before_the_meeting_is_over(base_settings: Settings) -> None:
    short = base_settings.model_copy(update={"conversation_ttl_seconds": 60})
    assert keep_until(short, at(20, 11), MONDAY) == at(21, 11)


async def test_the_migrations_build_the_tables_the_models_describe(db: Database) -> None:
    """Migration 0002 is written by hand: the schema it builds is the models', on both backends
    (the partial unique index of confirmed slots included)."""
    engine = create_engine(sync_url(db.url))
    try:
        with engine.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    finally:
        engine.dispose()
