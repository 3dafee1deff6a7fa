"""Twilio's webhooks against the real gateway app, a real Redis and the real Twilio SDK talking
to a local fake of Twilio's REST API. Rasa is not running here ("down"), which is itself a path
an SMS citizen must get through: the engine-down reply offers a person as a numbered choice.
Requests are signed with the SDK's own `RequestValidator.compute_signature`."""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redis.asyncio as aioredis
from booking_helpers import MONDAY, at, request
from conftest import asgi_gateway
from fakes.twilio_api import FakeTwilio
from outbox_helpers import outbox_drained
from twilio.request_validator import RequestValidator

from indgang import conversation, handoff, keys, transcript
from indgang.booking import Slot, book, calendar_for, get_booking, start_collecting
from indgang.devstack import free_port
from indgang.records.db import Database
from indgang.redis_store import connect
from indgang.settings import Settings
from indgang.sms import delivery, optout, recipients
from indgang.sms.compose import TARGET_SEGMENTS, measure

pytestmark = pytest.mark.anyio

NUMBER = "+4520123456"
INBOUND = "/twilio/sms"


@pytest.fixture(scope="module")
def module_twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture
def fake_twilio(module_twilio: FakeTwilio) -> FakeTwilio:
    """One fake Twilio for the module's gateway, emptied for every test."""
    module_twilio.clear()
    return module_twilio


@pytest.fixture(scope="module")
def settings(base_settings: Settings, module_twilio: FakeTwilio) -> Settings:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens here: Rasa and the actions are down
    update = {"rasa_url": dead, "action_server_url": dead, "booking_scheduler_interval_seconds": 3600}
    return module_twilio.configure(base_settings).model_copy(update=update)


@pytest.fixture(scope="module")
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """One gateway for the module (it loads the offer search); each test's `redis` empties the store."""
    async with asgi_gateway(settings) as client:
        yield client


def _sid() -> str:
    return "SM" + secrets.token_hex(16)


def _form(body: str, sender: str = NUMBER, **extra: str) -> dict[str, str]:
    """Twilio's inbound-message webhook fields (the ones it always sends)."""
    return {
        "ToCountry": "DK", "ToState": "", "SmsMessageSid": extra.get("MessageSid", ""), "NumMedia": "0",
        "ToCity": "", "FromZip": "", "SmsSid": "", "FromState": "", "SmsStatus": "received",
        "FromCity": "", "Body": body, "FromCountry": "DK", "To": "+4570000000", "ToZip": "",
        "NumSegments": "1", "MessageSid": _sid(), "AccountSid": "AC" + "0" * 32, "From": sender,
        "ApiVersion": "2010-04-01", **extra,
    }  # fmt: skip


def _signature(settings: Settings, path: str, form: dict[str, str], base: str | None = None) -> str:
    url = f"{(base or settings.public_base_url).rstrip('/')}{path}"
    return RequestValidator(settings.twilio_auth_token or "").compute_signature(url, form)


async def _send(
    client: httpx.AsyncClient, settings: Settings, form: dict[str, str], path: str = INBOUND
) -> httpx.Response:
    headers = {"X-Twilio-Signature": _signature(settings, path, form)}
    response = await client.post(path, data=form, headers=headers)
    store = connect(settings)
    await outbox_drained(store)  # the replies go out from the outbox, after the response
    await store.aclose()
    return response


async def _text(client: httpx.AsyncClient, settings: Settings, body: str, **extra: str) -> httpx.Response:
    response = await _send(client, settings, _form(body, **extra))
    assert response.status_code == 200, response.text
    return response


def _conv(settings: Settings, number: str = NUMBER) -> str:
    return recipients.conversation_id(number, settings)


async def _transcript(redis: aioredis.Redis, conv: str) -> list[tuple[str, str]]:
    messages, _ = await transcript.read(redis, conv)
    return [(m.sender, m.text) for m in messages]


# --- signatures, replays and malformed requests -------------------------------------------------


