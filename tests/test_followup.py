"""The follow-up ("Fik du den hjælp, du havde brug for?") and the satisfaction question, end to
end: the real gateway in-process with its lifespan (its SMS outbox and follow-up workers run), a
real Redis, the real Twilio SDK against the local fake of Twilio, and the gateway's clock moved
a week on instead of waiting. Rasa is down here: the consent question is put where the gateway
puts it after a turn with offers (that trigger is tested on the real stack at the end), and a
person is reached through the gateway's own path for "/request_human"."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import redis.asyncio as aioredis
from conftest import asgi_gateway, flushed_redis
from fakes.twilio_api import FakeTwilio
from insight_helpers import counted, every_row
from outbox_helpers import outbox_drained
from test_erasure import _staff, every_stored_text, hits
from test_sms_webhook import _form, _signature

from indgang import followup, handoff, keys, transcript
from indgang.devstack import Stack, free_port
from indgang.dialogue import Button, OfferCard, Reply
from indgang.followup import FollowUpSender
from indgang.i18n import t
from indgang.inbound import Inbound
from indgang.insight import Metric
from indgang.records.db import Database
from indgang.redis_store import connect
from indgang.settings import Settings
from indgang.sms import recipients
from indgang.sms.compose import compose, measure
from indgang.staff.accounts import Role
from webhook.citizen import TOKEN_HEADER
from webhook.routers.followup import FOLLOWUP_HEADER

pytestmark = pytest.mark.anyio

NUMBER = "+4521436587"
WEEK = 7 * 24 * 60 * 60
TYPES = ["gaeldsraadgivning", "booking"]
COPENHAGEN = ZoneInfo("Europe/Copenhagen")


class Clock:
    """The gateway's time, moved by the test."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(base_settings: Settings, fake_twilio: FakeTwilio) -> Settings:
    dead = f"http://127.0.0.1:{free_port()}"  # Rasa and the actions are down
    update = {
        "rasa_url": dead,
        "action_server_url": dead,
        "booking_scheduler_interval_seconds": 0.05,  # also how often follow-ups are looked for
        "staff_opening_hours": "mon-sun 00:00-24:00",  # the opening-hours test sets its own
        "redis_db": 6,  # its own: the follow-up and outbox sets are global
    }
    return fake_twilio.configure(base_settings).model_copy(update=update)


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    async with flushed_redis(settings) as client:
        yield client


@pytest.fixture
def conv(settings: Settings) -> str:
    return recipients.conversation_id(NUMBER, settings)


