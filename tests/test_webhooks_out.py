"""Outbound webhooks against a real local receiver (the municipality's system, played by a small
HTTP server) and the real Redis: signatures, retries with a stable event id, dead letters,
durability across crashes and restarts, and one delivery per event when several gateways run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import redis.asyncio as aioredis

from indgang import keys
from indgang.devstack import free_port
from indgang.events import EventType, emit
from indgang.redis_store import connect
from indgang.settings import PROJECT_DIR, Settings
from indgang.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookDispatcher,
    dead_letters,
    retry_dead_letter,
    verify,
)
from indgang.webhooks.dispatcher import GROUP

pytestmark = pytest.mark.anyio
SECRET = "kommunens-delte-hemmelighed"
DISPATCHER_DB = 7


class Server(ThreadingHTTPServer):
    request_queue_size = 128  # two dispatchers open 20 connections at once; the default backlog is 5


class Receiver:
    """Records every POST; answers the first `failures` of them with 503, each after `delay` s."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.failures = 0
        self.delay = 0.0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.received.append((dict(self.headers), body))
                    failing = receiver.failures > 0
                    receiver.failures -= failing
                    delay = receiver.delay
                time.sleep(delay)
                with contextlib.suppress(OSError):  # the dispatcher may have given up waiting
                    self.send_response(503 if failing else 204)
                    self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = Server(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/indgang-events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[dict]:
        return [json.loads(body) for _, body in self.received]

    def attempts(self) -> list[str]:
        return [headers["X-Indgang-Delivery-Attempt"] for headers, _ in self.received]

    async def wait_for(self, count: int, seconds: float = 5.0) -> None:
        deadline = time.monotonic() + seconds
        while len(self.received) < count:
            assert time.monotonic() < deadline, f"{len(self.received)} of {count} requests arrived"
            await asyncio.sleep(0.01)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
async def redis(base_settings: Settings) -> AsyncIterator[aioredis.Redis]:
    """A database of its own: the session's live gateways run dispatchers on the shared one, and
    they would take these tests' events from the consumer group."""
    client = connect(base_settings.model_copy(update={"redis_db": DISPATCHER_DB}))
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def settings_for(base: Settings, *urls: str, attempts: int = 4, timeout: float = 5.0) -> Settings:
    return base.model_copy(
        update={
            "webhook_urls": ",".join(urls),
            "webhook_secret": SECRET,
            "webhook_max_attempts": attempts,
            "webhook_retry_base_seconds": 10.0,
            "webhook_retry_max_seconds": 60.0,
            "webhook_timeout_seconds": timeout,
        }
    )


async def pending_entries(redis: aioredis.Redis) -> int:
    return (await redis.xpending(keys.events_stream(), GROUP))["pending"]


async def test_an_event_arrives_signed_with_its_id(
    redis: aioredis.Redis, base_settings: Settings, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    dispatcher = WebhookDispatcher(redis, settings_for(base_settings, receiver.url), http)
    event = await emit(redis, EventType.HANDOFF_REQUESTED, {"conversation_id": "c1", "reason": "crisis"})
    assert await dispatcher.run_once() == 1
    [(headers, body)] = receiver.received
    stamp, signature = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    assert abs(int(stamp) - time.time()) < 5
    assert verify(body, SECRET, stamp, signature)
    assert not verify(body, "another secret", stamp, signature)
    assert not verify(body.replace(b"crisis", b"crises"), SECRET, stamp, signature)
    assert json.loads(body) == event
    assert headers["X-Indgang-Event"] == "handoff.requested" and headers["Content-Type"] == "application/json"
    assert headers["X-Indgang-Delivery-Attempt"] == "1"
    assert await dispatcher.run_once() == 0 and await pending_entries(redis) == 0  # acknowledged
    assert len(receiver.received) == 1


async def test_a_replayed_delivery_is_rejected_and_the_signature_covers_the_timestamp(
    redis: aioredis.Redis, base_settings: Settings, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    clock = Clock()
    clock.now = time.time()
    dispatcher = WebhookDispatcher(redis, settings_for(base_settings, receiver.url), http, clock)
    await emit(redis, EventType.BOOKING_CREATED, {"booking_id": "b1"})
    assert await dispatcher.run_once() == 1
    [(headers, body)] = receiver.received
    stamp, signature = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    assert stamp == str(int(clock.now))
    assert verify(body, SECRET, stamp, signature, now=clock.now + 299)
    # Captured and sent again six minutes later: refused as it was sent...
    assert not verify(body, SECRET, stamp, signature, now=clock.now + 360)
    # ...and with a fresh timestamp the signature no longer matches.
    fresh = str(int(clock.now + 360))
    assert not verify(body, SECRET, fresh, signature, now=clock.now + 360)
    assert not verify(body, SECRET, None, signature) and not verify(body, SECRET, "soon", signature)


def documented_receiver() -> object:
    """`is_authentic` from docs/webhooks.md, run as a municipality would copy it."""
    docs = (PROJECT_DIR / "docs" / "webhooks.md").read_text(encoding="utf-8")
    namespace: dict[str, object] = {}
    exec(re.search(r"```python\n(.*?)```", docs, re.S)[1], namespace)  # our own docs, as a reader copies them
    return namespace["is_authentic"]


async def test_the_documented_receiver_accepts_a_delivery_and_rejects_its_replay(
    redis: aioredis.Redis, base_settings: Settings, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    is_authentic = documented_receiver()
    clock = Clock()
    clock.now = time.time()
    dispatcher = WebhookDispatcher(redis, settings_for(base_settings, receiver.url), http, clock)
    await emit(redis, EventType.CRISIS_DETECTED, {"conversation_id": "c9"})
    await dispatcher.run_once()
    [(headers, body)] = receiver.received
    stamp, signature = headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER]
    assert is_authentic(SECRET, stamp, signature, body)
    assert not is_authentic("another secret", stamp, signature, body)
    assert not is_authentic(SECRET, str(int(stamp) - 60), signature, body)  # another time, old signature

    # The same delivery six minutes on: the dispatcher's clock sent it that long ago.
    receiver.received.clear()
    clock.now = time.time() - 360
    await emit(redis, EventType.CRISIS_DETECTED, {"conversation_id": "c9"})
    await dispatcher.run_once()
    [(headers, body)] = receiver.received
    assert verify(body, SECRET, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], now=clock.now)
    assert not is_authentic(SECRET, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER], body)


async def test_a_failing_receiver_gets_retries_with_the_same_event(
    redis: aioredis.Redis, base_settings: Settings, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    clock = Clock()
    dispatcher = WebhookDispatcher(redis, settings_for(base_settings, receiver.url), http, clock)
    receiver.failures = 2
    await emit(redis, EventType.BOOKING_CREATED, {"booking_id": "b1"})
    assert await dispatcher.run_once() == 0
    assert await pending_entries(redis) == 0  # the retry is scheduled durably, so the entry is done
    assert await dispatcher.run_once() == 0 and len(receiver.received) == 1  # not due yet
    clock.now += 10  # the first back-off
    assert await dispatcher.run_once() == 0 and len(receiver.received) == 2
    clock.now += 19
    assert await dispatcher.run_once() == 0 and len(receiver.received) == 2  # the second waits 20 s
    clock.now += 1
    assert await dispatcher.run_once() == 1
    bodies = {body for _, body in receiver.received}
    assert len(receiver.received) == 3 and len(bodies) == 1  # the same bytes, so the same event id
    # each attempt is signed when it is sent, so a late retry is not taken for a replay
    stamps = [headers[TIMESTAMP_HEADER] for headers, _ in receiver.received]
    assert stamps == [str(int(1_000_000 + elapsed)) for elapsed in (0, 10, 30)]
    assert receiver.attempts() == ["1", "2", "3"]
    clock.now += 1000
    assert await dispatcher.run_once() == 0 and len(receiver.received) == 3
    assert await redis.zcard(keys.events_retries()) == 0 and await redis.hlen(keys.events_deliveries()) == 0


async def test_a_receiver_that_does_not_answer_in_time_gets_a_retry(
    redis: aioredis.Redis, base_settings: Settings, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    clock = Clock()
    dispatcher = WebhookDispatcher(redis, settings_for(base_settings, receiver.url, timeout=0.2), http, clock)
    receiver.delay = 1.0
    await emit(redis, EventType.BOOKING_CREATED, {"booking_id": "b1"})
    assert await dispatcher.run_once() == 0
    [(delivery_id, due)] = await redis.zrange(keys.events_retries(), 0, -1, withscores=True)
    assert due == clock.now + 10
    assert "ReadTimeout" in await redis.hget(keys.events_deliveries(), delivery_id)
    receiver.delay = 0
    clock.now += 10
    assert await dispatcher.run_once() == 1 and receiver.attempts() == ["1", "2"]


async def test_after_the_last_attempt_an_admin_can_send_it_again(
    redis: aioredis.Redis, base_settings: Settings, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    clock = Clock()
    dispatcher = WebhookDispatcher(redis, settings_for(base_settings, receiver.url, attempts=2), http, clock)
    receiver.failures = 4
    older = await emit(redis, EventType.CRISIS_DETECTED, {"conversation_id": "c2"})
    await dispatcher.run_once()
    clock.now += 5
    newer = await emit(redis, EventType.HANDOFF_REQUESTED, {"conversation_id": "c2"})
    await dispatcher.run_once()
    clock.now += 5
    await dispatcher.run_once()  # the older one's last attempt
    clock.now += 5
    await dispatcher.run_once()  # the newer one's
    letters = await dead_letters(redis)
    assert [letter.event["id"] for letter in letters] == [newer["id"], older["id"]]  # newest first
    letter = letters[1]
    assert (letter.url, letter.attempts, letter.last_error) == (receiver.url, 2, "HTTP 503")
    assert letter.failed_at is not None and letter.failed_at.startswith("1970-01-12T")  # from the clock
    assert await redis.zcard(keys.events_retries()) == 0 and await redis.hlen(keys.events_deliveries()) == 0
    clock.now += 1000
    assert await dispatcher.run_once() == 0 and len(receiver.received) == 4  # no more by itself

    assert await retry_dead_letter(redis, letter.id)
    assert not await retry_dead_letter(redis, letter.id)
    assert not await retry_dead_letter(redis, "no-such-letter")
    assert await dispatcher.run_once() == 1
    assert receiver.events()[-1] == older and receiver.attempts()[-1] == "1"
    assert [remaining.event["id"] for remaining in await dead_letters(redis)] == [newer["id"]]


async def test_every_url_gets_every_event_and_a_dead_one_does_not_block_the_others(
    redis: aioredis.Redis, base_settings: Settings, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    other = Receiver()
    try:
        dead = f"http://127.0.0.1:{free_port()}/nobody"
        dispatcher = WebhookDispatcher(
            redis, settings_for(base_settings, receiver.url, other.url, dead), http
        )
        taken = await emit(redis, EventType.HANDOFF_TAKEN, {"conversation_id": "c3"})
        released = await emit(redis, EventType.HANDOFF_RELEASED, {"conversation_id": "c3"})
        assert await dispatcher.run_once() == 4
        expected = sorted([taken, released], key=lambda e: e["id"])
        assert sorted(receiver.events(), key=lambda e: e["id"]) == expected  # in any order: concurrently
        assert sorted(other.events(), key=lambda e: e["id"]) == expected
        retries = await redis.hvals(keys.events_deliveries())
        assert len(retries) == 2 and all('"ConnectError"' in raw and dead in raw for raw in retries)
        assert await pending_entries(redis) == 0
    finally:
        other.close()


async def test_without_urls_events_are_acknowledged_and_dropped(
    redis: aioredis.Redis, base_settings: Settings, http: httpx.AsyncClient
) -> None:
    dispatcher = WebhookDispatcher(redis, settings_for(base_settings), http)
    await emit(redis, EventType.CONVERSATION_ERASED, {"conversation_id": "c5"})
    assert await dispatcher.run_once() == 0
    assert await pending_entries(redis) == 0 and await redis.zcard(keys.events_retries()) == 0


async def test_an_unreadable_entry_is_dropped_and_does_not_block_the_stream(
    redis: aioredis.Redis, base_settings: Settings, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    dispatcher = WebhookDispatcher(redis, settings_for(base_settings, receiver.url), http)
    await redis.xadd(keys.events_stream(), {"event": "{not json"})
    await redis.xadd(keys.events_stream(), {"something": "else"})
    event = await emit(redis, EventType.BOOKING_CANCELLED, {"booking_id": "b2"})
    assert await dispatcher.run_once() == 1
    assert receiver.events() == [event] and await pending_entries(redis) == 0


async def test_a_new_dispatcher_delivers_what_was_emitted_while_none_ran(
    redis: aioredis.Redis, base_settings: Settings, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    settings = settings_for(base_settings, receiver.url)
    early = await emit(redis, EventType.BOOKING_CREATED, {"booking_id": "before-any-gateway"})
    assert await WebhookDispatcher(redis, settings, http).run_once() == 1  # then that gateway stops
    later = [await emit(redis, EventType.BOOKING_CREATED, {"booking_id": f"b{n}"}) for n in range(3)]
    restarted = WebhookDispatcher(redis, settings, http)
    assert await restarted.run_once() == 3
    # deliveries of one batch go out concurrently: the contract is "every event", not an order
    assert receiver.events()[0] == early
    assert sorted(receiver.events()[1:], key=lambda e: e["id"]) == sorted(later, key=lambda e: e["id"])


async def test_two_dispatchers_on_one_group_deliver_each_event_and_retry_once(
    redis: aioredis.Redis, base_settings: Settings, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    clock = Clock()
    settings = settings_for(base_settings, receiver.url)
    first = WebhookDispatcher(redis, settings, http, clock)
    second = WebhookDispatcher(redis, settings, http, clock)
    receiver.failures = 45
    emitted = [await emit(redis, EventType.BOOKING_CANCELLED, {"booking_id": f"b{n}"}) for n in range(45)]
    for _ in range(3):
        await asyncio.gather(first.run_once(), second.run_once())
    assert Counter(e["id"] for e in receiver.events()) == Counter(e["id"] for e in emitted)
    assert await redis.zcard(keys.events_retries()) == 45
    clock.now += 10
    delivered = 0
    for _ in range(3):
        delivered += sum(await asyncio.gather(first.run_once(), second.run_once()))
    assert delivered == 45
    assert Counter(e["id"] for e in receiver.events()) == Counter(e["id"] for e in emitted * 2)


async def test_a_dispatcher_that_dies_mid_delivery_leaves_nothing_undelivered(
    redis: aioredis.Redis, base_settings: Settings, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    settings = settings_for(base_settings, receiver.url)
    crashed = WebhookDispatcher(redis, settings, http)
    assert await crashed.run_once() == 0  # creates the group
    event = await emit(redis, EventType.CONVERSATION_ERASED, {"conversation_id": "c4"})
    # It read the event and died before delivering or acknowledging it.
    await redis.xreadgroup(GROUP, crashed.consumer, {keys.events_stream(): ">"}, count=10)
    survivor = WebhookDispatcher(redis, settings, http)
    assert await survivor.run_once() == 0  # the entry is not idle long enough to be claimed yet
    pending = await redis.xpending_range(keys.events_stream(), GROUP, "-", "+", 10)
    assert len(pending) == 1
    # Later (XCLAIM's IDLE sets how long the entry has waited):
    await redis.execute_command(
        "XCLAIM", keys.events_stream(), GROUP, crashed.consumer, 0, pending[0]["message_id"],
        "IDLE", survivor.claim_idle_ms + 1000,
    )  # fmt: skip
    assert await survivor.run_once() == 1
    assert receiver.events() == [event] and await pending_entries(redis) == 0


async def test_a_retry_a_dispatcher_died_attempting_is_tried_again_after_its_lease(
    redis: aioredis.Redis, base_settings: Settings, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    clock = Clock()
    settings = settings_for(base_settings, receiver.url)
    crashed = WebhookDispatcher(redis, settings, http, clock)
    receiver.failures = 1
    await emit(redis, EventType.HANDOFF_REQUESTED, {"conversation_id": "c6"})
    await crashed.run_once()
    clock.now += 10
    receiver.delay = 5
    attempt = asyncio.create_task(crashed.run_once())
    await receiver.wait_for(2)
    attempt.cancel()  # the gateway dies while the receiver is answering
    with contextlib.suppress(asyncio.CancelledError):
        await attempt
    receiver.delay = 0
    survivor = WebhookDispatcher(redis, settings, http, clock)
    assert await survivor.run_once() == 0 and len(receiver.received) == 2  # still leased
    clock.now += crashed.lease_seconds
    assert await survivor.run_once() == 1
    assert receiver.attempts() == ["1", "2", "2"] and len({body for _, body in receiver.received}) == 1
    assert await redis.zcard(keys.events_retries()) == 0


async def test_the_background_loop_delivers_and_stops_at_once_even_mid_delivery(
    redis: aioredis.Redis, base_settings: Settings, http: httpx.AsyncClient, receiver: Receiver
) -> None:
    dispatcher = WebhookDispatcher(redis, settings_for(base_settings, receiver.url), http)
    dispatcher.start()
    try:
        first = await emit(redis, EventType.BOOKING_CREATED, {"booking_id": "b1"})
        await receiver.wait_for(1)
        assert receiver.events() == [first]
        receiver.delay = 5
        await emit(redis, EventType.BOOKING_CANCELLED, {"booking_id": "b1"})
        await receiver.wait_for(2)
    finally:
        started = time.monotonic()
        await dispatcher.stop()
        assert time.monotonic() - started < 1
    assert await pending_entries(redis) == 1  # not lost: the next gateway delivers it
