"""Delivers the events stream to the municipality's webhook URLs.

Events are read through a Redis consumer group, so several gateways share the work and each
event goes out once. Each (event, URL) pair is one delivery: the exact bytes emitted, signed,
with the same event id on every attempt. A failed delivery waits in a sorted set for its next
attempt (exponential back-off); after the last attempt it is kept as a dead letter that an admin
can send again. An event is acknowledged only once every delivery is done or durably scheduled,
entries a crashed gateway left unacknowledged are claimed by a live one, and a retry a crashed
gateway was attempting becomes due again when its lease runs out: delivery is at least once,
and receivers drop duplicates by event id.

Retention: an entry leaves the stream once its deliveries are done or scheduled (the delivery
record then holds the event); entries, pending deliveries and dead letters older than
EVENTS_RETENTION_SECONDS are swept (with no URLs configured, the stream keeps events that long).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis.asyncio as aioredis
from pydantic import BaseModel
from redis.exceptions import ResponseError

from indgang import keys
from indgang.background import BackgroundLoop
from indgang.events import conversation_of
from indgang.settings import Settings
from indgang.webhooks.signing import sign

log = logging.getLogger(__name__)

GROUP = "webhooks"
BATCH = 20  # stream entries, or due retries, per round
BLOCK_MS = 1000  # well inside the Redis client's socket timeout; also how late a retry may be
CONCURRENCY = 10  # requests at once: the gateway's HTTP client also carries the calls to Rasa
SLACK_SECONDS = 30.0
MIN_CLAIM_IDLE_SECONDS = 60.0
SWEEP_EVERY_SECONDS = 60.0

# Claims due retries by moving their due time to the end of a lease instead of removing them, so
# a gateway that dies mid-attempt leaves them to be tried again rather than lost.
CLAIM_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return ids
"""


class Delivery(BaseModel):
    id: str
    url: str
    body: str  # the event's JSON exactly as emitted: what is signed and sent every time
    attempts: int = 0  # attempts made so far
    last_error: str = ""  # "HTTP 503", "ConnectError", "ReadTimeout" ...: never a response body
    failed_at: str | None = None  # ISO 8601, set when it became a dead letter

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


DeadLetter = Delivery  # a delivery that failed its last attempt


def delivery_id(entry_id: str, url: str) -> str:
    """The same for the same event and URL, so a replayed stream entry reschedules rather than
    duplicates its deliveries."""
    return f"{entry_id}_{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def _parse_event(body: str) -> dict[str, Any] | None:
    """The event, or None for an entry no receiver could use (it would block the stream forever)."""
    try:
        event = json.loads(body)
    except ValueError:
        return None
    readable = isinstance(event, dict) and all(isinstance(event.get(k), str) for k in ("id", "type"))
    return event if readable else None