async def test_a_signed_sms_is_answered_with_empty_twiml_and_the_reply_goes_by_rest(
    client: httpx.AsyncClient, settings: Settings, redis: aioredis.Redis, fake_twilio: FakeTwilio
) -> None:
    response = await _text(client, settings, "Hej, jeg har brug for hjælp")
    assert response.headers["content-type"].startswith("application/xml")
    assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response />'
    [sent] = fake_twilio.sent()
    assert sent["To"] == NUMBER and sent["From"] == "+4570000000"
    assert "tekniske problemer" in sent["Body"]
    assert sent["Body"].endswith("1) Tal med en medarbejder\nSvar 1.")
    conv = _conv(settings)
    assert await _transcript(redis, conv) == [
        ("user", "Hej, jeg har brug for hjælp"),
        ("bot", (await transcript.read(redis, conv))[0][1].text),
    ]
    assert await redis.get(keys.sms_recipient(conv)) == NUMBER


@pytest.mark.parametrize("signature", [None, "", "bm90IHRoZSByaWdodCBzaWduYXR1cmU=", "wrong"])
async def test_a_missing_or_wrong_signature_is_a_403_logged_without_the_message(
    client: httpx.AsyncClient,
    settings: Settings,
    redis: aioredis.Redis,
    fake_twilio: FakeTwilio,
    caplog: pytest.LogCaptureFixture,
    signature: str | None,
) -> None:
    form = _form("Min hemmelige besked om min søn")
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    with caplog.at_level(logging.DEBUG):
        response = await client.post(INBOUND, data=form, headers=headers)
    assert response.status_code == 403
    assert await redis.keys(f"*{_conv(settings)}*") == []
    assert fake_twilio.requests == 0
    logged = " ".join(f"{r.getMessage()} {json.dumps(r.__dict__, default=str)}" for r in caplog.records)
    assert "rejected" in logged
    assert "hemmelige" not in logged and "20123456" not in logged


async def test_a_request_signed_for_other_fields_is_a_403(
    client: httpx.AsyncClient, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    form = _form("Hej")
    headers = {"X-Twilio-Signature": _signature(settings, INBOUND, form)}
    response = await client.post(INBOUND, data={**form, "Body": "Hej, ændret undervejs"}, headers=headers)
    assert response.status_code == 403 and fake_twilio.requests == 0


async def test_the_signature_is_over_the_public_url_not_the_one_the_proxy_forwards_to(
    client: httpx.AsyncClient, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    form = _form("Hej")
    as_forwarded = _signature(settings, INBOUND, form, base="http://gateway.internal:8000")
    response = await client.post(INBOUND, data=form, headers={"X-Twilio-Signature": as_forwarded})
    assert response.status_code == 403
    await _text(client, settings, "Hej")  # signed for https://indgang.example.dk/twilio/sms
    assert len(fake_twilio.sent()) == 1


async def test_a_public_url_with_a_path_prefix_behind_a_proxy(
    settings: Settings, redis: aioredis.Redis, fake_twilio: FakeTwilio
) -> None:
    settings = settings.model_copy(update={"public_base_url": "https://kommune.dk/indgang/"})
    async with asgi_gateway(settings) as client:
        form = _form("START")
        signature = _signature(settings, INBOUND, form, base="https://kommune.dk/indgang")
        response = await client.post(INBOUND, data=form, headers={"X-Twilio-Signature": signature})
        await outbox_drained(redis)
    assert response.status_code == 200
    assert "Velkommen tilbage" in fake_twilio.sent()[0]["Body"]


async def test_a_retried_message_sid_is_processed_once(
    client: httpx.AsyncClient, settings: Settings, redis: aioredis.Redis, fake_twilio: FakeTwilio
) -> None:
    form = _form("Hej igen")
    first = await _send(client, settings, form)
    again = await _send(client, settings, form)
    assert first.status_code == again.status_code == 200
    assert again.text == first.text
    users = [text for sender, text in await _transcript(redis, _conv(settings)) if sender == "user"]
    assert users == ["Hej igen"]
    assert len(fake_twilio.sent()) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"From": None}, "From"),
        ({"MessageSid": None}, "MessageSid"),
        ({"MessageSid": "SM123"}, "MessageSid"),
        ({"Body": "x" * 1601}, "Body"),
        ({"From": "+45" + "1" * 70}, "From"),
        ({"NumMedia": "many"}, "NumMedia"),
    ],
)
async def test_missing_or_oversized_fields_are_a_422_naming_the_field_without_echoing_it(
    client: httpx.AsyncClient,
    settings: Settings,
    redis: aioredis.Redis,
    change: dict[str, str | None],
    field: str,
) -> None:
    form = {k: v for k, v in {**_form("Hej"), **change}.items() if v is not None}
    response = await _send(client, settings, form)
    assert response.status_code == 422
    assert any(field in error["loc"] for error in response.json()["detail"])
    assert "xxxxxxxx" not in response.text and "1111111" not in response.text
    assert await redis.keys("indgang:conv:*") == []


