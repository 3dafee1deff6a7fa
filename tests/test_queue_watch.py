"""Nobody waits unseen (indgang/queue_watch.py): staff on duty are alerted of a crisis at once and
of a handoff left waiting, by e-mail (a real local SMTP server, aiosmtpd) and SMS (the fake
Twilio); in opening hours a citizen not picked up is offered a booking once; the place in the
queue and the expected wait reach SMS citizens when they moved. The real gateway (in-process,
with its workers), a real Redis, and a clock the test moves instead of waiting."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from email import message_from_bytes
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis
from aiosmtpd.controller import Controller
from conftest import asgi_gateway, gateway_settings
from fakes.twilio_api import FakeTwilio
from outbox_helpers import outbox_drained
from test_engine_down import fake_rasa
from test_sms_webhook import _form, _signature

from indgang import handoff, keys, transcript
from indgang.booking import start_collecting, stop_collecting
from indgang.devstack import free_port
from indgang.erasure import erase_conversation
from indgang.i18n import t
from indgang.inbound import Inbound
from indgang.opening_hours import DAYS
from indgang.queue_watch import QueueWatch
from indgang.records.db import Database
from indgang.settings import Settings
from indgang.sms import recipients
from indgang.sms.compose import TARGET_SEGMENTS, measure
from indgang.sms.sender import SmsSender
from indgang.staff.alerts import StaffAlerts, alert_text
from indgang.staff.inbox import inbox

pytestmark = pytest.mark.anyio

TOKEN = "X-Conversation-Token"
STAFF_PHONE = "+4522334455"
OFF_DUTY_PHONE = "+4566778899"
CITIZEN = "+4540112233"
OTHER_CITIZEN = "+4540998877"


class Clock:
    """Epoch seconds that run with real time, plus what the test moved them on."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead

    def move(self, minutes: float) -> None:
        self.ahead += minutes * 60


class Mailbox:
    def __init__(self) -> None:
        self.mails: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    mailbox, port = Mailbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def _not_today() -> str:
    """A weekday that is not today (local time): a roster entry off duty, or staff closed now."""
    today = datetime.now(ZoneInfo("Europe/Copenhagen")).weekday()
    return DAYS[(today + 3) % 7]


@pytest.fixture(scope="module")
def base_settings(base_settings: Settings) -> Settings:
    """A Redis database of its own: the session's live gateway (conftest.live_gateway) runs a
    queue watch with staff always open, which would tell this module's waiting citizens their
    place."""
    return base_settings.model_copy(update={"redis_db": 8})


def _settings(base_settings: Settings, fake_twilio: FakeTwilio, **update: Any) -> Settings:
    settings = fake_twilio.configure(gateway_settings(base_settings))
    return settings.model_copy(
        update={
            "queue_watch_seconds": 0.05,
            "queue_timeout_minutes": 600,
            "staff_alert_wait_minutes": 600,
            **update,
        }
    )


