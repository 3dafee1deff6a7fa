"""A citizen's right to erasure: everything kept about one conversation goes, everywhere.

The one erasure behind the SMS keyword SLET, the web chat's button, the staff API (admins, on
the citizen's request) and `indgang conversation erase`.
"""

from __future__ import annotations

from typing import Literal

import redis.asyncio as aioredis

from indgang import events, followup, keys
from indgang.booking import erase_conversation_bookings
from indgang.events import EventType, emit
from indgang.records.db import Database
from indgang.settings import Settings
from indgang.sms import outbox
from indgang.webhooks import dispatcher

RequestedBy = Literal["citizen", "staff"]


async def erase_conversation(
    db: Database, redis: aioredis.Redis, settings: Settings, conversation_id: str, requested_by: RequestedBy
) -> int:
    """Delete every booking the conversation made (a confirmed one is cancelled first, so its
    slot is free again), the transcript, record, handoff and its place in the staff queue, Rasa's
    tracker and lock, the SMS number and delivery records, SMS still queued to it, messages
    waiting for the engine, a pending follow-up, and every queued event, pending delivery and
    dead letter about it.

    Returns how many conversation keys were deleted. Then `conversation.erased` (the id only)
    tells the municipality's systems to erase their copies; it leaves the queue once delivered.
    What is kept: the audit log's entries, which name the conversation only by its pseudonym.
    """
    await erase_conversation_bookings(db, redis, conversation_id)
    await followup.forget_conversation(redis, conversation_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(*keys.conversation_keys(conversation_id))
        pipe.zrem(keys.handoff_queue(), conversation_id)
        pipe.zrem(keys.engine_waiting(), conversation_id)
        pipe.zrem(keys.handoff_watch(), conversation_id)
        deleted, *_ = await pipe.execute()
    await outbox.forget_conversation(redis, conversation_id)
    await events.forget_conversation(redis, conversation_id)
    await dispatcher.forget_conversation(redis, conversation_id)
    await emit(
        redis,
        EventType.CONVERSATION_ERASED,
        {"conversation_id": conversation_id, "requested_by": requested_by},
    )
    return int(deleted)
