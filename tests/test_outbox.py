"""At-least-once sending (indgang/outbox.py): booking notices and SMS replies survive a worker
that dies between claiming and sending, a refusal is tried again, and a retry after a crash
never sends twice what Twilio already took. Real Redis, the real Twilio SDK against the local
fake; a "crash" is the worker's task cancelled mid-send (a gateway stopping or killed), which no
`except Exception` catches, and a "new worker" is a fresh object with only Redis in common."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
import redis.asyncio as aioredis
from booking_helpers import MONDAY, at, request
from fakes.twilio_api import FakeTwilio
from outbox_helpers import outbox_drained

from indgang import keys
from indgang.booking import Booking, Calendar, Slot, book, get_booking
from indgang.booking.bookings import Notice
from indgang.booking.notifications import RETRY_SECONDS, BookingNotifier
from indgang.settings import Settings
from indgang.sms import recipients
from indgang.sms.outbox import QueuedSms, SmsOutbox
from indgang.sms.sender import SmsSender

pytestmark = pytest.mark.anyio

NUMBER = "+4520123456"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Seconds:
    """An epoch clock the test moves, for the SMS outbox."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class CrashingPhone:
    """The provider call during which the worker is killed: before Twilio took the SMS, or after."""

    def __init__(self, after_sending: bool) -> None:
        self.after_sending = after_sending
        self.sent: list[tuple[str, str]] = []

    async def send(self, to: str, text: str) -> None:
        if self.after_sending:
            self.sent.append((to, text))
        raise asyncio.CancelledError


class Phone:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, to: str, text: str) -> None:
        self.sent.append((to, text))


async def _book(redis: aioredis.Redis, settings: Settings) -> Booking:
    mette = Calendar.from_settings(settings).directory.get("mette")
    assert mette is not None
    return await book(redis, settings, Slot(mette, at(5, 10)), request(), now=MONDAY)


# --- booking notices --------------------------------------------------------------------------


async def test_a_notice_whose_worker_dies_before_sending_is_sent_after_the_lease_exactly_once(
    redis: aioredis.Redis, base_settings: Settings
) -> None:
    await _book(redis, base_settings)
    clock, crashing = Clock(MONDAY), CrashingPhone(after_sending=False)
    with pytest.raises(asyncio.CancelledError):
        await BookingNotifier(redis, base_settings, crashing.send, clock).run_once()

    phone = Phone()
    restarted = BookingNotifier(redis, base_settings, phone.send, clock)
    assert await restarted.run_once() == 0  # the dead worker's lease still holds
    clock.now = MONDAY + timedelta(seconds=base_settings.outbox_lease_seconds + 1)
    assert await restarted.run_once() == 1
    assert await restarted.run_once() == 0
    assert len(phone.sent) == 1 and "Mette" in phone.sent[0][1]