async def _until(condition: Any, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _settle() -> None:
    """Long enough for the watch (every 0.05 s) and the outbox to have done anything they would."""
    await asyncio.sleep(0.6)


def _to(fake: FakeTwilio, number: str) -> list[str]:
    return [m["Body"] for m in fake.sent() if m["To"] == number]


async def _web(client: Any, text: str, conv: str | None = None, token: str | None = None) -> tuple[str, str]:
    conv = conv or f"queue-{uuid.uuid4().hex}"
    headers = {TOKEN: token} if token else {}
    body = {"conversation_id": conv, "text": text}
    response = await client.post("/api/v1/chat", json=body, headers=headers)
    assert response.status_code in (200, 503), response.text
    return conv, token or response.json()["conversation_token"]


async def _sms(client: Any, settings: Settings, redis: aioredis.Redis, text: str, sender: str) -> str:
    form = _form(text, sender=sender)
    headers = {"X-Twilio-Signature": _signature(settings, "/twilio/sms", form)}
    assert (await client.post("/twilio/sms", data=form, headers=headers)).status_code == 200
    await outbox_drained(redis)
    return recipients.conversation_id(sender, settings)


async def _bot_texts(redis: aioredis.Redis, conv: str) -> list[str]:
    messages, _ = await transcript.read(redis, conv)
    return [m.text for m in messages if m.sender == "bot"]


# --- staff alerts ------------------------------------------------------------------------------


async def test_a_crisis_alerts_the_staff_on_duty_at_once_and_a_waiting_handoff_after_n_minutes(
    redis: aioredis.Redis,
    base_settings: Settings,
    fake_twilio: FakeTwilio,
    smtp: tuple[Mailbox, int],
    tmp_path: Path,
) -> None:
    mailbox, port = smtp
    roster = tmp_path / "roster.yaml"
    roster.write_text(
        "on_duty:\n"
        "  - {who: vagt-mail, hours: mon-sun 00:00-24:00, channel: email, address: vagt@kommune.dk}\n"
        f"  - {{who: vagt-sms, hours: mon-sun 00:00-24:00, channel: sms, address: '{STAFF_PHONE}'}}\n"
        f"  - {{who: fri, hours: {_not_today()} 08:00-16:00, channel: sms, address: '{OFF_DUTY_PHONE}'}}\n",
        encoding="utf-8",
    )
    settings = _settings(
        base_settings,
        fake_twilio,
        staff_alert_roster_file=roster,
        staff_alert_wait_minutes=10,
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_from="indgang@kommune.dk",
    )
    clock = Clock()
    async with asgi_gateway(settings, clock) as client:
        crisis = await _sms(client, settings, redis, "jeg vil ikke leve mere", CITIZEN)
        await _until(lambda: _count(mailbox, fake_twilio, 1))  # no clock moved: at once
        calm, _ = await _web(client, "/request_human")  # the engine is down: to staff directly
        clock.move(5)
        await _settle()
        # one crisis alert per person on duty, none for the calm handoff yet, none off duty
        assert len(mailbox.mails) == 1 and len(_to(fake_twilio, STAFF_PHONE)) == 1
        assert _to(fake_twilio, OFF_DUTY_PHONE) == []
        rcpt, mail = mailbox.mails[0]
        assert rcpt == ["vagt@kommune.dk"] and mail["From"] == "indgang@kommune.dk"
        assert mail["Subject"] == t("alerts.subject_crisis", "da")
        body = mail.get_payload(decode=True).decode()
        link = f"https://indgang.example.dk/staff/conversations/{crisis}"
        assert body.strip() == alert_text(settings, "crisis", crisis, "da") and link in body
        assert _to(fake_twilio, STAFF_PHONE) == [body.strip()]

        clock.move(6)  # both have now waited more than 10 minutes without pick-up
        await _until(lambda: _count(mailbox, fake_twilio, 3))
        clock.move(30)
        await _settle()
    assert len(mailbox.mails) == 3 and len(_to(fake_twilio, STAFF_PHONE)) == 3  # once per reason
    waiting = {mail.get_payload(decode=True).decode().strip() for _, mail in mailbox.mails[1:]}
    assert waiting == {alert_text(settings, "waiting", conv, "da") for conv in (crisis, calm)}
    assert set(_to(fake_twilio, STAFF_PHONE)[1:]) == waiting
    everything = " ".join([*waiting, *_to(fake_twilio, STAFF_PHONE)])
    for private in ("leve", CITIZEN, CITIZEN[3:], "request_human"):  # no words, no number
        assert private not in everything
    assert _to(fake_twilio, OFF_DUTY_PHONE) == []


async def _count(mailbox: Mailbox, fake: FakeTwilio, n: int) -> bool:
    return len(mailbox.mails) >= n and len(_to(fake, STAFF_PHONE)) >= n


async def test_a_handoff_picked_up_in_time_alerts_nobody(
    redis: aioredis.Redis,
    base_settings: Settings,
    fake_twilio: FakeTwilio,
    smtp: tuple[Mailbox, int],
    tmp_path: Path,
) -> None:
    mailbox, port = smtp
    roster = tmp_path / "roster.yaml"
    roster.write_text(
        "on_duty: [{who: vagt, hours: mon-sun 0-24, channel: email, address: vagt@kommune.dk}]\n",
        encoding="utf-8",
    )
    settings = _settings(
        base_settings, fake_twilio, staff_alert_roster_file=roster, staff_alert_wait_minutes=10,
        smtp_host="127.0.0.1", smtp_port=port,
    )  # fmt: skip
    clock = Clock()
    async with asgi_gateway(settings, clock) as client:
        conv, _ = await _web(client, "/request_human")
        clock.move(9)
        await _settle()
        await handoff.take(redis, conv, "mette", settings.conversation_ttl_seconds)
        clock.move(20)
        await _settle()
    assert mailbox.mails == []
    assert not await redis.zscore(keys.handoff_watch(), conv)  # picked up: no longer watched


def test_every_alert_and_queue_text_fits_the_sms_budget(base_settings: Settings) -> None:
    settings = base_settings.model_copy(update={"public_base_url": "https://indgang.example.dk"})
    sms_conv = "sms-" + "a" * 64
    for lang in ("da", "en"):
        for reason in ("crisis", "waiting"):
            assert measure(alert_text(settings, reason, sms_conv, lang)).segments == 1
            assert measure(alert_text(settings, reason, "w" * 128, lang)).segments <= TARGET_SEGMENTS
        assert measure(t("queue.update", lang, position=99, minutes=990)).segments == 1


# --- the queue timeout -------------------------------------------------------------------------


async def test_in_opening_hours_a_handoff_not_picked_up_is_offered_a_booking_once(
    redis: aioredis.Redis, base_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    rasa_port = free_port()
    settings = _settings(base_settings, fake_twilio, queue_timeout_minutes=15).model_copy(
        update={"rasa_url": f"http://127.0.0.1:{rasa_port}", "rasa_timeout_seconds": 2.0}
    )
    clock = Clock()
    async with asgi_gateway(settings, clock) as client:
        acute, acute_token = await _web(client, "jeg vil ikke leve mere")
        sms_conv = await _sms(client, settings, redis, "/request_human", CITIZEN)
        web_conv, token = await _web(client, "/request_human")
        clock.move(14)
        await _settle()
        assert len(_to(fake_twilio, CITIZEN)) == 1  # only the waiting reply so far
        clock.move(2)
        await _until(lambda: _sent_to(fake_twilio, CITIZEN, 2))
        clock.move(30)
        await _settle()
        offer = _to(fake_twilio, CITIZEN)
        assert len(offer) == 2, offer  # told once
        assert offer[1].startswith(t("queue.timeout", "da")) and "1) Book en tid" in offer[1]
        assert measure(offer[1]).segments == 1

        page = await client.get(f"/api/v1/chat/{web_conv}/messages", headers={TOKEN: token})
        told = [m for m in page.json()["messages"] if m["text"] == t("queue.timeout", "da")]
        assert len(told) == 1
        assert [b["payload"] for b in told[0]["buttons"]] == ["/book_contact", "/keep_waiting"]

        page = await client.get(f"/api/v1/chat/{acute}/messages", headers={TOKEN: acute_token})
        emergency = t("staff.notice.emergency", "da", number="112")
        told = [m["text"] for m in page.json()["messages"] if m["text"].startswith(t("queue.timeout", "da"))]
        assert told == [f"{t('queue.timeout', 'da')}\n{emergency}"]  # danger now: 112 again

        with fake_rasa(rasa_port) as received:  # the citizen picks the booking: to the booking form
            await _sms(client, settings, redis, "1", CITIZEN)
        assert [r["message"] for r in received] == ["/book_contact"]
        assert (await handoff.get(redis, sms_conv)).state == handoff.HandoffState.CLOSED
        assert await handoff.queued(redis) == [acute, web_conv]  # out of the queue; the others wait


async def test_after_a_concern_alarm_booking_words_and_the_form_go_to_the_bot_and_the_queue_keeps_it(
    redis: aioredis.Redis, base_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    rasa_port = free_port()
    settings = _settings(base_settings, fake_twilio).model_copy(
        update={"rasa_url": f"http://127.0.0.1:{rasa_port}", "rasa_timeout_seconds": 2.0}
    )
    book = "kan jeg booke en tid hos en tovholder?"
    async with asgi_gateway(settings) as client:
        with fake_rasa(rasa_port) as received:
            worried, token = await _web(client, "jeg har det svært og tænker nogle gange på at dø")
            acute, acute_token = await _web(client, "jeg vil ikke leve mere")
            await _web(client, "hvad sker der nu?", worried, token)  # waits for a person
            await _web(client, book, acute, acute_token)  # danger now: staff, not a booking
            assert received == []

            await _web(client, book, worried, token)
            await start_collecting(redis, settings, worried)  # the form is open, as the actions set it
            await _web(client, "mig selv", worried, token)
            await stop_collecting(redis, worried)  # booked or left
            await _web(client, "tak", worried, token)
        assert [r["message"] for r in received] == [book, "mig selv"]
        state = await handoff.get(redis, worried)
        assert (state.state, state.priority) == (handoff.HandoffState.REQUESTED, handoff.Priority.HIGH)
        assert await handoff.queued(redis) == [acute, worried]  # staff still see the concern


async def _sent_to(fake: FakeTwilio, number: str, n: int) -> bool:
    return len(_to(fake, number)) >= n


async def test_outside_opening_hours_the_handoff_waits_with_the_risk_first_and_no_timeout(
    redis: aioredis.Redis, base_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    closed = f"{_not_today()} 08:00-15:00"  # staff are not in today
    settings = _settings(base_settings, fake_twilio, queue_timeout_minutes=15, staff_opening_hours=closed)
    clock = Clock()
    async with asgi_gateway(settings, clock) as client:
        calm, _ = await _web(client, "/request_human")
        worried, _ = await _web(client, "jeg har det svært og tænker nogle gange på at dø")
        acute, _ = await _web(client, "jeg vil ikke leve mere")
        clock.move(60)
        await _settle()
        waiting = (await inbox(redis, "mette")).waiting  # the console's inbox in the morning
        assert [(i.conversation_id, i.priority) for i in waiting] == [
            (acute, "urgent"),
            (worried, "high"),
            (calm, "normal"),
        ]
        for conv in (calm, worried, acute):
            assert t("queue.timeout", "da") not in await _bot_texts(redis, conv)
        assert t("staff.notice.closed", "da", when="")[:20] in (await _bot_texts(redis, calm))[-1]


# --- the place in the queue by SMS -------------------------------------------------------------


async def test_sms_citizens_hear_their_new_place_when_it_moved_enough_or_after_n_minutes(
    redis: aioredis.Redis, base_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    settings = _settings(
        base_settings, fake_twilio, queue_update_places=2, queue_update_minutes=10,
        queue_minutes_per_conversation=8,
    )  # fmt: skip
    ttl = settings.conversation_ttl_seconds
    clock = Clock()
    async with asgi_gateway(settings, clock) as client:
        first, _ = await _web(client, "/request_human")
        second, _ = await _web(client, "/request_human")
        third, _ = await _web(client, "/request_human")
        x = await _sms(client, settings, redis, "/request_human", CITIZEN)  # number 4
        y = await _sms(client, settings, redis, "/request_human", OTHER_CITIZEN)  # number 5
        assert "nummer 4 i køen" in _to(fake_twilio, CITIZEN)[0]
        await _sms(client, settings, redis, "STOP", OTHER_CITIZEN)
        before_y = _to(fake_twilio, OTHER_CITIZEN)

        await handoff.close(redis, first, ttl)  # x: 4 -> 3, one place: not worth an SMS yet
        await _settle()
        assert len(_to(fake_twilio, CITIZEN)) == 1
        clock.move(11)  # ... but after ten minutes it is
        await _until(lambda: _sent_to(fake_twilio, CITIZEN, 2))
        assert _to(fake_twilio, CITIZEN)[1] == t("queue.update", "da", position=3, minutes=24)

        await handoff.close(redis, second, ttl)
        await handoff.close(redis, third, ttl)  # x: 3 -> 1, two places: at once
        await _until(lambda: _sent_to(fake_twilio, CITIZEN, 3))
        assert _to(fake_twilio, CITIZEN)[2] == t("queue.update", "da", position=1, minutes=8)
        clock.move(30)
        await _settle()
        await outbox_drained(redis)
    assert len(_to(fake_twilio, CITIZEN)) == 3  # no change, no SMS
    assert _to(fake_twilio, OTHER_CITIZEN) == before_y  # STOP: no place updates
    assert any(t("queue.update", "da", position=2, minutes=16) == text for text in await _bot_texts(redis, y))
    assert (await handoff.get(redis, x)).marks["told_position"] == "1"


# --- at least once -----------------------------------------------------------------------------


class _NoEngine:
    """The queue watch never asks the dialogue engine."""

    async def send(self, *_: object) -> list[object]:
        raise AssertionError("the queue watch asked the engine")

    async def record_staff_turn(self, *_: object) -> None:
        raise AssertionError("the queue watch told the engine")


async def test_a_gateway_that_dies_after_claiming_or_finds_smtp_down_loses_no_crisis_alert(
    records: Database,
    redis: aioredis.Redis,
    base_settings: Settings,
    smtp: tuple[Mailbox, int],
    tmp_path: Path,
) -> None:
    mailbox, port = smtp
    roster = tmp_path / "roster.yaml"
    roster.write_text(
        "on_duty: [{who: vagt, hours: mon-sun 0-24, channel: email, address: vagt@kommune.dk}]\n",
        encoding="utf-8",
    )
    up = base_settings.model_copy(
        update={"staff_alert_roster_file": roster, "smtp_host": "127.0.0.1", "smtp_port": port}
    )
    down = up.model_copy(update={"smtp_port": free_port()})  # nothing listens there
    clock = Clock()
    conv = f"crash-{uuid.uuid4().hex}"
    ttl = up.conversation_ttl_seconds
    await handoff.request_person(redis, conv, "web", ttl, reason="crisis", priority=handoff.Priority.URGENT)

    dying = QueueWatch(Inbound(redis, records, _NoEngine(), up), clock)
    await dying.leases.claim(clock(), 10)  # claimed, then the gateway died
    survivor = QueueWatch(Inbound(redis, records, _NoEngine(), down), clock)
    assert await survivor.run_once() == 0  # the lease still holds it
    clock.move(up.outbox_lease_seconds / 60 + 0.01)
    assert await survivor.run_once() == 0  # claimed again, but SMTP is down: not marked, kept
    assert mailbox.mails == [] and "alerted:crisis" not in (await handoff.get(redis, conv)).marks

    restarted = QueueWatch(Inbound(redis, records, _NoEngine(), up), clock)
    assert await restarted.run_once() == 0  # the retry waits OUTBOX_RETRY_SECONDS
    clock.move(up.outbox_retry_seconds / 60 + 0.01)
    assert await restarted.run_once() == 1
    clock.move(1)
    assert await restarted.run_once() == 1  # still waiting, watched again, not alerted again
    assert [rcpt for rcpt, _ in mailbox.mails] == [["vagt@kommune.dk"]]
    assert "alerted:crisis" in (await handoff.get(redis, conv)).marks


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("{who: a, hours: mon-fri 8-16, channel: fax, address: x}", "channel must be sms or email"),
        ("{who: a, hours: mon-fri 8-16, channel: sms}", "needs who, hours, channel and address"),
        ("{who: a, hours: someday, channel: sms, address: x}", "cannot read opening hours"),
    ],
)
def test_a_roster_that_cannot_be_used_is_refused_with_the_reason(
    base_settings: Settings, tmp_path: Path, entry: str, problem: str
) -> None:
    roster = tmp_path / "roster.yaml"
    roster.write_text(f"on_duty: [{entry}]\n", encoding="utf-8")
    settings = base_settings.model_copy(update={"staff_alert_roster_file": roster})
    with pytest.raises(ValueError, match=problem):
        StaffAlerts(settings, SmsSender(None, settings)).check_roster()  # type: ignore[arg-type]


async def test_an_erased_or_expired_handoff_leaves_the_watch(
    records: Database, redis: aioredis.Redis, base_settings: Settings
) -> None:
    ttl = base_settings.conversation_ttl_seconds
    erased, expired = f"erased-{uuid.uuid4().hex}", f"expired-{uuid.uuid4().hex}"
    for conv in (erased, expired):
        await handoff.request_person(redis, conv, "web", ttl, reason="request_human")
    assert await redis.zcard(keys.handoff_watch()) == 2
    await erase_conversation(records, redis, base_settings, erased, "citizen")
    assert await redis.zscore(keys.handoff_watch(), erased) is None  # at once, with the rest
    await redis.delete(keys.handoff(expired))  # what its expiry does
    assert await QueueWatch(Inbound(redis, records, _NoEngine(), base_settings), Clock()).run_once() == 0
    assert await redis.zcard(keys.handoff_watch()) == 0


async def test_a_place_update_keeps_to_the_sms_limit_per_number(
    redis: aioredis.Redis, base_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    settings = _settings(base_settings, fake_twilio, sms_per_number_limit=1, queue_update_places=2)
    async with asgi_gateway(settings) as client:
        ahead = [(await _web(client, "/request_human"))[0] for _ in range(2)]
        conv = await _sms(client, settings, redis, "/request_human", CITIZEN)  # the one SMS allowed
        for other in ahead:
            await handoff.close(redis, other, settings.conversation_ttl_seconds)
        await _until(lambda: _told(redis, conv, 1))  # the update was written, and queued
        await _settle()
        await outbox_drained(redis)
    assert len(_to(fake_twilio, CITIZEN)) == 1
    assert t("queue.update", "da", position=1, minutes=10) in await _bot_texts(redis, conv)


async def _told(redis: aioredis.Redis, conv: str, position: int) -> bool:
    return (await handoff.get(redis, conv)).marks.get("told_position") == str(position)
