"""A conversation belongs to its citizen alone (api.md, "The conversation token"): whoever does
not hold a conversation's token can neither read, write to, follow nor erase it, and cannot tell
whether it exists. Attacks over real HTTP against the gateway (engine down) and a real Redis."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
import redis.asyncio as aioredis
from fastapi.routing import APIRoute

from indgang import conversation, keys, transcript
from indgang.erasure import erase_conversation
from indgang.records.db import Database
from indgang.settings import Settings

pytestmark = pytest.mark.anyio

TOKEN_HEADER = "X-Conversation-Token"
TTL = 3600


@pytest.fixture
async def http(live_gateway: str, redis: aioredis.Redis) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_gateway, timeout=30) as client:
        yield client


def _new_id() -> str:
    return f"web-{uuid.uuid4().hex}"


async def _start(http: httpx.AsyncClient, text: str = "jeg har brug for hjælp") -> tuple[str, str]:
    """A citizen's new conversation: its id and the token its first response hands out."""
    conv = _new_id()
    first = await http.post("/api/v1/chat", json={"conversation_id": conv, "text": text})
    assert first.status_code == 503  # the engine is down; the message and the reply are kept
    token = first.json().get("conversation_token")
    assert token, "the first answer of a new conversation carries its token"
    return conv, token


def _with(token: str | None) -> dict[str, str]:
    return {TOKEN_HEADER: token} if token is not None else {}


WRONG_TOKENS = [None, "", "not-the-token", "x" * 300]


# --- the token itself -----------------------------------------------------------------------


