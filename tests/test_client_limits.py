"""Limits per client beside the per-conversation ones, through the real gateway: new
conversation ids every time get a client no further, another client is not affected, and an
X-Forwarded-For header counts only when a trusted proxy sent it. Live streams are capped per
client and in all, and fed by one Redis reader however many are open."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import pytest
import redis.asyncio as aioredis
from conftest import serving

from indgang import conversation, transcript
from indgang.devstack import free_port
from indgang.settings import Settings
from webhook.citizen import TOKEN_HEADER

pytestmark = pytest.mark.anyio

TTL = 3600
A, B = "203.0.113.7", "203.0.113.8"  # two citizens behind the local proxy (loopback)


def serve(settings: Settings) -> contextlib.AbstractContextManager[str]:
    """The real gateway with `settings`, Rasa unreachable (the messages are stored, then 503)."""
    dead = f"http://127.0.0.1:{free_port()}"
    return serving(settings.model_copy(update={"rasa_url": dead, "action_server_url": dead}))


def _as(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


def _message() -> dict[str, str]:
    return {"conversation_id": uuid.uuid4().hex, "text": "hej"}


@pytest.fixture(scope="module")
def limited(base_settings: Settings) -> Iterator[str]:
    settings = base_settings.model_copy(
        update={
            "client_chat_limit": 3,
            "client_offers_limit": 2,
            "client_streams_limit": 6,
            "streams_per_client": 2,
            "streams_total": 3,
        }
    )
    with serve(settings) as url:
        yield url


@pytest.fixture(scope="module")
def behind_unknown_proxy(base_settings: Settings) -> Iterator[str]:
    """The gateway trusting only a proxy that is not the test's loopback address."""
    settings = base_settings.model_copy(update={"client_chat_limit": 3, "trusted_proxies": "192.0.2.1"})
    with serve(settings) as url:
        yield url


async def _client(url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=httpx.Limits(max_connections=300)) as c:
        yield c


@pytest.fixture
async def http(limited: str, redis: aioredis.Redis) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(limited):
        yield client


async def test_a_client_over_its_chat_limit_is_refused_even_with_new_conversations(
    http: httpx.AsyncClient,
) -> None:
    answers = [await http.post("/api/v1/chat", json=_message(), headers=_as(A)) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [503, 503, 503]  # stored; the engine is down
    refused = answers[3]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["error"] == "rate_limited" and refused.json()["detail"]
    # Refused before anything was made: no conversation, no token for the new id.
    assert "conversation_token" not in refused.json()
    # Another citizen behind the same proxy is not affected.
    assert (await http.post("/api/v1/chat", json=_message(), headers=_as(B))).status_code == 503


async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(
    behind_unknown_proxy: str, redis: aioredis.Redis
) -> None:
    async for http in _client(behind_unknown_proxy):
        statuses = [
            (await http.post("/api/v1/chat", json=_message(), headers=_as(f"198.51.100.{n}"))).status_code
            for n in range(4)
        ]
    assert statuses == [503, 503, 503, 429]


async def test_a_client_over_its_search_limit_is_refused(http: httpx.AsyncClient) -> None:
    async def search(address: str) -> int:
        return (await http.get("/api/v1/offers", params={"q": "bolig"}, headers=_as(address))).status_code

    assert [await search(A) for _ in range(3)] == [200, 200, 429]
    assert await search(B) == 200


async def _own(redis: aioredis.Redis) -> tuple[str, dict[str, str]]:
    conv = uuid.uuid4().hex
    token = await conversation.start_web(redis, conv, TTL)
    assert token is not None
    return conv, {TOKEN_HEADER: token}


async def _open(http: httpx.AsyncClient, redis: aioredis.Redis, address: str) -> httpx.Response:
    conv, mine = await _own(redis)
    request = http.build_request("GET", f"/api/v1/chat/{conv}/events", headers={**mine, **_as(address)})
    return await http.send(request, stream=True)


async def test_live_streams_are_capped_per_client_and_in_all(
    http: httpx.AsyncClient, redis: aioredis.Redis
) -> None:
    first, second = await _open(http, redis, A), await _open(http, redis, A)
    assert first.status_code == second.status_code == 200
    third = await _open(http, redis, A)
    assert third.status_code == 429 and third.headers["Retry-After"]
    assert json.loads(await third.aread())["error"] == "too_many_streams"
    other = await _open(http, redis, B)  # B has room; the gateway's third stream
    assert other.status_code == 200
    full = await _open(http, redis, B)
    assert full.status_code == 503 and json.loads(await full.aread())["error"] == "streams_busy"
    # A stream that ends gives its place back.
    await first.aclose()
    with anyio.fail_after(10):
        while (again := await _open(http, redis, A)).status_code != 200:
            await again.aclose()
            await asyncio.sleep(0.2)
    for response in (second, other, again):
        await response.aclose()


async def _next_message(response: httpx.Response) -> dict:
    async for line in response.aiter_lines():
        if line.startswith("data:"):
            return json.loads(line[5:].strip())
    raise AssertionError("the stream ended early")


async def _redis_clients(redis: aioredis.Redis) -> int:
    return len(await redis.client_list())


async def test_a_hundred_streams_share_a_few_redis_connections_and_stay_live(
    base_settings: Settings, redis: aioredis.Redis
) -> None:
    settings = base_settings.model_copy(update={"streams_per_client": 100, "streams_total": 100})
    before = await _redis_clients(redis)
    with serve(settings) as url:
        async for http in _client(url):
            streams = [await _own(redis) for _ in range(100)]
            responses = [
                await http.send(http.build_request("GET", f"/api/v1/chat/{c}/events", headers=h), stream=True)
                for c, h in streams
            ]
            assert [r.status_code for r in responses] == [200] * 100
            await asyncio.sleep(4)  # every stream has read, waited and checked its token by now
            during = await _redis_clients(redis)
            print(f"Redis clients: {before} before, {during} with 100 streams open")
            assert during - before <= settings.redis_max_connections  # 101 before the shared reader
            # The 101st is refused, and every open stream still gets its news at once.
            assert (await _open(http, redis, A)).status_code == 503
            for n in (0, 57, 99):
                conv, _ = streams[n]
                written = await transcript.append(redis, conv, "staff", f"svar {n}", TTL)
                with anyio.fail_after(2):
                    assert (await _next_message(responses[n]))["id"] == written.id
            for response in responses:
                await response.aclose()
