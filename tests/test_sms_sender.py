"""Outbound SMS through the real Twilio SDK, making real HTTP requests to a local fake of
Twilio's REST API: the request shape, retries, STOP, throttling, delivery states, and staff
replies reaching SMS through `deliver_to_citizen` and the outbox."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import redis.asyncio as aioredis
from fakes.twilio_api import FakeTwilio

from indgang import conversation, keys, transcript
from indgang.outbound import deliver_to_citizen
from indgang.settings import Settings
from indgang.sms import delivery, optout, recipients
from indgang.sms.outbox import SmsOutbox
from indgang.sms.sender import SendKind, SendResult, SmsNotSent, SmsSender

pytestmark = pytest.mark.anyio

NUMBER = "+4520123456"


async def _sms_conversation(redis: aioredis.Redis, settings: Settings, number: str = NUMBER) -> str:
    conv = recipients.conversation_id(number, settings)
    await conversation.touch(redis, conv, "sms", "da", settings.conversation_ttl_seconds)
    await recipients.remember(redis, conv, number, settings.conversation_ttl_seconds)
    return conv


async def _send(sender: SmsSender, conv: str, text: str, kind: SendKind = SendKind.REPLY) -> SendResult:
    """What the outbox's worker does for an SMS queued to the conversation's number."""
    number = await recipients.number_for(sender.redis, conv)
    assert number is not None
    return await sender.to_number(number, text, conv, kind)


async def _staff_notes(redis: aioredis.Redis, conv: str) -> list[str]:
    messages, _ = await transcript.read(redis, conv)
    return [m.text for m in messages if m.sender == "system" and m.internal]


async def test_an_sms_goes_out_through_the_sdk_in_twilios_request_shape(
    redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    conv = await _sms_conversation(redis, sms_settings)
    result = await _send(SmsSender(redis, sms_settings), conv, "Hej – “velkommen”, Søren")

    [message] = fake_twilio.messages
    form = message["form"]
    assert form["To"] == NUMBER and form["From"] == "+4570000000"
    assert form["Body"] == 'Hej - "velkommen", Søren'  # plain GSM-7 characters
    callback = urlsplit(form["StatusCallback"])
    assert (
        f"{callback.scheme}://{callback.netloc}{callback.path}" == "https://indgang.example.dk/twilio/status"
    )
    assert parse_qs(callback.query) == {"conversation": [conv]}
    assert message["headers"]["User-Agent"].startswith("twilio-python/")  # the real SDK made the call
    assert result.sids == [message["resource"]["sid"]] and result.refused is None
    state = (await delivery.states(redis, conv))[result.sids[0]]
    assert state["state"] == "queued"


async def test_a_messaging_service_replaces_the_from_number(
    redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    settings = sms_settings.model_copy(update={"twilio_messaging_service_sid": "MG" + "1" * 32})
    conv = await _sms_conversation(redis, settings)
    result = await _send(SmsSender(redis, settings), conv, "Hej")
    [form] = fake_twilio.sent()
    assert form["MessagingServiceSid"] == "MG" + "1" * 32 and "From" not in form
    assert (await delivery.states(redis, conv))[result.sids[0]]["state"] == "accepted"


async def test_a_server_error_is_retried_and_then_the_sms_goes(
    redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    conv = await _sms_conversation(redis, sms_settings)
    fake_twilio.fail_next(500, 20500, "Internal Server Error", times=2)
    result = await _send(SmsSender(redis, sms_settings), conv, "Hej")
    assert fake_twilio.requests == 3 and len(fake_twilio.sent()) == 1
    assert result.refused is None
    assert await _staff_notes(redis, conv) == []


async def test_after_every_attempt_failed_staff_see_it_in_the_transcript(
    redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    conv = await _sms_conversation(redis, sms_settings)
    fake_twilio.fail_next(503, 20503, "Service Unavailable", times=10)
    result = await _send(SmsSender(redis, sms_settings), conv, "Hej")
    assert result.refused == "failed" and result.sids == []
    assert fake_twilio.requests == sms_settings.sms_send_attempts
    [note] = await _staff_notes(redis, conv)
    assert "Sms ikke sendt" in note and "20503" in note


async def test_a_refused_number_is_not_retried(
    redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    conv = await _sms_conversation(redis, sms_settings)
    fake_twilio.fail_next(400, 21211, "The 'To' number is not a valid phone number.")
    result = await _send(SmsSender(redis, sms_settings), conv, "Hej")
    assert result.refused == "failed" and fake_twilio.requests == 1
    assert "21211" in (await _staff_notes(redis, conv))[0]


async def test_after_stop_only_keyword_answers_and_emergency_replies_go(
    redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    conv = await _sms_conversation(redis, sms_settings)
    assert await optout.stop(redis, conv)
    assert not await optout.stop(redis, conv)  # already stopped: no second confirmation
    sender = SmsSender(redis, sms_settings)
    assert (await _send(sender, conv, "Svar fra en medarbejder")).refused == "opted_out"
    assert (await _send(sender, conv, "Hjælp-tekst", SendKind.KEYWORD)).refused is None
    assert (await _send(sender, conv, "Ring 112", SendKind.URGENT)).refused is None
    assert [f["Body"] for f in fake_twilio.sent()] == ["Hjælp-tekst", "Ring 112"]
    assert "STOP" in (await _staff_notes(redis, conv))[0]
    assert await optout.start(redis, conv)
    assert (await _send(sender, conv, "Velkommen tilbage")).refused is None


async def test_a_loop_is_cut_off_per_number_but_an_emergency_reply_still_goes(
    redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    settings = sms_settings.model_copy(update={"sms_per_number_limit": 3})
    conv = await _sms_conversation(redis, settings)
    other = await _sms_conversation(redis, settings, "+4531234567")
    sender = SmsSender(redis, settings)
    results = [await _send(sender, conv, f"Auto-svar {i}") for i in range(5)]
    assert [r.refused for r in results] == [None, None, None, "throttled", "throttled"]
    assert (await _send(sender, conv, "Ring 112", SendKind.URGENT)).refused is None
    assert (await _send(sender, other, "Hej")).refused is None
    assert len(fake_twilio.sent()) == 5
    assert len(await _staff_notes(redis, conv)) == 2


async def test_the_global_limit_holds_for_all_numbers_together(
    redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    settings = sms_settings.model_copy(update={"sms_global_limit": 2})
    sender = SmsSender(redis, settings)
    numbers = ["+4520000001", "+4520000002", "+4520000003"]
    convs = [await _sms_conversation(redis, settings, n) for n in numbers]
    results = [await _send(sender, c, "Hej") for c in convs]
    assert [r.refused for r in results] == [None, None, "throttled"]
    assert [f["To"] for f in fake_twilio.sent()] == numbers[:2]


async def test_without_a_number_or_twilio_settings_nothing_is_sent_and_staff_are_told(
    redis: aioredis.Redis, sms_settings: Settings, base_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    conv = await _sms_conversation(redis, sms_settings)
    await redis.delete(keys.sms_recipient(conv))
    await deliver_to_citizen(redis, sms_settings, conv, "Hej", staff="mette")
    await recipients.remember(redis, conv, NUMBER, 60)
    await deliver_to_citizen(redis, base_settings, conv, "Hej", staff="mette")
    assert await redis.zcard(keys.sms_outbox()) == 0  # nothing queued that no worker would send
    await SmsOutbox(redis, sms_settings, SmsSender(redis, sms_settings)).run_once()
    assert fake_twilio.requests == 0
    notes = await _staff_notes(redis, conv)
    assert "ikke gemt" in notes[0] and "Twilio er ikke sat op" in notes[1], notes


async def test_a_staff_reply_on_an_sms_conversation_is_sent_as_sms(
    redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    conv = await _sms_conversation(redis, sms_settings)
    text = "Hej, jeg hedder Mette. Du kan ringe på 1234."
    message = await deliver_to_citizen(redis, sms_settings, conv, text, staff="mette")
    assert fake_twilio.sent() == []  # queued in the outbox, not sent inside the staff request
    assert await SmsOutbox(redis, sms_settings, SmsSender(redis, sms_settings)).run_once() == 1
    [form] = fake_twilio.sent()
    assert form["To"] == NUMBER and form["Body"] == text
    [state] = (await delivery.states(redis, conv)).values()
    assert state["ref"] == message.id  # the delivery belongs to that transcript entry
    messages, _ = await transcript.read(redis, conv)
    assert [(m.sender, m.staff) for m in messages] == [("staff", "mette")]


async def test_a_staff_reply_on_a_web_conversation_sends_no_sms(
    redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    await conversation.touch(redis, "web-1", "web", "da", 60)
    await deliver_to_citizen(redis, sms_settings, "web-1", "Hej")
    assert fake_twilio.requests == 0


async def test_a_long_message_goes_as_several_sms_of_at_most_1600_characters(
    redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    conv = await _sms_conversation(redis, sms_settings)
    text = "\n\n".join(f"Afsnit {i}: " + "ord " * 100 for i in range(6))  # 3 x 410 fit in 1600
    result = await _send(SmsSender(redis, sms_settings), conv, text)
    bodies = [f["Body"] for f in fake_twilio.sent()]
    assert len(result.sids) == len(bodies) == 2
    assert all(len(b) <= 1600 for b in bodies) and bodies[1].startswith("Afsnit")


async def test_status_callbacks_move_the_state_forward_and_a_failure_is_noted_once(
    redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    conv = await _sms_conversation(redis, sms_settings)
    [sid] = (await _send(SmsSender(redis, sms_settings), conv, "Hej")).sids
    ttl = sms_settings.conversation_ttl_seconds
    assert await delivery.advance(redis, conv, sid, "sent", "", ttl)
    assert not await delivery.advance(redis, conv, sid, "queued", "", ttl)  # late, older news
    assert await delivery.advance(redis, conv, sid, "undelivered", "30003", ttl)
    assert not await delivery.advance(redis, conv, sid, "undelivered", "30003", ttl)  # Twilio repeats
    assert not await delivery.advance(redis, conv, "SM" + "f" * 32, "failed", "", ttl)  # unknown
    state = (await delivery.states(redis, conv))[sid]
    assert (state["state"], state["error_code"]) == ("undelivered", "30003")
    [note] = await _staff_notes(redis, conv)
    assert "ikke leveret" in note and "30003" in note


async def test_the_booking_notifier_shape_raises_when_twilio_will_not_take_it(
    redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    sender = SmsSender(redis, sms_settings)
    await sender.send_sms("20 12 34 56", "Påmindelse: i morgen kl. 10")
    assert fake_twilio.sent()[0]["To"] == NUMBER  # normalised to E.164
    fake_twilio.fail_next(400, 21610, "Attempt to send to unsubscribed recipient")
    with pytest.raises(SmsNotSent):
        await sender.send_sms(NUMBER, "Påmindelse")


async def test_the_erasure_confirmation_leaves_no_record(
    redis: aioredis.Redis, sms_settings: Settings, fake_twilio: FakeTwilio
) -> None:
    conv = recipients.conversation_id(NUMBER, sms_settings)
    sender = SmsSender(redis, sms_settings)
    result = await sender.to_number(NUMBER, "Slettet", conv, SendKind.KEYWORD, track=False)
    [form] = fake_twilio.sent()
    assert result.refused is None and "StatusCallback" not in form
    assert [k for k in await redis.keys(f"*{conv}*") if ":rate:" not in k] == []
