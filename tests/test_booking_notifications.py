"""Booking SMS (confirmation, the day-before reminder, cancellation by staff) with a clock the
test moves; and the .ics file."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import icalendar
import pytest
import redis.asyncio as aioredis
from booking_helpers import MONDAY, at, request
from fakes.twilio_api import FakeTwilio

from indgang import keys
from indgang.booking import Booking, Slot, book, calendar_for, cancel_booking, move_booking
from indgang.booking.ics import booking_ics
from indgang.booking.notifications import RETRY_SECONDS, BookingNotifier
from indgang.records.db import Database
from indgang.settings import Settings
from indgang.sms.sender import SmsNotSent, SmsSender

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Phone:
    """Stands in for the SMS provider: records what would have been sent."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, str]] = []
        self.fail = fail

    async def send(self, to: str, text: str) -> None:
        if self.fail:
            raise ConnectionError("provider down")
        self.sent.append((to, text))


async def _book(
    db: Database, redis: aioredis.Redis, settings: Settings, day: int, hour: int, channel: str = "web"
) -> Booking:
    mette = (await calendar_for(db, settings)).directory.get("mette")
    assert mette is not None
    return await book(db, redis, settings, Slot(mette, at(day, hour)), request(channel=channel), now=MONDAY)


async def test_a_web_booking_is_confirmed_by_sms_and_reminded_the_day_before(
    redis: aioredis.Redis, records: Database, base_settings: Settings
) -> None:
    await _book(records, redis, base_settings, 5, 10)  # Wednesday 10:00
    clock, phone = Clock(MONDAY), Phone()
    notifier = BookingNotifier(records, redis, base_settings, phone.send, clock)

    assert await notifier.run_once() == 1
    assert phone.sent[0][0] == "+4520123456"
    assert "Mette" in phone.sent[0][1] and "onsdag d. 5. marts kl. 10.00" in phone.sent[0][1]
    assert "AFLYS" in phone.sent[0][1]

    clock.now = at(4, 9, 59)  # Tuesday, just before the reminder hour
    assert await notifier.run_once() == 0
    clock.now = at(4, 10, 0)
    assert await notifier.run_once() == 1
    assert "i morgen kl. 10.00" in phone.sent[1][1] and "Mette" in phone.sent[1][1]
    clock.now = at(4, 18)
    assert await notifier.run_once() == 0
    assert await redis.zcard(keys.booking_notifications()) == 0


async def test_an_sms_booking_is_not_confirmed_twice_and_a_cancelled_one_not_reminded(
    redis: aioredis.Redis, records: Database, base_settings: Settings
) -> None:
    booking = await _book(records, redis, base_settings, 5, 10, channel="sms")
    clock, phone = Clock(MONDAY), Phone()
    notifier = BookingNotifier(records, redis, base_settings, phone.send, clock)
    assert await notifier.run_once() == 0  # the chat reply on SMS was the confirmation

    await cancel_booking(records, redis, booking.id, by="citizen", now=MONDAY)
    clock.now = at(4, 12)
    assert await notifier.run_once() == 0
    assert phone.sent == []


async def test_staff_changes_reach_the_citizen_by_sms(
    redis: aioredis.Redis, records: Database, base_settings: Settings
) -> None:
    moved = await _book(records, redis, base_settings, 5, 10, channel="sms")
    cancelled = await _book(records, redis, base_settings, 6, 10, channel="sms")
    clock, phone = Clock(MONDAY), Phone()
    notifier = BookingNotifier(records, redis, base_settings, phone.send, clock)

    await move_booking(records, redis, base_settings, moved.id, at(10, 9), by="staff", now=MONDAY)
    await cancel_booking(records, redis, cancelled.id, by="staff", now=MONDAY)
    assert await notifier.run_once() == 2
    texts = sorted(text for _, text in phone.sent)
    assert any("flyttet til mandag d. 10. marts kl. 9.00" in text for text in texts)
    assert any("aflyst" in text for text in texts)

    clock.now = at(4, 10)  # the old reminder day: nothing, the booking moved on
    assert await notifier.run_once() == 0
    clock.now = at(9, 10)  # the day before the new time
    assert await notifier.run_once() == 1
    assert "i morgen kl. 9.00" in phone.sent[-1][1]