async def test_the_first_message_creates_the_conversation_and_hands_out_its_token_once(
    http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    conv, token = await _start(http)
    assert len(token) >= 22  # at least 128 bits, base64url
    # Only a hash is stored, in the conversation's record, which keeps the conversation's TTL.
    stored = await redis.hgetall(keys.conversation(conv))
    assert token not in json.dumps(stored)
    assert 0 < await redis.ttl(keys.conversation(conv)) <= 30 * 86400
    for key in await redis.keys("*"):
        kind = await redis.type(key)
        dumped = (
            json.dumps(await redis.hgetall(key))
            if kind == "hash"
            else json.dumps(await redis.xrange(key))
            if kind == "stream"
            else str(await redis.get(key))
            if kind == "string"
            else ""
        )
        assert token not in dumped, key

    second = await http.post(
        "/api/v1/chat", json={"conversation_id": conv, "text": "hallo?"}, headers=_with(token)
    )
    assert second.status_code == 503
    assert second.json().get("conversation_token") is None  # handed out once, never again
    page = await http.get(f"/api/v1/chat/{conv}/messages", headers=_with(token))
    assert page.status_code == 200
    assert [m["text"] for m in page.json()["messages"] if m["from"] == "user"] == [
        "jeg har brug for hjælp",
        "hallo?",
    ]


async def test_two_first_messages_at_once_only_one_gets_the_conversation(redis: aioredis.Redis) -> None:
    conv = _new_id()
    tokens = await asyncio.gather(*(conversation.start_web(redis, conv, TTL) for _ in range(8)))
    assert len([t for t in tokens if t]) == 1


async def test_an_id_with_anything_stored_under_it_is_not_new(redis: aioredis.Redis) -> None:
    conv = _new_id()
    await transcript.append(redis, conv, "user", "hej", TTL, channel="web")
    assert await conversation.start_web(redis, conv, TTL) is None


# --- attacks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("wrong", WRONG_TOKENS)
async def test_reading_anothers_messages_is_forbidden(
    http: httpx.AsyncClient, redis: aioredis.Redis, wrong: str | None
) -> None:
    conv, _ = await _start(http)
    response = await http.get(f"/api/v1/chat/{conv}/messages", headers=_with(wrong))
    assert response.status_code == 403
    assert "jeg har brug for hjælp" not in response.text


@pytest.mark.parametrize("wrong", WRONG_TOKENS)
async def test_posting_into_anothers_conversation_is_forbidden_and_nothing_is_stored(
    http: httpx.AsyncClient, redis: aioredis.Redis, wrong: str | None
) -> None:
    conv, _ = await _start(http)
    before = await redis.xlen(keys.transcript(conv))
    response = await http.post(
        "/api/v1/chat", json={"conversation_id": conv, "text": "jeg er en anden"}, headers=_with(wrong)
    )
    assert response.status_code == 403
    assert "conversation_token" not in response.json()
    assert await redis.xlen(keys.transcript(conv)) == before


async def test_one_conversations_token_opens_no_other(http: httpx.AsyncClient, redis: aioredis.Redis) -> None:
    mine, my_token = await _start(http)
    theirs, _ = await _start(http)
    assert (await http.get(f"/api/v1/chat/{mine}/messages", headers=_with(my_token))).status_code == 200
    assert (await http.get(f"/api/v1/chat/{theirs}/messages", headers=_with(my_token))).status_code == 403
    posted = await http.post(
        "/api/v1/chat", json={"conversation_id": theirs, "text": "hej"}, headers=_with(my_token)
    )
    assert posted.status_code == 403


@pytest.mark.parametrize("wrong", WRONG_TOKENS)
async def test_streaming_anothers_conversation_is_forbidden(
    http: httpx.AsyncClient, redis: aioredis.Redis, wrong: str | None
) -> None:
    conv, _ = await _start(http)
    with anyio.fail_after(15):
        async with http.stream("GET", f"/api/v1/chat/{conv}/events", headers=_with(wrong)) as response:
            assert response.status_code == 403
            assert "text/event-stream" not in response.headers["content-type"]
            await response.aread()
    assert "jeg har brug for hjælp" not in response.text


@pytest.mark.parametrize("wrong", WRONG_TOKENS)
async def test_erasing_anothers_conversation_is_forbidden(
    http: httpx.AsyncClient, redis: aioredis.Redis, wrong: str | None
) -> None:
    conv, token = await _start(http)
    response = await http.delete(f"/api/v1/chat/{conv}", headers=_with(wrong))
    assert response.status_code == 403
    assert await redis.exists(keys.conversation(conv), keys.transcript(conv)) == 2
    # The owner still can.
    assert (await http.delete(f"/api/v1/chat/{conv}", headers=_with(token))).status_code == 200
    assert await redis.exists(*keys.conversation_keys(conv)) == 0


async def test_the_403_is_the_same_whether_or_not_the_conversation_exists(
    http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    existing, _ = await _start(http)
    unknown = _new_id()
    for wrong in (None, "not-the-token"):
        for method, suffix in (("GET", "/messages"), ("GET", "/events"), ("DELETE", "")):
            answers = [
                await http.request(method, f"/api/v1/chat/{conv}{suffix}", headers=_with(wrong))
                for conv in (existing, unknown)
            ]
            assert [a.status_code for a in answers] == [403, 403], (method, suffix)
            assert answers[0].content == answers[1].content, (method, suffix)
            assert answers[0].json()["error"] == "forbidden"
    assert await redis.exists(keys.conversation(unknown)) == 0  # asking created nothing


async def test_an_open_stream_ends_when_its_conversation_is_erased(
    records: Database, http: httpx.AsyncClient, redis: aioredis.Redis, base_settings: Settings
) -> None:
    conv, token = await _start(http)
    with anyio.fail_after(15):
        async with http.stream("GET", f"/api/v1/chat/{conv}/events", headers=_with(token)) as response:
            assert response.status_code == 200
            await erase_conversation(records, redis, base_settings, conv, requested_by="staff")
            async for _ in response.aiter_lines():
                pass  # the stream ends by itself (within one quiet wait), not at the timeout
    assert (await http.get(f"/api/v1/chat/{conv}/events", headers=_with(token))).status_code == 403


async def test_an_erased_conversations_token_no_longer_reads_it(
    http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    conv, token = await _start(http)
    assert (await http.delete(f"/api/v1/chat/{conv}", headers=_with(token))).status_code == 200
    assert (await http.get(f"/api/v1/chat/{conv}/messages", headers=_with(token))).status_code == 403


# --- ids the web API never reaches --------------------------------------------------------------


async def test_an_sms_conversation_is_unreachable_from_the_web(
    http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    conv = "sms-" + uuid.uuid4().hex * 2
    await conversation.touch(redis, conv, "sms", "da", TTL)
    await transcript.append(redis, conv, "user", "mit cpr-nummer er ...", TTL, channel="sms")
    for attempt in (
        http.post("/api/v1/chat", json={"conversation_id": conv, "text": "hej"}),
        http.get(f"/api/v1/chat/{conv}/messages"),
        http.get(f"/api/v1/chat/{conv}/events"),
        http.delete(f"/api/v1/chat/{conv}"),
        http.post("/api/v1/chat", json={"conversation_id": "SMS-" + conv[4:], "text": "hej"}),
    ):
        response = await attempt
        assert response.status_code == 422, response.text
    assert await redis.xlen(keys.transcript(conv)) == 1  # nothing was added
    assert await redis.exists(keys.conversation(conv)) == 1  # nor erased


@pytest.mark.parametrize(
    "bad",
    [
        "web:" + "a" * 20,  # ':' would reach into other keys' name space
        "web." + "a" * 20,
        "a" * 15,  # too short to be unguessable
        "a" * 129,
        "web-" + "a" * 20 + "!",
    ],
)
async def test_a_web_id_must_be_16_to_128_letters_digits_dashes_or_underscores(
    http: httpx.AsyncClient, redis: aioredis.Redis, bad: str
) -> None:
    response = await http.post("/api/v1/chat", json={"conversation_id": bad, "text": "hej"})
    assert response.status_code == 422
    assert any("conversation_id" in error["loc"] for error in response.json()["detail"])
    for suffix in ("/messages", "/events", ""):
        method = "DELETE" if suffix == "" else "GET"
        answer = await http.request(method, f"/api/v1/chat/{bad}{suffix}")
        assert answer.status_code in (404, 422), (bad, suffix)  # a '.' or '/' may not even route
    assert await redis.keys("*conv*") == []


async def test_every_citizen_conversation_route_checks_the_token(http: httpx.AsyncClient) -> None:
    """A route added later (an export, say) cannot forget the check: each citizen route under
    /api/v1/chat depends on one of the access dependencies, and the schema says so."""
    from webhook.citizen import chat_conversation, citizen_conversation
    from webhook.routers import chat, chat_stream

    checks = {chat_conversation, citizen_conversation}
    routes = [r for router in (chat.router, chat_stream.router) for r in router.routes]
    assert all(isinstance(r, APIRoute) for r in routes) and len(routes) >= 4
    for route in routes:
        used = {d.call for d in route.dependant.dependencies}
        assert used & checks, route.path

    schema = (await http.get("/openapi.json")).json()
    operations = [
        (path, method, operation)
        for path, item in schema["paths"].items()
        if path.startswith("/api/v1/chat")
        for method, operation in item.items()
    ]
    assert len(operations) >= 4
    for path, method, operation in operations:
        headers = {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"}
        assert TOKEN_HEADER.lower() in headers, (method, path)
        assert "403" in operation["responses"], (method, path)
