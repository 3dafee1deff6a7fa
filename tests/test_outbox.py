"""At-least-once sending (indgang/outbox.py): booking notices and SMS replies survive a worker
that dies between claiming and sending, a refusal is tried again, and a retry after a crash
never sends twice what Twilio already took. Real Redis, the real Twilio SDK against the local
fake; a "crash" is the worker's task cancelled mid-send (a gateway stopping or killed), which no
`except Exception` catches, and a "new worker" is a fresh object with only Redis in common; for
a staff reply, also a real gateway process SIGKILLed while its call to Twilio is in flight."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from booking_helpers import MONDAY, at, request
from conftest import gateway_settings
from fakes.twilio_api import FakeTwilio
from outbox_helpers import outbox_drained

from indgang import conversation, handoff, keys, transcript
from indgang.booking import Booking, Slot, book, calendar_for, get_booking
from indgang.booking.bookings import Notice
from indgang.booking.notifications import RETRY_SECONDS, BookingNotifier
from indgang.devstack import PROJECT_DIR, Stack
from indgang.erasure import erase_conversation
from indgang.outbound import deliver_to_citizen
from indgang.records.db import Database
from indgang.settings import Settings
from indgang.sms import delivery, recipients
from indgang.sms.outbox import QueuedSms, SmsOutbox
from indgang.sms.sender import SmsSender
from indgang.staff.accounts import Role, add_account
from webhook.staff_session import CSRF_HEADER

pytestmark = pytest.mark.anyio

NUMBER = "+4520123456"
PASSWORD = "korrekt-hest-batteri"


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


async def _book(records: Database, redis: aioredis.Redis, settings: Settings) -> Booking:
    mette = (await calendar_for(records, settings)).directory.get("mette")
    assert mette is not None
    return await book(records, redis, settings, Slot(mette, at(5, 10)), request(), now=MONDAY)


# --- booking notices --------------------------------------------------------------------------


async def test_a_notice_whose_worker_dies_before_sending_is_sent_after_the_lease_exactly_once(
    records: Database, redis: aioredis.Redis, base_settings: Settings
) -> None:
    await _book(records, redis, base_settings)
    clock, crashing = Clock(MONDAY), CrashingPhone(after_sending=False)
    with pytest.raises(asyncio.CancelledError):
        await BookingNotifier(records, redis, base_settings, crashing.send, clock).run_once()

    phone = Phone()
    restarted = BookingNotifier(records, redis, base_settings, phone.send, clock)
    assert await restarted.run_once() == 0  # the dead worker's lease still holds
    clock.now = MONDAY + timedelta(seconds=base_settings.outbox_lease_seconds + 1)
    assert await restarted.run_once() == 1
    assert await restarted.run_once() == 0
    assert len(phone.sent) == 1 and "Mette" in phone.sent[0][1]


async def test_a_notice_sent_but_not_yet_removed_is_not_sent_twice_by_the_next_worker(
    records: Database,
    redis: aioredis.Redis,
    base_settings: Settings,
    sms_settings: Settings,
    fake_twilio: FakeTwilio,
) -> None:
    """The real sender: Twilio took the SMS and the notifier recorded it; the worker died before
    removing it from the schedule. The next worker removes it without sending. (A crash after
    Twilio took it but before the record is the one window left: see notifications.py.)"""
    await _book(records, redis, sms_settings)
    clock = Clock(MONDAY)
    sender = SmsSender(redis, sms_settings)
    sent_then_killed = BookingNotifier(records, redis, sms_settings, sender.send_sms, clock)
    [claim] = await sent_then_killed.leases.claim(MONDAY.timestamp(), 10)
    booking_id = claim.member.partition(":")[2]
    booking = await get_booking(records, booking_id)
    assert booking is not None
    assert await sent_then_killed._send_once(claim, Notice.CONFIRMED, booking, MONDAY)
    assert len(fake_twilio.sent()) == 1

    clock.now = MONDAY + timedelta(seconds=sms_settings.outbox_lease_seconds + 1)
    assert await BookingNotifier(records, redis, sms_settings, sender.send_sms, clock).run_once() == 0
    assert len(fake_twilio.sent()) == 1
    assert await redis.zcard(keys.booking_notifications()) == 1  # only the reminder is left


async def test_a_notice_refused_by_the_throttle_is_tried_again_and_sent(
    records: Database, redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    settings = sms_settings.model_copy(update={"sms_per_number_limit": 1, "sms_per_number_window_seconds": 1})
    await _book(records, redis, settings)
    sender = SmsSender(redis, settings)
    conv = recipients.conversation_id(NUMBER, settings)
    await sender.to_number(NUMBER, "Et svar lige før", conv)  # the number's budget is spent

    clock = Clock(MONDAY)
    notifier = BookingNotifier(records, redis, settings, sender.send_sms, clock)
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


# --- staff replies ----------------------------------------------------------------------------


def _log_in(client: httpx.Client, name: str) -> None:
    """A staff member's browser session on the gateway, with the CSRF header for the API."""
    form = client.get("/staff/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text
    done = client.post("/staff/login", data={"username": name, "password": PASSWORD, "csrf_token": token[1]})
    assert done.status_code == 303, done.text
    page = client.get("/staff")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf, page.text
    client.headers[CSRF_HEADER] = csrf[1]


async def test_a_staff_reply_whose_gateway_is_killed_mid_send_is_sent_once_by_the_restarted_one(
    redis: aioredis.Redis, records: Database, base_settings: Settings, fake_twilio: FakeTwilio, tmp_path: Path
) -> None:
    """A real gateway process takes a staff reply over HTTP, its outbox worker claims the SMS and
    is SIGKILLed while the call to Twilio is in flight; the gateway started again sends it once
    the dead worker's lease has run out, and never again."""
    settings = fake_twilio.configure(gateway_settings(base_settings)).model_copy(
        update={"outbox_lease_seconds": 3.0, "spool_dir": tmp_path / "spool"}
    )
    conv = recipients.conversation_id(NUMBER, settings)
    ttl = settings.conversation_ttl_seconds
    await conversation.touch(redis, conv, "sms", "da", ttl)
    await recipients.remember(redis, conv, NUMBER, ttl)
    await handoff.request(redis, conv, ttl, reason="citizen")
    await add_account(records, redis, "mette", PASSWORD, Role.STAFF, display_name="Mette", replace=True)

    stack = Stack(settings)
    gateway = _gateway_process(stack, tmp_path / "first.log")
    try:
        fake_twilio.hold()
        with httpx.Client(base_url=stack.gateway_url, timeout=30) as staff:
            _log_in(staff, "mette")
            base = f"/api/v1/staff/conversations/{conv}"
            assert staff.post(f"{base}/takeover").status_code == 200
            reply = staff.post(f"{base}/messages", json={"text": "Hej, det er Mette. Ring på 1234."})
            assert reply.status_code == 201, reply.text
        _until(lambda: fake_twilio.held == 1)  # claimed, and the call to Twilio is in flight
        assert await redis.zcard(keys.sms_outbox()) == 1  # claimed is not removed
        os.killpg(gateway.pid, signal.SIGKILL)
        gateway.wait()
        fake_twilio.abandon_held()  # Twilio never took it
        assert fake_twilio.sent() == []

        gateway = _gateway_process(stack, tmp_path / "restarted.log")
        [sent] = fake_twilio.wait_for(1, timeout=settings.outbox_lease_seconds + 20)
        assert (sent["To"], sent["Body"]) == (NUMBER, "Hej, det er Mette. Ring på 1234.")
        await outbox_drained(redis)
        await asyncio.sleep(settings.outbox_lease_seconds + 1)  # a lease's length later: no second SMS
        assert len(fake_twilio.sent()) == 1 and fake_twilio.held == 1
        [state] = (await delivery.states(redis, conv)).values()
        messages, _ = await transcript.read(redis, conv)
        assert state["ref"] == messages[-1].id and messages[-1].staff == "Mette"
    finally:
        fake_twilio.abandon_held()
        if gateway.poll() is None:
            os.killpg(gateway.pid, signal.SIGTERM)
            gateway.wait(timeout=15)


async def test_a_staff_reply_twilio_took_before_the_worker_died_is_not_sent_again(
    redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    """The worker died after Twilio took the reply and its SID was recorded, before the SMS left
    the queue: the next worker only removes it."""
    conv = recipients.conversation_id(NUMBER, sms_settings)
    ttl = sms_settings.conversation_ttl_seconds
    await conversation.touch(redis, conv, "sms", "da", ttl)
    await recipients.remember(redis, conv, NUMBER, ttl)
    await deliver_to_citizen(redis, sms_settings, conv, "Svar fra Mette", staff="Mette")

    clock = Seconds(time.time())
    sender = SmsSender(redis, sms_settings)
    dying = SmsOutbox(redis, sms_settings, sender, clock)
    [claim] = await dying.leases.claim(clock(), 10)
    raw = await redis.hget(keys.sms_outbox_items(), claim.member)
    assert raw is not None
    sms = QueuedSms.load(raw)
    await sender.to_number(sms.number, sms.text, conv, ref=sms.ref, send_id=claim.member)  # then killed

    restarted = SmsOutbox(redis, sms_settings, SmsSender(redis, sms_settings), clock)
    assert await restarted.run_once() == 0  # the dead worker's lease holds
    clock.now += sms_settings.outbox_lease_seconds + 1
    await restarted.run_once()
    assert await redis.zcard(keys.sms_outbox()) == 0
    assert [m["Body"] for m in fake_twilio.sent()] == ["Svar fra Mette"]


def _gateway_process(stack: Stack, log: Path) -> subprocess.Popen[bytes]:
    """`python -m webhook.main` with the stack's settings, once it is live (Rasa is not running,
    so it is never ready: /healthz, not /readyz)."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "webhook.main"], cwd=PROJECT_DIR, env=stack.env(),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    _until(lambda: _live(stack.gateway_url) or process.poll() is not None, timeout=180)
    assert process.poll() is None, log.read_text()[-2000:]
    return process


def _live(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


async def test_erasing_a_conversation_drops_the_sms_still_queued_to_it_and_no_other(
    records: Database, redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    other = "+4531234567"
    outbox = SmsOutbox(redis, sms_settings, SmsSender(redis, sms_settings))
    await outbox.put("SM4", [_reply(sms_settings, "Er du stadig ved havnen?")])
    theirs = QueuedSms(other, recipients.conversation_id(other, sms_settings), "Til en anden")
    await outbox.put("SM5", [theirs])
    await erase_conversation(records, redis, sms_settings, _reply(sms_settings).conversation_id, "staff")
    assert await outbox.run_once() == 1
    assert [(m["To"], m["Body"]) for m in fake_twilio.sent()] == [(other, "Til en anden")]
    assert await redis.hlen(keys.sms_outbox_items()) == 0