async def test_replicas_never_send_the_same_sms_twice(
    redis: aioredis.Redis, records: Database, base_settings: Settings
) -> None:
    for day in (4, 5, 6):
        await _book(records, redis, base_settings, day, 11)
    clock, phone = Clock(MONDAY + timedelta(minutes=1)), Phone()
    replicas = [BookingNotifier(records, redis, base_settings, phone.send, clock) for _ in range(5)]
    counts = await asyncio.gather(*(r.run_once() for r in replicas))
    assert sum(counts) == 3 and len(phone.sent) == 3  # three confirmations, once each

    # Wednesday: Thursday's reminder is due; Tuesday's and Wednesday's are past their day.
    clock.now = at(5, 10, 30)
    counts = await asyncio.gather(*(r.run_once() for r in replicas))
    assert sum(counts) == 1 and "i morgen kl. 11.00" in phone.sent[-1][1]


async def test_a_failed_sms_is_tried_again_later(
    redis: aioredis.Redis, records: Database, base_settings: Settings
) -> None:
    booking = await _book(records, redis, base_settings, 5, 10)
    clock, down = Clock(MONDAY), Phone(fail=True)
    assert await BookingNotifier(records, redis, base_settings, down.send, clock).run_once() == 0
    due = await redis.zscore(keys.booking_notifications(), f"confirmed:{booking.id}")
    assert due == int(MONDAY.timestamp()) + RETRY_SECONDS

    up = Phone()
    clock.now = MONDAY + timedelta(seconds=RETRY_SECONDS)
    assert await BookingNotifier(records, redis, base_settings, up.send, clock).run_once() == 1


async def test_reminders_lost_with_redis_are_queued_again(
    redis: aioredis.Redis, records: Database, base_settings: Settings
) -> None:
    """The queue of due SMS lives in Redis; the bookings do not. After a flush, the notifier's
    first run (and an hourly check after) puts back every reminder still ahead, and the reminder
    goes out on its day."""
    booking = await _book(records, redis, base_settings, 5, 10, channel="sms")
    await _book(records, redis, base_settings, 6, 10, channel="sms")
    await cancel_booking(records, redis, booking.id, by="citizen", now=MONDAY)
    await redis.flushdb()
    clock, phone = Clock(MONDAY), Phone()
    notifier = BookingNotifier(records, redis, base_settings, phone.send, clock)
    assert await notifier.run_once() == 0
    assert await redis.zcard(keys.booking_notifications()) == 1  # not the cancelled one's
    clock.now = at(5, 10)  # the day before Thursday's meeting
    assert await notifier.run_once() == 1
    assert "i morgen kl. 10.00" in phone.sent[0][1]
    # A flush while the gateway runs: the next hourly check puts a reminder still ahead back.
    await _book(records, redis, base_settings, 10, 10, channel="sms")
    await redis.flushdb()
    clock.now = at(5, 10, 30)
    await notifier.run_once()
    assert await redis.zcard(keys.booking_notifications()) == 0  # checked half an hour ago
    clock.now = at(5, 11)
    await notifier.run_once()
    assert await redis.zcard(keys.booking_notifications()) == 1


async def test_the_ics_file_holds_the_time_and_no_personal_details(
    redis: aioredis.Redis, records: Database, base_settings: Settings
) -> None:
    booking = await _book(records, redis, base_settings, 5, 10)
    calendar = icalendar.Calendar.from_ical(booking_ics(booking, base_settings))
    event = next(iter(calendar.walk("VEVENT")))
    assert event.decoded("dtstart") == at(5, 10)
    assert event.decoded("dtend") == at(5, 11)
    assert str(event["uid"]) == f"{booking.id}@indgang"
    assert "Mette" in str(event["summary"])
    assert str(event["status"]) == "CONFIRMED"
    text = booking_ics(booking, base_settings).decode()
    assert booking.phone not in text and booking.topic not in text


async def test_booking_sms_go_through_the_sms_sender_to_twilio(
    redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    sender = SmsSender(redis, sms_settings)
    await sender.send_sms("20 12 34 56", "Indgang: husk din samtale")
    [form] = fake_twilio.sent()
    assert form["To"] == "+4520123456"
    assert form["Body"] == "Indgang: husk din samtale"
    fake_twilio.fail_next(500, 20500, "Internal Server Error", times=sms_settings.sms_send_attempts)
    with pytest.raises(SmsNotSent):
        await sender.send_sms("+4520123456", "again")