async def test_a_body_over_16_kib_is_a_413(client: httpx.AsyncClient, settings: Settings) -> None:
    form = _form("x" * 17000)
    response = await _send(client, settings, form)
    assert response.status_code == 413


async def test_a_form_that_is_not_form_encoded_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post(INBOUND, json={"Body": "Hej"}, headers={"X-Twilio-Signature": "x"})
    assert response.status_code == 403


async def test_unicode_and_emoji_arrive_intact(
    client: httpx.AsyncClient, settings: Settings, redis: aioredis.Redis, fake_twilio: FakeTwilio
) -> None:
    body = "Hej 👋🏽 jeg hedder Åse-Æbelø – “tak” 🙏 ﷽ 漢字"
    await _text(client, settings, body)
    assert (await _transcript(redis, _conv(settings)))[0] == ("user", body)
    assert len(fake_twilio.sent()) == 1


async def test_a_crisis_message_gets_the_emergency_reply_first_and_an_urgent_handoff(
    client: httpx.AsyncClient, settings: Settings, redis: aioredis.Redis, fake_twilio: FakeTwilio
) -> None:
    await _text(client, settings, "STOP")  # even a number that wrote STOP gets the emergency reply
    await _text(client, settings, "Jeg kan ikke mere. Jeg vil tage mit eget liv i nat.")
    reply = fake_twilio.sent()[-1]["Body"]
    assert "112" in reply
    conv = _conv(settings)
    state = await handoff.get(redis, conv)
    assert (state.state, state.priority) == (handoff.HandoffState.REQUESTED, handoff.Priority.URGENT)
    messages, _ = await transcript.read(redis, conv)
    assert [m.crisis for m in messages if m.sender == "bot"][-1] is True


async def test_a_need_told_while_waiting_for_a_person_gets_offers_with_their_way_in(
    client: httpx.AsyncClient, settings: Settings, redis: aioredis.Redis, fake_twilio: FakeTwilio
) -> None:
    conv = _conv(settings)
    await _text(client, settings, "Hej")  # the engine is down: "1) Tal med en medarbejder"
    await _text(client, settings, "1")
    await _text(client, settings, "min mand drikker hver dag og jeg ved ikke hvad jeg skal gore")
    body = fake_twilio.sent()[-1]["Body"]
    assert "nummer 1 i køen" in body and "Mens du venter" in body
    offers = [line for line in body.splitlines() if line.startswith("- ")]
    assert offers, body
    # each offer names how to reach it (a phone number, a web address or who runs it)
    assert all(re.fullmatch(r"- .+ \(.+: .+\)", line) for line in offers), offers
    assert measure(body).segments <= TARGET_SEGMENTS
    assert (await handoff.get(redis, conv)).state == handoff.HandoffState.REQUESTED
    record = await conversation.get(redis, conv)
    assert record is not None and len(record.offers_shown) == len(offers)  # staff see what was told
    await _text(client, settings, "ok tak")
    thanks = fake_twilio.sent()[-1]["Body"]
    assert "medarbejder" in thanks and "Mens du venter" not in thanks


# --- keywords -----------------------------------------------------------------------------------


async def test_stop_is_confirmed_once_then_nothing_is_sent_until_start(
    client: httpx.AsyncClient, settings: Settings, redis: aioredis.Redis, fake_twilio: FakeTwilio
) -> None:
    await _text(client, settings, "STOP")
    await _text(client, settings, "stop")
    await _text(client, settings, "Hvad med min bolig?")
    [confirmation] = [f["Body"] for f in fake_twilio.sent()]
    assert confirmation.startswith("Du får ikke flere sms'er fra os. Skriv START")
    conv = _conv(settings)
    messages, _ = await transcript.read(redis, conv)
    assert any(m.sender == "system" and "STOP" in m.text for m in messages)  # staff see why
    await _text(client, settings, "Start")
    await _text(client, settings, "Hvad med min bolig?")
    bodies = [f["Body"] for f in fake_twilio.sent()]
    assert len(bodies) == 3 and bodies[1].startswith("Velkommen tilbage")