class WebhookDispatcher:
    def __init__(
        self,
        redis: aioredis.Redis,
        settings: Settings,
        http: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.http = http
        self.clock = clock
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.urls = settings.webhook_url_list
        # A round must finish before another gateway takes its entries or retries over, even
        # when every receiver times out.
        self.lease_seconds = self._worst_case_seconds(BATCH)
        self.claim_idle_ms = int(
            1000 * max(MIN_CLAIM_IDLE_SECONDS, self._worst_case_seconds(BATCH * len(self.urls)))
        )
        self._claim_due = redis.register_script(CLAIM_DUE)
        self._limit = asyncio.Semaphore(CONCURRENCY)
        self._group_ready = False
        self._swept_at = -math.inf
        # A short pause after a failure (Redis away, say) so the loop does not spin on it.
        self._loop = BackgroundLoop(
            "webhook-dispatcher", lambda: self.run_once(block_ms=BLOCK_MS), pause=0, error_pause=1
        )

    def _worst_case_seconds(self, deliveries: int) -> float:
        rounds = math.ceil(deliveries / CONCURRENCY)
        return rounds * self.settings.webhook_timeout_seconds + SLACK_SECONDS

    def backoff(self, attempts: int) -> float:
        """Seconds before the next attempt, after `attempts` failed ones: base, 2 x base, 4 x ..."""
        s = self.settings
        return min(s.webhook_retry_max_seconds, s.webhook_retry_base_seconds * 2 ** (attempts - 1))

    async def run_once(self, block_ms: int | None = None) -> int:
        """Deliver new events, events a dead gateway left behind, and due retries. Returns how
        many deliveries succeeded."""
        await self._ensure_group()
        entries = await self._read_entries(block_ms)
        deliveries = []
        for entry_id, fields in entries:
            body = (fields or {}).get("event")
            event = _parse_event(body) if body is not None else None
            if body is None or event is None:
                log.error("webhook event unreadable; dropped", extra={"entry_id": entry_id})
                continue
            if not self.urls:
                log.debug("no webhook URLs; event dropped", extra={"event_id": event["id"]})
            deliveries += [Delivery(id=delivery_id(entry_id, url), url=url, body=body) for url in self.urls]
        delivered = await self._attempt_all(deliveries)
        if entries:
            entry_ids = [entry_id for entry_id, _ in entries]
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xack(keys.events_stream(), GROUP, *entry_ids)
                if self.urls:  # each event is now delivered or held by its delivery record
                    pipe.xdel(keys.events_stream(), *entry_ids)
                await pipe.execute()
        delivered += await self._attempt_all(await self._due_retries())
        if self.clock() - self._swept_at >= SWEEP_EVERY_SECONDS:
            await sweep(self.redis, self.settings.events_retention_seconds, self.clock())
            self._swept_at = self.clock()
        return delivered

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            # From the stream's start: events emitted before the first gateway ran still go out.
            await self.redis.xgroup_create(keys.events_stream(), GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def _read_entries(self, block_ms: int | None) -> list[tuple[str, dict[str, str] | None]]:
        stream = keys.events_stream()
        try:
            _, claimed, _ = await self.redis.xautoclaim(
                stream, GROUP, self.consumer, min_idle_time=self.claim_idle_ms, start_id="0-0", count=BATCH
            )
            fresh = await self.redis.xreadgroup(
                GROUP, self.consumer, {stream: ">"}, count=BATCH, block=block_ms
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc) and "UNBLOCKED" not in str(exc):
                raise
            self._group_ready = False  # the stream was deleted (e.g. a flushed test database)
            return []
        return list(claimed) + [entry for _, found in fresh for entry in found]

    async def _due_retries(self) -> list[Delivery]:
        now = self.clock()
        ids = await self._claim_due(keys=[keys.events_retries()], args=[now, now + self.lease_seconds, BATCH])
        if not ids:
            return []
        raws = await self.redis.hmget(keys.events_deliveries(), ids)
        orphans = [id_ for id_, raw in zip(ids, raws, strict=True) if raw is None]
        if orphans:  # another gateway finished it meanwhile
            await self.redis.zrem(keys.events_retries(), *orphans)
        return [Delivery.model_validate_json(raw) for raw in raws if raw is not None]

    async def _attempt_all(self, deliveries: list[Delivery]) -> int:
        # Concurrently, so one slow receiver does not hold up the others.
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self._attempt(delivery)) for delivery in deliveries]
        return sum(task.result() for task in tasks)

    async def _attempt(self, delivery: Delivery) -> bool:
        event = delivery.event
        attempts = delivery.attempts + 1
        body = delivery.body.encode()
        headers = {
            "Content-Type": "application/json",
            **sign(body, self.settings.webhook_secret, self.clock()),
            "X-Indgang-Event": event["type"],
            "X-Indgang-Delivery-Attempt": str(attempts),
        }
        context = {
            "event_id": event["id"],
            "type": event["type"],
            "host": urlsplit(delivery.url).hostname,
            "attempt": attempts,
        }
        async with self._limit:
            try:
                response = await self.http.post(
                    delivery.url, content=body, headers=headers, timeout=self.settings.webhook_timeout_seconds
                )
                error = "" if response.is_success else f"HTTP {response.status_code}"
                context["status"] = response.status_code
            except httpx.HTTPError as exc:
                error = type(exc).__name__
        retries, pending, dead = keys.events_retries(), keys.events_deliveries(), keys.events_dead_letter()
        async with self.redis.pipeline(transaction=True) as pipe:
            if not error:
                # Also clears a retry left scheduled by an earlier run of a replayed entry.
                pipe.zrem(retries, delivery.id).hdel(pending, delivery.id)
                log.info("webhook delivered", extra=context)
            elif attempts >= self.settings.webhook_max_attempts:
                failed_at = datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="milliseconds")
                letter = delivery.model_copy(
                    update={"attempts": attempts, "last_error": error, "failed_at": failed_at}
                )
                pipe.zrem(retries, delivery.id).hdel(pending, delivery.id)
                pipe.hset(dead, delivery.id, letter.model_dump_json())
                log.error("webhook failed every attempt", extra={**context, "error": error})
            else:
                retry = delivery.model_copy(update={"attempts": attempts, "last_error": error})
                pipe.hset(pending, delivery.id, retry.model_dump_json())
                pipe.zadd(retries, {delivery.id: self.clock() + self.backoff(attempts)})
                log.warning("webhook failed; will retry", extra={**context, "error": error})
            await pipe.execute()
        return not error

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        """Stops at once, even mid-delivery: what was not finished is retried later (the stream
        entry stays unacknowledged, a claimed retry's lease runs out)."""
        await self._loop.stop()


