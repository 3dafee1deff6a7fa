"""Rate-limit keys of one kind never meet another kind's: a citizen cannot fill the SMS
spending guard (and so stop every SMS, crisis replies included) by choosing a conversation id."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import redis.asyncio as aioredis
from test_staff_console import Login, login, waiting_conversation  # noqa: F401 (fixtures)

from indgang import keys, ratelimit
from indgang.ratelimit import Kind
from indgang.settings import Settings
from indgang.sms import throttle

pytestmark = pytest.mark.anyio

# The global SMS counter's subject before kinds existed: the attack's conversation id.
OLD_SMS_COUNTER = "sms-out:all"


@pytest.fixture
async def http(live_gateway: str, redis: aioredis.Redis) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_gateway, timeout=30) as client:
        yield client


async def test_chat_posts_named_like_the_sms_counter_do_not_stop_sms(
    http: httpx.AsyncClient, redis: aioredis.Redis, sms_settings: Settings
) -> None:
    """The attack from issue 16 through the real gateway: a minute's worth of SMS spend posted
    under the global SMS counter's name (refused as an id since the conversation token came)."""
    for _ in range(sms_settings.sms_global_limit):
        answer = await http.post("/api/v1/chat", json={"conversation_id": OLD_SMS_COUNTER, "text": "hej"})
        assert answer.status_code == 422
    assert await throttle.check(redis, sms_settings, "sms-abc") is None


async def test_no_chat_subject_reaches_the_sms_counters(
    redis: aioredis.Redis, sms_settings: Settings
) -> None:
    """Whatever a conversation id is (validation may loosen one day), the chat's counter is not
    the SMS counter: the key names carry the kind."""
    for subject in (OLD_SMS_COUNTER, "sms-out:sms-abc", throttle.GLOBAL_SUBJECT, "sms-abc"):
        for _ in range(sms_settings.sms_global_limit + 1):
            await ratelimit.hit(redis, Kind.CHAT, subject, sms_settings.sms_global_limit, 60)
    assert await throttle.check(redis, sms_settings, "sms-abc") is None
    counters = await redis.keys(keys.rate_limit_prefix() + ":*")
    assert len([key for key in counters if key.startswith(f"{keys.rate_limit_prefix()}:LIMITER/chat/")]) == 4


async def test_an_emergency_reply_goes_even_when_every_sms_limit_is_spent(
    redis: aioredis.Redis, sms_settings: Settings
) -> None:
    settings = sms_settings.model_copy(update={"sms_global_limit": 2, "sms_per_number_limit": 1})
    assert [await throttle.check(redis, settings, f"sms-{n}") for n in "abc"] == [None, None, "global"]
    assert await throttle.check(redis, settings, "sms-a") == "per_number"
    assert await throttle.check(redis, settings, "sms-a", urgent=True) is None
    assert await throttle.check(redis, settings, "sms-d", urgent=True) is None


async def test_no_conversation_id_reaches_another_conversations_keys(
    login: Login,  # noqa: F811
    http: httpx.AsyncClient,
) -> None:
    """Ids are validated everywhere they enter, so no id names another kind of key: taking over
    "<id>:transcript" would make the inbox read a transcript stream as a conversation record."""
    conv = await waiting_conversation(http)
    staff = await login("sara")
    for made_up in (f"{conv}:transcript", f"{conv}:handoff", f"{conv}.x"):
        assert (await staff.post(f"/api/v1/staff/conversations/{made_up}/takeover")).status_code == 422
    assert (await staff.get("/staff")).status_code == 200
    assert (await staff.post(f"/api/v1/staff/conversations/{conv}/takeover")).status_code == 200