async def test_stop_inside_the_booking_form_asks_before_opting_out(
    client: httpx.AsyncClient, settings: Settings, redis: aioredis.Redis, fake_twilio: FakeTwilio
) -> None:
    """The attack: a citizen in the middle of a booking writes "stop" (to stop the booking) and
    is silently opted out of every SMS, the booking's confirmation and reminder included."""
    conv = _conv(settings)
    await _text(client, settings, "Hej")
    await start_collecting(redis, settings, conv)  # what the booking form's action does
    await _text(client, settings, "stop")
    assert not await optout.opted_out(redis, conv)
    assert fake_twilio.sent()[-1]["Body"] == "Vil du afmelde alle SMS fra os? Svar JA eller NEJ."

    await _text(client, settings, "nej")
    assert not await optout.opted_out(redis, conv)
    users = [text for sender, text in await _transcript(redis, conv) if sender == "user"]
    assert users[-3:] == ["stop", "nej", "stop"]  # the "stop" went on to the bot: it ends the form

    await _text(client, settings, "STOP")
    await _text(client, settings, "Ja")
    assert await optout.opted_out(redis, conv)
    assert fake_twilio.sent()[-1]["Body"].startswith("Du får ikke flere sms'er fra os")


async def test_stop_outside_a_form_opts_out_at_once(
    client: httpx.AsyncClient, settings: Settings, redis: aioredis.Redis, fake_twilio: FakeTwilio
) -> None:
    await _text(client, settings, "Stop")
    assert await optout.opted_out(redis, _conv(settings))
    [confirmation] = [f["Body"] for f in fake_twilio.sent()]
    assert confirmation.startswith("Du får ikke flere sms'er fra os")


@pytest.mark.parametrize(
    ("word", "expected"), [("HJÆLP", "sms-indgang"), ("hjaelp", "sms-indgang"), ("Help", "SMS line")]
)
async def test_help_says_what_the_number_is_the_hours_and_the_emergency_numbers(
    client: httpx.AsyncClient, settings: Settings, fake_twilio: FakeTwilio, word: str, expected: str
) -> None:
    await _text(client, settings, word)
    [sent] = fake_twilio.sent()
    assert expected in sent["Body"] and "112" in sent["Body"] and "9-15" in sent["Body"]


async def test_slet_erases_everything_after_the_citizen_confirms(
    records: Database,
    client: httpx.AsyncClient,
    settings: Settings,
    redis: aioredis.Redis,
    fake_twilio: FakeTwilio,
) -> None:
    conv = _conv(settings)
    await _text(client, settings, "Min søn har det svært")
    await redis.set(keys.rasa_tracker(conv), "{}")  # what Rasa keeps about the conversation
    lars = (await calendar_for(records, settings)).directory.get("lars")
    assert lars is not None
    booking = await book(
        records, redis, settings, Slot(lars, at(5, 10)), request(conv, NUMBER, "sms"), MONDAY
    )
    await _text(client, settings, "SLET")
    assert "Svar JA" in fake_twilio.sent()[-1]["Body"]
    await _text(client, settings, "ja")

    assert "er slettet" in fake_twilio.sent()[-1]["Body"]
    left = [k for k in await redis.keys(f"*{conv}*") if ":rate:" not in k]
    assert left == []  # transcript, record, tracker, number, choices, deliveries: all gone
    assert await get_booking(records, booking.id) is None  # with the name and number it held
    events = [json.loads(e["event"]) for _, e in await redis.xrange(keys.events_stream())]
    erased = [e for e in events if e["type"] == "conversation.erased"]
    assert erased and erased[0]["data"] == {"conversation_id": conv, "requested_by": "citizen"}
    assert "StatusCallback" not in fake_twilio.sent()[-1]  # nothing written back about it


async def test_slet_then_nej_keeps_the_conversation(
    client: httpx.AsyncClient, settings: Settings, redis: aioredis.Redis, fake_twilio: FakeTwilio
) -> None:
    await _text(client, settings, "Slet")
    await _text(client, settings, "Nej")
    assert fake_twilio.sent()[-1]["Body"] == "Okay, intet er slettet."
    assert ("user", "Nej") in await _transcript(redis, _conv(settings))
    await _text(client, settings, "ja")  # no longer an answer to anything: goes on as a message
    assert await redis.exists(keys.transcript(_conv(settings)))


# --- pictures, empty messages and numbered choices ----------------------------------------------


