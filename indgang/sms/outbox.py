"""The durable queue of SMS replies: what the webhook decided to answer survives a restart.

The webhook queues a turn's SMS (in Redis, before Twilio gets its answer), and a staff reply
is queued before the console hears it went; a worker in every gateway sends them. An SMS is
claimed with a lease (indgang/outbox.py) and removed only after Twilio took it or it was
refused for good, so a gateway that dies before or while sending leaves it to another worker
(or itself, restarted) once the lease runs out. Each body Twilio took is recorded under the
SMS's send id before the SMS leaves the queue, so a retry never sends a body twice; only a
crash after Twilio took a body but before that record was written sends it again (Twilio's
Messages API has no idempotency key). Twilio failing is retried with back-off; the
per-number throttle is final for replies, as it is the guard against a loop with another
system's auto-replies.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

from indgang import keys
from indgang.background import BackgroundLoop
from indgang.outbox import Claim, LeasedSet
from indgang.settings import Settings
from indgang.sms import recipients, twilio_api
from indgang.sms.sender import SendKind, SmsSender

log = logging.getLogger(__name__)

BATCH = 20


@dataclass(frozen=True)
class QueuedSms:
    number: str
    conversation_id: str
    text: str
    kind: SendKind = SendKind.REPLY
    track: bool = True
    attempts: int = 0
    ref: str = ""  # the transcript entry the SMS carries (a staff reply), for its delivery state

    def dump(self) -> str:
        return json.dumps({**self.__dict__, "kind": self.kind.value})

    @classmethod
    def load(cls, raw: str) -> QueuedSms:
        data = json.loads(raw)
        return cls(**{**data, "kind": SendKind(data["kind"])})


async def forget_conversation(redis: aioredis.Redis, conversation_id: str) -> None:
    """Erasure: SMS still queued to the conversation are not sent (they hold its number and
    words). The outbox is drained within seconds, so reading all of it is cheap."""
    items = await redis.hgetall(keys.sms_outbox_items())
    ids = [i for i, raw in items.items() if QueuedSms.load(raw).conversation_id == conversation_id]
    if ids:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.sms_outbox_items(), *ids)
            pipe.zrem(keys.sms_outbox(), *ids)
            await pipe.execute()


class SmsOutbox:
    def __init__(
        self,
        redis: aioredis.Redis,
        settings: Settings,
        sender: SmsSender,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.sender = sender
        self.clock = clock
        self.leases = LeasedSet(redis, keys.sms_outbox(), settings.outbox_lease_seconds)
        pause = settings.outbox_poll_seconds
        self._loop = BackgroundLoop("sms-outbox", self.run_once, pause=pause, error_pause=max(pause, 1.0))

    async def put(self, send_id: str, messages: Sequence[QueuedSms]) -> None:
        """Queue `messages` in order, due now, under ids "<send_id>.<n>" (the id of the inbound
        SMS: a Twilio retry of it queues nothing new)."""
        if not messages:
            return
        now = self.clock()
        ids = [f"{send_id}.{n}" for n in range(len(messages))]
        async with self.redis.pipeline(transaction=True) as pipe:
            items = dict(zip(ids, (m.dump() for m in messages), strict=True))
            pipe.hset(keys.sms_outbox_items(), mapping=items)
            pipe.zadd(keys.sms_outbox(), dict.fromkeys(ids, now), nx=True)
            await pipe.execute()

    async def to_conversation(self, conversation_id: str, text: str, ref: str) -> bool:
        """Queue a message outside a turn (a staff reply, the note that staff let go) for the
        conversation's number, under a new send id; False, noted for staff, when it cannot go."""
        number = await recipients.number_for(self.redis, conversation_id)
        if number is None or not twilio_api.is_configured(self.settings):
            reason = "no_number" if number is None else "not_configured"
            await self.sender.refuse(conversation_id, reason, track=True)
            return False
        await self.put(f"out-{uuid.uuid4().hex}", [QueuedSms(number, conversation_id, text, ref=ref)])
        return True

    async def run_once(self) -> int:
        """Send what is due; returns how many SMS went out."""
        sent = 0
        for claim in await self.leases.claim(self.clock(), BATCH):
            raw = await self.redis.hget(keys.sms_outbox_items(), claim.member)
            if raw is None:
                await self.leases.done(claim)
                continue
            sent += await self._send(claim, QueuedSms.load(raw))
        return sent

    async def _send(self, claim: Claim, sms: QueuedSms) -> int:
        result = await self.sender.to_number(
            sms.number,
            sms.text,
            sms.conversation_id,
            kind=sms.kind,
            ref=sms.ref,
            track=sms.track,
            send_id=claim.member,
        )
        if result.refused == "failed" and sms.attempts + 1 < self.settings.outbox_max_attempts:
            again = QueuedSms(**{**sms.__dict__, "attempts": sms.attempts + 1})
            await self.redis.hset(keys.sms_outbox_items(), claim.member, again.dump())
            wait = self.settings.outbox_retry_seconds * 2**sms.attempts
            await self.leases.retry(claim, self.clock() + wait)
            return 0
        # The text first: a crash between the two leaves an id without text, dropped when claimed.
        await self.redis.hdel(keys.sms_outbox_items(), claim.member)
        await self.leases.done(claim)
        return 0 if result.refused else 1

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
