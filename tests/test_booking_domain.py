"""Tovholder calendars and bookings as SQL records (indgang.booking), each test on SQLite and on
PostgreSQL, with the form, limits and SMS queue in a real Redis."""

from __future__ import annotations

import asyncio
from datetime import time, timedelta

import pytest
import redis.asyncio as aioredis
from booking_helpers import MONDAY, at, events_of, request

from indgang import keys
from indgang.booking import (
    BookingState,
    Calendar,
    Slot,
    SlotUnavailable,
    TimeWish,
    book,
    cancel_booking,
    current_booking,
    erase_conversation_bookings,
    find_active_booking,
    forget_expired,
    get_booking,
    list_bookings,
    load_directory,
    move_booking,
    start_collecting,
    stop_collecting,
    tovholdere_for,
)
from indgang.records.db import Database
from indgang.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def calendar(base_settings: Settings) -> Calendar:
    return Calendar.from_settings(base_settings, load_directory(base_settings.tovholdere_file))


def slot_of(calendar: Calendar, tovholder: str, day: int, hour: int, minute: int = 0) -> Slot:
    person = calendar.directory.get(tovholder)
    assert person is not None
    return Slot(person, at(day, hour, minute))


async def test_free_slots_follow_working_hours_notice_and_the_grid(
    db: Database, redis: aioredis.Redis, calendar: Calendar
) -> None:
    mette = calendar.directory.get("mette")
    free = await calendar.free_slots(db, [mette], MONDAY)
    # 08:00 + two hours' notice; Monday's hours 09-12 and 12:30-15 on a one-hour grid
    assert [s.start.time() for s in free[:5]] == [time(10), time(11), time(12, 30), time(13, 30), time(9)]
    assert free[4].start.date() == at(4, 9).date()
    assert all(s.start.weekday() < 5 for s in free)
    assert all(s.start - MONDAY <= timedelta(days=21) for s in free)
    assert all(calendar.is_bookable(mette, s.start, MONDAY) for s in free)


async def test_proposals_are_the_next_three_or_what_the_citizen_asked_for(
    db: Database, redis: aioredis.Redis, calendar: Calendar
) -> None:
    mette = calendar.directory.get("mette")
    plain, _ = await calendar.propose(db, [mette], MONDAY)
    assert [s.start for s in plain] == [at(3, 10), at(3, 11), at(3, 12, 30)]

    tuesday_afternoon = TimeWish(day=at(4, 0).date(), earliest=time(12), latest=time(17))
    fitting, met = await calendar.propose(db, [mette], MONDAY, wish=tuesday_afternoon)
    assert met and [s.start for s in fitting] == [at(4, 12, 30), at(4, 13, 30)]

    tomorrow_at_ten = TimeWish(day=at(4, 0).date(), exact=time(10))
    nearest, met = await calendar.propose(db, [mette], MONDAY, wish=tomorrow_at_ten)
    assert met and tomorrow_at_ten.is_met_by(nearest[0])

    saturday = TimeWish(day=at(8, 0).date())
    after, met = await calendar.propose(db, [mette], MONDAY, wish=saturday)
    assert not met and after[0].start == at(10, 9)  # the Monday after


async def test_a_booking_takes_the_slot_and_tells_the_municipality(
    db: Database, redis: aioredis.Redis, base_settings: Settings, calendar: Calendar
) -> None:
    booking = await book(db, redis, base_settings, slot_of(calendar, "mette", 4, 10), request(), now=MONDAY)
    assert booking.state == BookingState.CONFIRMED
    assert (booking.tovholder, booking.start, booking.end) == ("mette", at(4, 10), at(4, 11))
    assert await get_booking(db, booking.id) == booking

    free = await calendar.free_slots(db, [calendar.directory.get("mette")], MONDAY)
    assert at(4, 10) not in [s.start for s in free]

    created = await events_of(redis, "booking.created")
    assert [e["data"]["booking_id"] for e in created] == [booking.id]
    assert created[0]["data"]["slot"] == "2031-03-04T10:00:00+01:00"

    assert await current_booking(db, redis, "conv-1") == {
        "state": "confirmed",
        "id": booking.id,
        "slot": "2031-03-04T10:00:00+01:00",
        "tovholder": "Mette (Socialpsykiatri)",
    }
    # The same phone number later gets the same tovholder, whatever the need.
    people, own = await tovholdere_for(db, base_settings, "+4520123456", areas={"bpa"})
    assert own and [p.id for p in people] == ["mette"]
    others, own = await tovholdere_for(db, base_settings, "+4520999999", areas={"bpa"})
    assert not own and [p.id for p in others] == ["lars"]
    # The phone number itself is not a key anywhere.
    assert not [k async for k in redis.scan_iter("*4520123456*")]