async def test_a_notice_sent_but_not_yet_removed_is_not_sent_twice_by_the_next_worker(
    redis: aioredis.Redis, base_settings: Settings, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    """The real sender: Twilio took the SMS and the notifier recorded it; the worker died before
    removing it from the schedule. The next worker removes it without sending. (A crash after
    Twilio took it but before the record is the one window left: see notifications.py.)"""
    await _book(redis, sms_settings)
    clock = Clock(MONDAY)
    sender = SmsSender(redis, sms_settings)
    sent_then_killed = BookingNotifier(redis, sms_settings, sender.send_sms, clock)
    [claim] = await sent_then_killed.leases.claim(MONDAY.timestamp(), 10)
    booking_id = claim.member.partition(":")[2]
    booking = await get_booking(redis, booking_id)
    assert booking is not None
    assert await sent_then_killed._send_once(claim, Notice.CONFIRMED, booking, MONDAY)
    assert len(fake_twilio.sent()) == 1

    clock.now = MONDAY + timedelta(seconds=sms_settings.outbox_lease_seconds + 1)
    assert await BookingNotifier(redis, sms_settings, sender.send_sms, clock).run_once() == 0
    assert len(fake_twilio.sent()) == 1
    assert await redis.zcard(keys.booking_notifications()) == 1  # only the reminder is left


async def test_a_notice_refused_by_the_throttle_is_tried_again_and_sent(
    redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    settings = sms_settings.model_copy(update={"sms_per_number_limit": 1, "sms_per_number_window_seconds": 1})
    await _book(redis, settings)
    sender = SmsSender(redis, settings)
    conv = recipients.conversation_id(NUMBER, settings)
    await sender.to_number(NUMBER, "Et svar lige før", conv)  # the number's budget is spent

    clock = Clock(MONDAY)
    notifier = BookingNotifier(redis, settings, sender.send_sms, clock)
    assert await notifier.run_once() == 0
    assert len(fake_twilio.sent()) == 1  # held back, not dropped
    await asyncio.sleep(1.1)  # the throttle's window passes
    clock.now = MONDAY + timedelta(seconds=RETRY_SECONDS)
    assert await notifier.run_once() == 1
    assert "Mette" in fake_twilio.sent()[-1]["Body"] and len(fake_twilio.sent()) == 2


# --- SMS replies ------------------------------------------------------------------------------


def _reply(settings: Settings, text: str = "Her er et svar") -> QueuedSms:
    return QueuedSms(NUMBER, recipients.conversation_id(NUMBER, settings), text)


async def test_a_queued_reply_survives_a_restart_of_the_gateway(
    redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    sender = SmsSender(redis, sms_settings)
    await SmsOutbox(redis, sms_settings, sender).put("SM1", [_reply(sms_settings)])
    # The gateway that queued it stops before its worker sent anything ...
    assert fake_twilio.sent() == []
    # ... and a new one, sharing only Redis, sends it.
    restarted = SmsOutbox(redis, sms_settings, SmsSender(redis, sms_settings))
    restarted.start()
    try:
        await outbox_drained(redis)
        await asyncio.sleep(0.3)  # a further turn of the worker sends nothing more
    finally:
        await restarted.stop()
    assert [m["Body"] for m in fake_twilio.sent()] == ["Her er et svar"]
    assert await redis.zcard(keys.sms_outbox()) == 0 and await redis.hlen(keys.sms_outbox_items()) == 0


async def test_a_reply_whose_worker_died_after_claiming_is_sent_after_the_lease_once(
    redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    clock = Seconds(1_000_000.0)
    sender = SmsSender(redis, sms_settings)
    dead = SmsOutbox(redis, sms_settings, sender, clock)
    await dead.put("SM2", [_reply(sms_settings, "første"), _reply(sms_settings, "anden")])
    [first, _second] = await dead.leases.claim(clock(), 10)  # claimed, then the worker died
    # It had sent the first one already: what the worker does, Twilio took it, then the kill.
    await sender.to_number(NUMBER, "første", _reply(sms_settings).conversation_id, send_id=first.member)

    fresh = SmsOutbox(redis, sms_settings, sender, clock)
    assert await fresh.run_once() == 0  # the lease holds
    clock.now += sms_settings.outbox_lease_seconds + 1
    assert await fresh.run_once() == 2
    assert await fresh.run_once() == 0
    assert [m["Body"] for m in fake_twilio.sent()] == ["første", "anden"]  # the first not again


async def test_a_reply_twilio_refused_is_tried_again_with_back_off(
    redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    clock = Seconds(1_000_000.0)
    outbox = SmsOutbox(redis, sms_settings, SmsSender(redis, sms_settings), clock)
    await outbox.put("SM3", [_reply(sms_settings)])
    fake_twilio.fail_next(500, 20500, "Internal Server Error", times=sms_settings.sms_send_attempts)
    assert await outbox.run_once() == 0
    assert fake_twilio.sent() == []
    clock.now += sms_settings.outbox_retry_seconds - 1
    assert await outbox.run_once() == 0  # not before its back-off
    clock.now += 2
    assert await outbox.run_once() == 1
    assert [m["Body"] for m in fake_twilio.sent()] == ["Her er et svar"]