async def test_a_picture_without_text_gets_a_polite_text_only_answer(
    client: httpx.AsyncClient, settings: Settings, redis: aioredis.Redis, fake_twilio: FakeTwilio
) -> None:
    media = {"NumMedia": "1", "MediaContentType0": "image/jpeg", "MediaUrl0": "https://api.twilio.com/x.jpg"}
    await _text(client, settings, "", **media)
    [sent] = fake_twilio.sent()
    assert "kun læse tekst" in sent["Body"] and "MediaUrl" not in sent
    assert (await _transcript(redis, _conv(settings)))[0] == ("user", "[Billede eller fil uden tekst]")


async def test_a_picture_with_text_is_answered_and_told_the_picture_was_not_seen(
    client: httpx.AsyncClient, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    await _text(client, settings, "Se det her brev", NumMedia="1", MediaUrl0="https://api.twilio.com/x.jpg")
    [sent] = fake_twilio.sent()
    assert sent["Body"].startswith("(Billeder og filer kan jeg ikke se, kun teksten.)")


async def test_an_empty_message_gets_a_polite_answer(
    client: httpx.AsyncClient, settings: Settings, fake_twilio: FakeTwilio
) -> None:
    await _text(client, settings, "   ")
    assert fake_twilio.sent()[0]["Body"].startswith("Din besked var tom.")


async def test_a_numbered_reply_is_mapped_back_to_the_buttons_payload(
    client: httpx.AsyncClient, settings: Settings, redis: aioredis.Redis, fake_twilio: FakeTwilio
) -> None:
    conv = _conv(settings)
    await _text(client, settings, "Hej")  # the engine is down: "1) Tal med en medarbejder"
    await _text(client, settings, "1")
    assert (await handoff.get(redis, conv)).state == handoff.HandoffState.REQUESTED
    assert "nummer 1 i køen" in fake_twilio.sent()[-1]["Body"]
    assert await redis.get(keys.sms_choices(conv)) is None  # that question is answered
    await _text(client, settings, "1")  # now just a message for staff
    assert (await _transcript(redis, conv))[-2] == ("user", "1")


# --- delivery status callbacks ------------------------------------------------------------------


async def test_status_callbacks_update_the_message_and_a_failure_shows_for_staff(
    client: httpx.AsyncClient, settings: Settings, redis: aioredis.Redis, fake_twilio: FakeTwilio
) -> None:
    conv = _conv(settings)
    await _text(client, settings, "Hej")
    [sent] = fake_twilio.sent()
    for status in ("sent", "undelivered"):
        code = "30003" if status == "undelivered" else None
        url, form, headers = fake_twilio.status_callback(sent, status, code)
        path = url.removeprefix(settings.public_base_url)
        response = await client.post(path, data=form, headers=headers)
        assert response.status_code == 204
    [state] = (await delivery.states(redis, conv)).values()
    assert (state["state"], state["error_code"]) == ("undelivered", "30003")
    messages, _ = await transcript.read(redis, conv)
    assert messages[-1].sender == "system" and "ikke leveret" in messages[-1].text


async def test_a_status_callback_with_a_bad_signature_is_a_403(
    client: httpx.AsyncClient, settings: Settings, redis: aioredis.Redis, fake_twilio: FakeTwilio
) -> None:
    await _text(client, settings, "Hej")
    url, form, _ = fake_twilio.status_callback(fake_twilio.sent()[0], "failed", "30008")
    path = url.removeprefix(settings.public_base_url)
    response = await client.post(path, data=form, headers={"X-Twilio-Signature": "x"})
    assert response.status_code == 403
    [state] = (await delivery.states(redis, _conv(settings))).values()
    assert state["state"] == "queued"


# --- spending guards ----------------------------------------------------------------------------


async def test_an_auto_reply_loop_is_cut_off(
    client: httpx.AsyncClient, settings: Settings, redis: aioredis.Redis, fake_twilio: FakeTwilio
) -> None:
    for i in range(settings.sms_per_number_limit + 5):
        await _text(client, settings, f"Automatisk svar: jeg er på ferie ({i})")
    assert len(fake_twilio.sent()) == settings.sms_per_number_limit
    notes = [m for m in (await transcript.read(redis, _conv(settings)))[0] if m.sender == "system"]
    assert len(notes) == 5 and "for mange" in notes[0].text