async def test_only_one_of_many_concurrent_bookings_of_a_slot_wins(
    base_settings: Settings, db: Database, redis: aioredis.Redis, calendar: Calendar
) -> None:
    """Eight connection pools (as eight gateways or action servers would have) race for one slot;
    the database's unique index lets exactly one booking in."""
    pools = [Database(db.url) for _ in range(8)]
    slot = slot_of(calendar, "amina", 5, 9, 30)

    async def attempt(i: int) -> str | None:
        citizen = request(conversation_id=f"race-{i}", phone=f"+452012{i:04d}")
        try:
            return (await book(pools[i % len(pools)], redis, base_settings, slot, citizen, now=MONDAY)).id
        except SlotUnavailable:
            return None

    try:
        results = await asyncio.gather(*(attempt(i) for i in range(60)))
    finally:
        for pool in pools:
            await pool.aclose()
    winners = [r for r in results if r]
    assert len(winners) == 1
    assert [b.id for b in await list_bookings(db)] == winners
    assert len(await events_of(redis, "booking.created")) == 1


async def test_slots_outside_the_calendar_cannot_be_booked(
    db: Database, redis: aioredis.Redis, base_settings: Settings, calendar: Calendar
) -> None:
    for day, hour, minute in [(3, 9, 0), (4, 10, 30), (4, 15, 0), (8, 10, 0), (28, 10, 0)]:
        # too soon, off the grid, after hours, a Saturday, beyond the horizon
        with pytest.raises(SlotUnavailable):
            await book(
                db, redis, base_settings, slot_of(calendar, "mette", day, hour, minute), request(), now=MONDAY
            )
    assert await list_bookings(db) == []


async def test_cancelling_frees_the_slot_for_someone_else(
    db: Database, redis: aioredis.Redis, base_settings: Settings, calendar: Calendar
) -> None:
    slot = slot_of(calendar, "lars", 4, 9)
    booking = await book(db, redis, base_settings, slot, request(), now=MONDAY)
    cancelled = await cancel_booking(db, redis, booking.id, by="citizen", now=MONDAY)
    assert cancelled is not None and cancelled.state == BookingState.CANCELLED
    assert await cancel_booking(db, redis, booking.id, by="citizen", now=MONDAY) is None
    assert (await current_booking(db, redis, "conv-1"))["state"] == "cancelled"
    assert await find_active_booking(db, base_settings, "conv-1", now=MONDAY) is None

    again = await book(db, redis, base_settings, slot, request("conv-2", "+4530303030"), now=MONDAY)
    assert again.id != booking.id
    cancelled_events = await events_of(redis, "booking.cancelled")
    assert [(e["data"]["booking_id"], e["data"]["by"]) for e in cancelled_events] == [(booking.id, "citizen")]


async def test_moving_keeps_the_tovholder_and_frees_the_old_time(
    db: Database, redis: aioredis.Redis, base_settings: Settings, calendar: Calendar
) -> None:
    booking = await book(db, redis, base_settings, slot_of(calendar, "sofie", 4, 8), request(), now=MONDAY)
    other = await book(
        db, redis, base_settings, slot_of(calendar, "sofie", 4, 9), request("c2", "+4530303030"), MONDAY
    )

    with pytest.raises(SlotUnavailable):
        await move_booking(db, redis, base_settings, booking.id, other.start, by="citizen", now=MONDAY)
    with pytest.raises(SlotUnavailable):
        await move_booking(db, redis, base_settings, booking.id, at(4, 8, 30), by="citizen", now=MONDAY)

    moved = await move_booking(db, redis, base_settings, booking.id, at(6, 10), by="staff", now=MONDAY)
    assert moved is not None and (moved.start, moved.moved_from) == (at(6, 10), at(4, 8))
    stored = await get_booking(db, booking.id)
    assert stored is not None and stored.start == at(6, 10) and stored.moved_from == at(4, 8)
    free = [s.start for s in await calendar.free_slots(db, [calendar.directory.get("sofie")], MONDAY)]
    assert at(4, 8) in free and at(4, 9) not in free and at(6, 10) not in free

    created = await events_of(redis, "booking.created")
    assert created[-1]["data"]["moved_from"] == at(4, 8).isoformat()
    assert (await events_of(redis, "booking.cancelled"))[-1]["data"]["reason"] == "moved"


