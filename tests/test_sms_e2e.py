"""SMS end to end: the real stack (trained Rasa model, action server, Redis) with a second gateway
whose Twilio settings point the real SDK at a local fake of Twilio's REST API. Twilio's side is
played as Twilio plays it: signed form posts in, REST calls out, signed status callbacks."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator

import httpx
import pytest
import redis as redis_sync
from fakes.twilio_api import FakeTwilio
from twilio.request_validator import RequestValidator

from indgang import keys
from indgang.devstack import RUN_DIR, Stack, free_port
from indgang.dialogue import Button, OfferCard, Reply
from indgang.offer_cards import short_title
from indgang.outbound import deliver_to_citizen
from indgang.redis_store import connect, redis_url
from indgang.settings import Settings
from indgang.sms import recipients
from indgang.sms.compose import compose, measure, plain

STAFF_REPLY = "Hej, det er Mette fra kommunen."


@pytest.fixture(scope="module")
def twilio() -> Iterator[FakeTwilio]:
    with FakeTwilio() as fake:
        yield fake


@pytest.fixture(scope="module")
def sms_gateway(stack: Stack, twilio: FakeTwilio) -> Iterator[Stack]:
    """A second gateway on the running stack (same Redis, Rasa and actions), talking to the fake."""
    port = free_port()
    settings = twilio.configure(stack.settings).model_copy(
        update={
            "gateway_port": port,
            "public_base_url": f"http://127.0.0.1:{port}",
            "phone_hash_key": stack.settings.phone_hash_key,  # the actions hash numbers with it too
            "sms_retry_wait_seconds": 0.1,
        }
    )
    gateway = Stack(settings, log_dir=RUN_DIR / "logs" / "sms-gateway")
    try:
        gateway.start_gateway()
        yield gateway
    finally:
        gateway.stop_all()


@pytest.fixture
def store(stack: Stack) -> redis_sync.Redis:
    return redis_sync.Redis.from_url(redis_url(stack.settings), decode_responses=True)


def _number() -> str:
    return f"+4560{random.randrange(10**6):06d}"


def _post(gateway: Stack, path: str, form: dict[str, str], query: str = "") -> httpx.Response:
    s = gateway.settings
    url = f"{s.public_base_url}{path}" + (f"?{query}" if query else "")
    signature = RequestValidator(s.twilio_auth_token or "").compute_signature(url, form)
    return httpx.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=90)


def text(gateway: Stack, twilio: FakeTwilio, number: str, body: str) -> str:
    """Send one SMS as Twilio delivers it; return the SMS the gateway sent back."""
    before = len(twilio.sent())
    sid = "SM" + "".join(random.choices("0123456789abcdef", k=32))
    form = {"MessageSid": sid, "AccountSid": twilio.account_sid, "From": number, "To": "+4570000000",
            "Body": body, "NumMedia": "0", "NumSegments": "1", "ApiVersion": "2010-04-01"}  # fmt: skip
    response = _post(gateway, "/twilio/sms", form)
    assert response.status_code == 200, response.text
    assert "<Response" in response.text
    sent = twilio.wait_for(before + 1, timeout=90)
    assert len(sent) == before + 1, "one SMS per turn"
    assert sent[-1]["To"] == number
    return sent[-1]["Body"]


def _bot_turn(store: redis_sync.Redis, conv: str) -> list[Reply]:
    """The bot's replies since the citizen's last message, as the transcript keeps them."""
    entries = store.xrange(keys.transcript(conv))
    last_user = max(i for i, (_, f) in enumerate(entries) if f["from"] == "user")
    replies = []
    for _, fields in entries[last_user + 1 :]:
        if fields["from"] != "bot":
            continue
        extra = json.loads(fields.get("extra") or "{}")
        replies.append(
            Reply(
                text=fields["text"],
                buttons=[Button(**b) for b in extra.get("buttons", [])],
                offers=[OfferCard(**o) for o in extra.get("offers", [])],
                crisis=extra.get("crisis", False),
            )
        )
    return replies


def _conv(gateway: Stack, number: str) -> str:
    return recipients.conversation_id(number, gateway.settings)


def test_a_guidance_conversation_by_sms(
    sms_gateway: Stack, twilio: FakeTwilio, store: redis_sync.Redis
) -> None:
    number = _number()
    conv = _conv(sms_gateway, number)

    greeting = text(sms_gateway, twilio, number, "Hej")
    assert greeting == compose(_bot_turn(store, conv), "da").text  # the turn, composed for SMS
    assert "Svar 1, 2 eller 3." in greeting
    choices = json.loads(store.get(keys.sms_choices(conv)) or "[]")
    assert len(choices) == 3

    text(sms_gateway, twilio, number, "2")
    user_messages = [f["text"] for _, f in store.xrange(keys.transcript(conv)) if f["from"] == "user"]
    assert user_messages[-1] == choices[1]["payload"]  # "2" went on as the second button

    answer = text(sms_gateway, twilio, number, "Min søn på 17 har autisme og kommer ikke i skolen")
    turn = _bot_turn(store, conv)
    # After the first guidance the gateway asks, once, whether it may follow up: last in the SMS.
    consent = [r for r in turn if r.text.startswith("Må vi skrive til dig om en uge")]
    replies = [r for r in turn if r not in consent]
    offers = [o for r in replies for o in r.offers]
    assert offers, replies
    assert answer == compose(replies, "da", after=consent).text
    assert store.exists(keys.followup_consent_asked(conv))
    assert all(plain(short_title(o.title)) in answer for o in offers)
    sms = measure(answer)
    assert sms.encoding == "GSM-7" and sms.segments <= 2, sms


def test_a_crisis_by_sms_gets_the_emergency_reply_and_an_urgent_handoff(
    sms_gateway: Stack, twilio: FakeTwilio, store: redis_sync.Redis
) -> None:
    number = _number()
    reply = text(sms_gateway, twilio, number, "Jeg kan ikke mere, jeg vil tage mit eget liv i nat")
    assert "112" in reply
    conv = _conv(sms_gateway, number)
    assert store.hget(keys.handoff(conv), "state") == "requested"
    assert store.hget(keys.handoff(conv), "priority") == "urgent"
    events = [json.loads(e["event"]) for _, e in store.xrange(keys.events_stream())]
    assert any(e["type"] == "crisis.detected" and e["data"]["conversation_id"] == conv for e in events)


def test_a_staff_reply_is_delivered_by_sms_and_its_delivery_reported(
    sms_gateway: Stack, twilio: FakeTwilio, store: redis_sync.Redis
) -> None:
    number = _number()
    text(sms_gateway, twilio, number, "Jeg vil gerne tale med en medarbejder")
    conv = _conv(sms_gateway, number)
    settings: Settings = sms_gateway.settings

    async def staff_reply() -> str:
        redis = connect(settings)
        try:
            message = await deliver_to_citizen(redis, settings, conv, STAFF_REPLY, staff="mette")
        finally:
            await redis.aclose()
        return message.id

    before = len(twilio.sent())
    entry = asyncio.run(staff_reply())
    sent = twilio.wait_for(before + 1)[-1]
    assert (sent["To"], sent["Body"]) == (number, STAFF_REPLY)

    url, form, headers = twilio.status_callback(sent, "delivered")
    response = httpx.post(url, data=form, headers=headers, timeout=30)
    assert response.status_code == 204
    states = [json.loads(v) for v in store.hgetall(keys.sms_deliveries(conv)).values()]
    assert [s["state"] for s in states if s["ref"] == entry] == ["delivered"]