async def _sms(client: httpx.AsyncClient, settings: Settings, body: str) -> None:
    form = _form(body, sender=NUMBER)
    signature = _signature(settings, "/twilio/sms", form)
    response = await client.post("/twilio/sms", data=form, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200, response.text
    store = connect(settings)
    await outbox_drained(store)
    await store.aclose()


def _bodies(fake_twilio: FakeTwilio) -> list[str]:
    return [m["Body"] for m in fake_twilio.sent()]


async def _wait_for_sms(fake_twilio: FakeTwilio, text: str, seconds: float = 10) -> str:
    deadline = time.monotonic() + seconds
    while not any(text in body for body in _bodies(fake_twilio)):
        assert time.monotonic() < deadline, f"no SMS with {text!r}: {_bodies(fake_twilio)}"
        await asyncio.sleep(0.05)
    return next(body for body in _bodies(fake_twilio) if text in body)


async def _consent_by_sms(
    client: httpx.AsyncClient, settings: Settings, redis: aioredis.Redis, fake_twilio: FakeTwilio, conv: str
) -> None:
    """A conversation that got guidance, asked for consent (as the gateway does after a turn with
    offers), answered JA by SMS."""
    await _sms(client, settings, "Hej")
    ask = await followup.ask_consent(redis, settings, conv, "sms", "da", TYPES)
    assert ask is not None and "Svar JA eller NEJ" in ask.text and not ask.buttons
    assert measure(ask.text).segments == 1
    await _sms(client, settings, "Ja")
    assert "om en uge" in fake_twilio.sent()[-1]["Body"]
    assert await redis.zcard(keys.followup_due()) == 1


# --- reading the answers ------------------------------------------------------------------------


def test_answers_are_read_in_danish_and_english_and_other_words_are_no_answer() -> None:
    assert [followup.outcome_answer(w) for w in ("JA", "nej!", "Delvis", "partly", "/followup_no")] == [
        "yes",
        "no",
        "partly",
        "partly",
        "no",
    ]
    assert followup.outcome_answer("jeg fik ikke svar fra dem") is None
    assert [followup.satisfaction_answer(w) for w in ("4", " 5. ", "/satisfaction_2", "6", "45")] == [
        4,
        5,
        2,
        None,
        None,
    ]
    assert followup.consent_answer("/followup_consent_no") is False
    assert followup.consent_answer("Yes") is True
    assert followup.consent_answer("slet") is None  # the erase keyword is never a consent
    for lang in ("da", "en"):
        for key in ("question", "consent_no", "answer_yes", "answer_not"):
            assert measure(t(f"followup.{key}", lang)).segments == 1, (lang, key)
        assert measure(t("satisfaction.question", lang)).segments == 1


def offer() -> OfferCard:
    return OfferCard(id="gaeld-1", type="gaeldsraadgivning", title="Gældsrådgivning")


class GuidingEngine:
    """Stands in for Rasa in this domain test of the trigger (the gateway's own logic): every
    turn shows one offer. The real engine's turn is tested on the stack at the end."""

    async def send(self, conversation_id: str, text: str, metadata: dict[str, Any]) -> list[Reply]:
        return [Reply(text="Her er et sted, der kan hjælpe.", offers=[offer()])]

    async def record_staff_turn(self, conversation_id: str, text: str, staff: str) -> None:
        return None


async def test_a_turn_with_offers_asks_for_consent_once_and_yes_keeps_a_followup(
    records: Database, settings: Settings, redis: aioredis.Redis
) -> None:
    inbound = Inbound(redis, records, GuidingEngine(), settings, clock=lambda: 1_000_000.0)
    first = await inbound.handle("web-guided-0123456789abcdef", "jeg har gæld", "web")
    [consent] = first.after
    assert consent.text == t("followup.consent", "da", when=t("followup.in_a_week", "da"))
    assert first.replies[0].offers  # the consent comes after the guidance
    second = await inbound.handle("web-guided-0123456789abcdef", "og mere gæld", "web")
    assert second.after == []  # once per conversation; and the other words went to the engine
    assert second.replies[0].offers

    sms = await inbound.handle("sms-guided-0123456789abcdef", "jeg har gæld", "sms")
    [consent] = sms.after
    assert consent.text.endswith("Svar JA eller NEJ.") and not consent.buttons
    yes = await inbound.handle("sms-guided-0123456789abcdef", "ja", "sms")
    assert yes.followup_key is None and yes.replies[0].text.startswith("Tak. Vi skriver til dig om en uge")
    [(followup_id, due)] = await redis.zrange(keys.followup_due(), 0, -1, withscores=True)
    assert due == 1_000_000.0 + WEEK
    record = await redis.hgetall(keys.followup(followup_id))
    assert json.loads(record["types"]) == ["gaeldsraadgivning"] and record["channel"] == "sms"

    asking = [Reply(text="Vil du booke?", buttons=[Button(title="Ja", payload="/affirm")], offers=[offer()])]
    assert followup.types_shown(asking, booked=True) == []  # its own yes/no question comes first
    off = Inbound(redis, records, GuidingEngine(), settings.model_copy(update={"followup_enabled": False}))
    assert (await off.handle("web-unasked-0123456789abcdef", "jeg har gæld", "web")).after == []


def test_by_sms_the_consent_comes_after_the_numbered_choices_in_the_same_sms() -> None:
    guidance = Reply(
        text="Her er et sted.", buttons=[Button(title="Book en samtale", payload="/book_contact")]
    )
    consent = Reply(
        text=t("followup.consent", "da", when="om en uge") + " " + t("followup.reply_yes_no", "da")
    )
    composed = compose([guidance], "da", after=[consent])
    assert composed.text.index("1) Book en samtale") < composed.text.index("Må vi skrive")
    assert composed.text.endswith("Svar JA eller NEJ.")
    assert [b.payload for b in composed.choices] == ["/book_contact"]  # JA/NEJ are words, not numbers


# --- SMS ---------------------------------------------------------------------------------------


async def test_an_sms_followup_goes_a_week_later_and_nej_offers_a_booking_or_a_person(
    settings: Settings, redis: aioredis.Redis, fake_twilio: FakeTwilio, clock: Clock, conv: str
) -> None:
    async with asgi_gateway(settings, clock) as client:
        await _consent_by_sms(client, settings, redis, fake_twilio, conv)
        sent = len(fake_twilio.sent())
        await asyncio.sleep(0.5)  # the worker looks many times: not yet due
        assert len(fake_twilio.sent()) == sent

        clock.offset = WEEK + 60
        question = await _wait_for_sms(fake_twilio, "Fik du den hjælp, du havde brug for?")
        assert "Svar JA, NEJ eller DELVIS" in question
        await outbox_drained(redis)
        assert await redis.zcard(keys.followup_due()) == 0  # asked once, never again
        assert not await redis.exists(keys.followup_of(conv))

        await _sms(client, settings, "Nej")
        offer = fake_twilio.sent()[-1]["Body"]
        assert "1) Book en samtale" in offer and "2) Tal med en medarbejder" in offer
        await _sms(client, settings, "2")  # the numbered choice: a person
        assert (await handoff.get(redis, conv)).state == handoff.HandoffState.REQUESTED

    # counted per day and channel for the insight page, in SQL; counts only: no id, number or words
    outcomes = await counted(settings.database_url, Metric.FOLLOWUP)
    assert outcomes == {"gaeldsraadgivning:no": 1, "booking:no": 1}
    records = Database(settings.database_url)
    rows = await every_row(records)
    await records.aclose()
    assert {channel for _, channel, *_ in rows} == {"sms"}
    assert not [row for row in rows if conv in repr(row) or NUMBER in repr(row)]


async def test_stop_cancels_the_sms_followup(
    settings: Settings, redis: aioredis.Redis, fake_twilio: FakeTwilio, clock: Clock, conv: str
) -> None:
    async with asgi_gateway(settings, clock) as client:
        await _consent_by_sms(client, settings, redis, fake_twilio, conv)
        await _sms(client, settings, "STOP")
        assert await redis.zcard(keys.followup_due()) == 0
        clock.offset = WEEK + 60
        await asyncio.sleep(0.5)
    assert not any("Fik du den hjælp" in body for body in _bodies(fake_twilio))


async def test_erasure_removes_the_pending_followup(
    settings: Settings, redis: aioredis.Redis, fake_twilio: FakeTwilio, clock: Clock, conv: str
) -> None:
    async with asgi_gateway(settings, clock) as client:
        await _consent_by_sms(client, settings, redis, fake_twilio, conv)
        [followup_id] = await redis.zrange(keys.followup_due(), 0, -1)
        await _sms(client, settings, "SLET")
        await _sms(client, settings, "JA")
        assert not await redis.exists(keys.followup(followup_id))
        assert await redis.zcard(keys.followup_due()) == 0
        clock.offset = WEEK + 60
        await asyncio.sleep(0.5)
    assert not any("Fik du den hjælp" in body for body in _bodies(fake_twilio))
    left = [where for where, _ in hits(await every_stored_text(redis), conv) if "events" not in where]
    assert left == []


async def test_outside_opening_hours_the_followup_waits_and_a_crashed_worker_is_taken_over(
    settings: Settings, redis: aioredis.Redis, conv: str
) -> None:
    office = settings.model_copy(update={"staff_opening_hours": "mon-fri 08:00-15:00"})
    await recipients.remember(redis, conv, NUMBER, settings.conversation_ttl_seconds)
    saturday_night = datetime(2026, 12, 5, 22, 0, tzinfo=COPENHAGEN).timestamp()
    await followup.schedule(redis, office, conv, "sms", "da", TYPES, saturday_night - WEEK)
    now = [saturday_night]
    sender = FollowUpSender(redis, office, clock=lambda: now[0])

    assert await sender.run_once() == 0
    monday = datetime(2026, 12, 7, 8, 0, tzinfo=COPENHAGEN).timestamp()
    [(_, due)] = await redis.zrange(keys.followup_due(), 0, -1, withscores=True)
    assert due == monday

    now[0] = monday + 60
    [claimed] = await sender.leases.claim(now[0], 10)  # a worker that claims it and dies
    assert await sender.run_once() == 0  # its lease holds
    now[0] += office.outbox_lease_seconds + 1
    assert await sender.run_once() == 1
    assert await sender.run_once() == 0  # once
    [(send_id, item)] = (await redis.hgetall(keys.sms_outbox_items())).items()
    assert send_id == f"followup.{claimed.member}.0"
    assert json.loads(item)["text"] == t("followup.question", "da")
    [asked] = (await transcript.read(redis, conv))[0]
    assert asked.text == t("followup.question", "da")


# --- the web --------------------------------------------------------------------------------------


async def _web_conversation(client: httpx.AsyncClient, conv: str, text: str = "Hej") -> dict[str, str]:
    first = await client.post("/api/v1/chat", json={"conversation_id": conv, "text": text})
    assert first.status_code in (200, 503), first.text  # 503: the engine is down, the token came
    return {TOKEN_HEADER: first.json()["conversation_token"]}


async def test_a_web_followup_is_asked_on_the_next_visit_and_delvis_offers_a_booking_or_a_person(
    settings: Settings, redis: aioredis.Redis, clock: Clock
) -> None:
    conv = "web-followup-test-0123456789abcdef"
    async with asgi_gateway(settings, clock) as client:
        mine = await _web_conversation(client, conv)
        ask = await followup.ask_consent(redis, settings, conv, "web", "da", ["krisecenter"])
        assert ask is not None and [b.payload for b in ask.buttons] == [
            followup.CONSENT_YES,
            followup.CONSENT_NO,
        ]
        agreed = await client.post(
            "/api/v1/chat", json={"conversation_id": conv, "text": followup.CONSENT_YES}, headers=mine
        )
        assert agreed.status_code == 200, agreed.text
        key = {FOLLOWUP_HEADER: agreed.json()["followup_key"]}
        assert "denne enhed igen om en uge" in agreed.json()["replies"][0]["text"]

        assert (await client.post("/api/v1/followup", headers=key)).status_code == 204  # not yet
        clock.offset = WEEK + 60
        visit = await client.post("/api/v1/followup", headers=key)
        assert visit.status_code == 200, visit.text
        new = visit.json()["conversation_id"]
        assert new != conv
        theirs = {TOKEN_HEADER: visit.json()["conversation_token"]}
        page = (await client.get(f"/api/v1/chat/{new}/messages", headers=theirs)).json()
        [question] = page["messages"]
        assert question["text"] == t("followup.question", "da")
        assert [b["title"] for b in question["buttons"]] == ["Ja", "Nej", "Delvis"]
        assert (await client.post("/api/v1/followup", headers=key)).status_code == 404  # spent

        answer = await client.post(
            "/api/v1/chat", json={"conversation_id": new, "text": "/followup_partly"}, headers=theirs
        )
        assert answer.status_code == 200, answer.text
        [reply] = answer.json()["replies"]
        assert [b["payload"] for b in reply["buttons"]] == ["/book_contact", "/request_human"]
        person = await client.post(
            "/api/v1/chat", json={"conversation_id": new, "text": "/request_human"}, headers=theirs
        )
        assert person.json()["handoff"] == "requested"
    assert await counted(settings.database_url, Metric.FOLLOWUP) == {"krisecenter:partly": 1}


async def test_a_followup_key_opens_nothing_of_the_conversation_it_came_from(
    settings: Settings, redis: aioredis.Redis, clock: Clock
) -> None:
    """An attacker with a guessed key gets nothing; one with a real key gets only the question, in
    a new conversation whose token does not open the old one's words."""
    conv = "web-followup-attack-0123456789abcdef"
    async with asgi_gateway(settings, clock) as client:
        mine = await _web_conversation(client, conv, "min mand drikker hver dag")
        await followup.ask_consent(redis, settings, conv, "web", "da", ["alkoholbehandling"])
        agreed = await client.post(
            "/api/v1/chat", json={"conversation_id": conv, "text": followup.CONSENT_YES}, headers=mine
        )
        key = agreed.json()["followup_key"]
        clock.offset = WEEK + 60
        guessed = await client.post("/api/v1/followup", headers={FOLLOWUP_HEADER: "x" * len(key)})
        assert guessed.status_code == 404
        visit = await client.post("/api/v1/followup", headers={FOLLOWUP_HEADER: key})
        assert visit.status_code == 200 and "drikker" not in visit.text
        theirs = {TOKEN_HEADER: visit.json()["conversation_token"]}
        old = await client.get(f"/api/v1/chat/{conv}/messages", headers=theirs)
        assert old.status_code == 403
        as_token = await client.get(f"/api/v1/chat/{conv}/messages", headers={TOKEN_HEADER: key})
        assert as_token.status_code == 403


async def test_a_web_consent_answered_with_other_words_goes_on_and_is_not_asked_again(
    settings: Settings, redis: aioredis.Redis, clock: Clock
) -> None:
    conv = "web-followup-skip-0123456789abcdef"
    async with asgi_gateway(settings, clock) as client:
        mine = await _web_conversation(client, conv)
        assert await followup.ask_consent(redis, settings, conv, "web", "da", ["krisecenter"])
        other = await client.post(
            "/api/v1/chat", json={"conversation_id": conv, "text": "Hvor ligger det?"}, headers=mine
        )
        assert "followup_key" not in other.json()
        assert other.json()["replies"][0]["text"] != t("followup.consent_no", "da")  # to the engine
        assert await followup.ask_consent(redis, settings, conv, "web", "da", ["krisecenter"]) is None
        late = await client.post(
            "/api/v1/chat", json={"conversation_id": conv, "text": followup.CONSENT_YES}, headers=mine
        )
        assert "followup_key" not in late.json()
    assert not await redis.exists(keys.followup_of(conv))


# --- satisfaction ----------------------------------------------------------------------------------


async def test_satisfaction_by_web_buttons_once_and_skippable(
    settings: Settings, redis: aioredis.Redis, records: Database, clock: Clock
) -> None:
    async with asgi_gateway(settings, clock) as client:
        answered, skipped = "web-satisfied-0123456789abcdef", "web-skipping-0123456789abcdef"
        tokens = {c: await _web_conversation(client, c, "/request_human") for c in (answered, skipped)}
        staff = await _staff(client, redis, records, "mette", Role.STAFF)
        for conv in (answered, skipped):
            assert (
                await client.post(f"/api/v1/staff/conversations/{conv}/takeover", headers=staff)
            ).is_success
            assert (await client.post(f"/api/v1/staff/conversations/{conv}/close", headers=staff)).is_success
            page = (await client.get(f"/api/v1/chat/{conv}/messages", headers=tokens[conv])).json()
            question = page["messages"][-1]
            assert question["text"] == t("satisfaction.question", "da")
            assert [b["payload"] for b in question["buttons"]] == [f"/satisfaction_{n}" for n in range(1, 6)]

        def say(conv: str, text: str) -> Awaitable[httpx.Response]:
            return client.post(
                "/api/v1/chat", json={"conversation_id": conv, "text": text}, headers=tokens[conv]
            )

        thanks = await say(answered, "/satisfaction_4")
        assert thanks.json()["replies"][0]["text"] == t("satisfaction.thanks", "da")
        again = await say(answered, "5")  # never asked twice: now an ordinary message
        assert again.json()["replies"][0]["text"] != t("satisfaction.thanks", "da")
        skip = await say(skipped, "Tak for hjælpen")
        assert skip.json()["replies"][0]["text"] != t("satisfaction.thanks", "da")
    assert await counted(records, Metric.SATISFACTION) == {"4": 1}


async def test_satisfaction_by_sms_reply(
    settings: Settings,
    redis: aioredis.Redis,
    records: Database,
    fake_twilio: FakeTwilio,
    clock: Clock,
    conv: str,
) -> None:
    async with asgi_gateway(settings, clock) as client:
        await _sms(client, settings, "/request_human")  # the engine is down: the gateway's own path
        staff = await _staff(client, redis, records, "mette", Role.STAFF)
        assert (await client.post(f"/api/v1/staff/conversations/{conv}/takeover", headers=staff)).is_success
        assert (await client.post(f"/api/v1/staff/conversations/{conv}/close", headers=staff)).is_success
        question = await _wait_for_sms(fake_twilio, "Hvor tilfreds var du med hjælpen?")
        assert "Svar 1-5" in question and measure(question).segments == 1
        await _sms(client, settings, "5")
        assert fake_twilio.sent()[-1]["Body"] == t("satisfaction.thanks", "da")
    assert await counted(records, Metric.SATISFACTION) == {"5": 1}


async def test_satisfaction_can_be_turned_off(
    settings: Settings, redis: aioredis.Redis, records: Database, clock: Clock
) -> None:
    off = settings.model_copy(update={"satisfaction_enabled": False})
    conv = "web-unasked-0123456789abcdef"
    async with asgi_gateway(off, clock) as client:
        mine = await _web_conversation(client, conv, "/request_human")
        staff = await _staff(client, redis, records, "mette", Role.STAFF)
        assert (await client.post(f"/api/v1/staff/conversations/{conv}/takeover", headers=staff)).is_success
        assert (await client.post(f"/api/v1/staff/conversations/{conv}/close", headers=staff)).is_success
        page = (await client.get(f"/api/v1/chat/{conv}/messages", headers=mine)).json()
    assert page["messages"][-1]["text"] == t("staff.closed_conversation", "da")
    assert not await redis.exists(keys.followup_pending(conv))


# --- the trigger, on the real stack ----------------------------------------------------------------


async def test_guidance_asks_for_consent_once_and_yes_gives_the_page_a_key(stack: Stack) -> None:
    conv = f"web-guided-{time.time_ns()}"
    url = f"{stack.gateway_url}/api/v1/chat"
    async with httpx.AsyncClient(timeout=60) as client:
        first = await client.post(
            url, json={"conversation_id": conv, "text": "Jeg har svært ved at betale min gæld"}
        )
        assert first.status_code == 200, first.text
        mine = {TOKEN_HEADER: first.json()["conversation_token"]}
        replies = first.json()["replies"]
        assert any(r["offers"] for r in replies)
        consent = replies[-1]
        assert consent["text"].startswith("Må vi skrive til dig om en uge")
        assert [b["payload"] for b in consent["buttons"]] == [followup.CONSENT_YES, followup.CONSENT_NO]
        yes = await client.post(
            url, json={"conversation_id": conv, "text": followup.CONSENT_YES}, headers=mine
        )
        assert yes.status_code == 200 and yes.json()["followup_key"]
        more = await client.post(
            url,
            json={"conversation_id": conv, "text": "Jeg har også brug for hjælp til mit misbrug"},
            headers=mine,
        )
        assert not any(r["text"].startswith("Må vi skrive") for r in more.json()["replies"])