async def test_staff_list_bookings_per_tovholder(
    db: Database, redis: aioredis.Redis, base_settings: Settings, calendar: Calendar
) -> None:
    first = await book(db, redis, base_settings, slot_of(calendar, "amina", 4, 9, 30), request("a"), MONDAY)
    second = await book(
        db, redis, base_settings, slot_of(calendar, "mette", 4, 9), request("b", "+4540404040"), MONDAY
    )
    assert [b.id for b in await list_bookings(db)] == [second.id, first.id]  # by time
    assert [b.id for b in await list_bookings(db, tovholder="amina")] == [first.id]
    assert "token" not in (await list_bookings(db))[0].model_dump()

    # Past their retention time (at least a day after the meeting) bookings are gone for every
    # reader, then deleted.
    later = second.end + timedelta(days=base_settings.conversation_ttl_seconds // 86400 + 400)
    assert await list_bookings(db, now=later) == []
    assert await get_booking(db, first.id, now=later) is None
    assert await forget_expired(db, now=MONDAY) == 0
    assert await forget_expired(db, now=later) == 2
    assert await get_booking(db, first.id) is None


async def test_the_chat_shows_collecting_while_the_form_runs(
    db: Database, redis: aioredis.Redis, base_settings: Settings, calendar: Calendar
) -> None:
    await start_collecting(redis, base_settings, "conv-9")
    assert await current_booking(db, redis, "conv-9") == {
        "state": "collecting",
        "id": None,
        "slot": None,
        "tovholder": None,
    }
    assert await stop_collecting(redis, "conv-9") == ""
    assert await current_booking(db, redis, "conv-9") is None

    booking = await book(
        db, redis, base_settings, slot_of(calendar, "karim", 5, 12), request("conv-9"), MONDAY
    )
    await start_collecting(redis, base_settings, "conv-9", moving=booking.id)
    assert await current_booking(db, redis, "conv-9") == {**booking.summary(), "state": "collecting"}
    assert await stop_collecting(redis, "conv-9") == booking.id
    assert (await current_booking(db, redis, "conv-9"))["state"] == "confirmed"
    assert keys.booking_collecting("conv-9") in keys.conversation_keys("conv-9")


async def test_erasing_a_conversation_cancels_and_forgets_its_booking(
    db: Database, redis: aioredis.Redis, base_settings: Settings, calendar: Calendar
) -> None:
    booking = await book(
        db, redis, base_settings, slot_of(calendar, "lars", 5, 10), request("conv-e"), MONDAY
    )
    assert await erase_conversation_bookings(db, redis, "conv-e")
    assert await get_booking(db, booking.id) is None
    assert await list_bookings(db) == []
    free = [s.start for s in await calendar.free_slots(db, [calendar.directory.get("lars")], MONDAY)]
    assert booking.start in free
    assert await redis.zcard(keys.booking_notifications()) == 0
    _, own = await tovholdere_for(db, base_settings, booking.phone)
    assert not own  # the phone's link to Lars is gone too
    cancelled = await events_of(redis, "booking.cancelled")
    assert [e["data"]["reason"] for e in cancelled] == ["erased"]
    assert not await erase_conversation_bookings(db, redis, "never-booked")


async def test_a_number_typed_on_the_web_does_not_replace_the_citizens_tovholder(
    db: Database, redis: aioredis.Redis, base_settings: Settings, calendar: Calendar
) -> None:
    """The attack: a web visitor books with someone else's number to tie that number to another
    tovholder. A web number is unproven: it may start a link, never replace one."""
    victim = "+4520555111"
    await book(
        db, redis, base_settings, slot_of(calendar, "mette", 4, 10), request("sms-own", victim, "sms"), MONDAY
    )
    await book(
        db,
        redis,
        base_settings,
        slot_of(calendar, "lars", 5, 10),
        request("web-other", victim, "web"),
        MONDAY,
    )
    people, own = await tovholdere_for(db, base_settings, victim)
    assert own and [p.id for p in people] == ["mette"]