async def dead_letters(redis: aioredis.Redis) -> list[DeadLetter]:
    """Deliveries that failed every attempt, newest first."""
    letters = [
        DeadLetter.model_validate_json(raw)
        for raw in (await redis.hgetall(keys.events_dead_letter())).values()
    ]
    return sorted(letters, key=lambda letter: (letter.failed_at or "", letter.id), reverse=True)


async def retry_dead_letter(redis: aioredis.Redis, letter_id: str) -> bool:
    """Send a dead letter again, due now and from its first attempt; False when there is no such
    letter. Two admins pressing retry at once schedule the same delivery id once."""
    raw = await redis.hget(keys.events_dead_letter(), letter_id)
    if raw is None:
        return False
    letter = DeadLetter.model_validate_json(raw)
    fresh = letter.model_copy(update={"attempts": 0, "last_error": "", "failed_at": None})
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hdel(keys.events_dead_letter(), letter_id)
        pipe.hset(keys.events_deliveries(), letter_id, fresh.model_dump_json())
        pipe.zadd(keys.events_retries(), {letter_id: 0})
        await pipe.execute()
    return True


def _created_before(delivery: Delivery, cutoff: str) -> bool:
    created = delivery.event.get("created_at")
    return not isinstance(created, str) or created < cutoff


async def sweep(redis: aioredis.Redis, retention_seconds: int, now: float) -> int:
    """Retention: drop stream entries, pending deliveries and dead letters older than
    `retention_seconds`. Returns how many deliveries and dead letters went."""
    oldest = now - retention_seconds
    await redis.xtrim(keys.events_stream(), minid=f"{max(0, int(oldest * 1000))}-0", approximate=False)
    cutoff = datetime.fromtimestamp(oldest, UTC).isoformat(timespec="milliseconds")
    return await _drop_deliveries(redis, lambda delivery: _created_before(delivery, cutoff))


async def forget_conversation(redis: aioredis.Redis, conversation_id: str) -> int:
    """Erasure: drop every pending delivery and dead letter about the conversation."""
    return await _drop_deliveries(redis, lambda delivery: conversation_of(delivery.body) == conversation_id)


async def _drop_deliveries(redis: aioredis.Redis, drop: Callable[[Delivery], bool]) -> int:
    dropped = 0
    for hash_key in (keys.events_deliveries(), keys.events_dead_letter()):
        async for delivery_id, raw in redis.hscan_iter(hash_key, count=500):
            if drop(Delivery.model_validate_json(raw)):
                async with redis.pipeline(transaction=True) as pipe:
                    pipe.hdel(hash_key, delivery_id).zrem(keys.events_retries(), delivery_id)
                    await pipe.execute()
                dropped += 1
    return dropped
