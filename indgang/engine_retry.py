"""Messages that found the dialogue engine down wait here, and are answered when it is back.

`wait` keeps the message (after the safety check ran: a crisis never waits) in the
conversation's list, in order, and puts the conversation in a sorted set of waiting ones. A
worker in the gateway claims a conversation with a lease (indgang/outbox.py) every
ENGINE_RETRY_SECONDS and sends its messages to the engine in order; the answers reach the
citizen on their own channel (the web chat reads the transcript live; SMS through the outbox).
If the engine is still down ENGINE_DOWN_HANDOFF_SECONDS after the first waiting message, the
conversation goes to staff instead, and the citizen is told so. A gateway that dies mid-way
leaves the conversation to the next worker once the lease runs out; a message the engine had
answered just before such a crash is sent to it again (at least once).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from indgang import handoff, keys
from indgang.background import BackgroundLoop
from indgang.dialogue import EngineUnavailable, Reply
from indgang.i18n import t
from indgang.outbox import LeasedSet
from indgang.settings import Settings

if TYPE_CHECKING:
    from indgang.inbound import Inbound  # which calls `wait`

log = logging.getLogger(__name__)

BATCH = 20


@dataclass(frozen=True)
class Waiting:
    text: str
    channel: str
    language: str
    metadata: dict[str, Any] = field(default_factory=dict)
    at: float = 0.0  # when it came in (epoch seconds)


async def has_waiting(redis: aioredis.Redis, conversation_id: str) -> bool:
    return bool(await redis.exists(keys.engine_waiting_messages(conversation_id)))


async def wait(redis: aioredis.Redis, settings: Settings, conversation_id: str, message: Waiting) -> None:
    """Keep `message` until the engine answers it or staff take the conversation."""
    messages = keys.engine_waiting_messages(conversation_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.rpush(messages, json.dumps(asdict(message)))
        pipe.expire(messages, settings.conversation_ttl_seconds)
        due = message.at + settings.engine_retry_seconds
        pipe.zadd(keys.engine_waiting(), {conversation_id: due}, nx=True)
        await pipe.execute()


class EngineRetry:
    """The worker: `clock` is injectable so tests can move time."""

    def __init__(self, inbound: Inbound, clock: Callable[[], float] = time.time) -> None:
        self.inbound = inbound
        self.redis = inbound.redis
        self.settings = inbound.settings
        self.clock = clock
        self.leases = LeasedSet(self.redis, keys.engine_waiting(), self.settings.outbox_lease_seconds)
        pause = self.settings.engine_retry_seconds
        self._loop = BackgroundLoop("engine-retry", self.run_once, pause=pause, error_pause=pause)

    async def run_once(self) -> int:
        """Try every waiting conversation that is due; returns how many were settled."""
        settled = 0
        now = self.clock()
        for claim in await self.leases.claim(now, BATCH):
            if not await self._settle(claim.member, now):
                await self.leases.retry(claim, now + self.settings.engine_retry_seconds)
                continue
            settled += 1
            await self.leases.done(claim)
            if await has_waiting(self.redis, claim.member):  # one came in while we answered
                await self.redis.zadd(keys.engine_waiting(), {claim.member: now}, nx=True)
        return settled

    async def _settle(self, conversation_id: str, now: float) -> bool:
        """Answer the waiting messages in order, or hand them to staff; False: try again later."""
        key = keys.engine_waiting_messages(conversation_id)
        raw = await self.redis.lrange(key, 0, -1)
        if not raw:
            return True  # erased, or answered already
        waiting = [Waiting(**json.loads(item)) for item in raw]
        if (await handoff.get(self.redis, conversation_id)).with_staff:
            await self.redis.delete(key)  # staff hold it now and read the messages in the transcript
            return True
        if now - waiting[0].at >= self.settings.engine_down_handoff_seconds:
            await self._to_staff(conversation_id, waiting[-1])
            await self.redis.delete(key)
            return True
        for message in waiting:
            meta = {**message.metadata, "channel": message.channel, "language": message.language}
            async with self.inbound.one_at_a_time(conversation_id):
                try:
                    replies = await self.inbound.engine.send(conversation_id, message.text, meta)
                except EngineUnavailable:
                    return False
                await self._deliver(conversation_id, message, replies)
                await self.redis.lpop(key)
        log.info("waiting messages answered by the engine", extra={"count": len(waiting)})
        return True

    async def _to_staff(self, conversation_id: str, last: Waiting) -> None:
        ttl = self.settings.conversation_ttl_seconds
        await handoff.request_person(self.redis, conversation_id, last.channel, ttl, reason="engine_down")
        waiting = await self.inbound.waiting_reply(conversation_id, last.language)
        reply = Reply(text=f"{t('chat.engine_down_to_staff', last.language)}\n{waiting.text}")
        await self._deliver(conversation_id, last, [reply])
        log.warning("engine still down: waiting messages handed to staff")

    async def _deliver(self, conversation_id: str, message: Waiting, replies: list[Reply]) -> None:
        number = message.metadata.get("phone")
        send_id = f"engine.{uuid.uuid4().hex}"
        await self.inbound.deliver(
            conversation_id, message.channel, message.language, replies, send_id, number
        )

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
