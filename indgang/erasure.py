"""A citizen's right to erasure: everything kept about one conversation goes, everywhere."""

from __future__ import annotations

import redis.asyncio as aioredis

from indgang import keys
from indgang.booking import erase_conversation_booking
from indgang.events import EventType, emit
from indgang.settings import Settings


async def erase_conversation(
    redis: aioredis.Redis, settings: Settings, conversation_id: str, requested_by: str
) -> int:
    """Cancel and delete the conversation's booking, then delete the transcript, record, handoff,
    Rasa's tracker and every other per-conversation key.

    Returns how many conversation keys were deleted. The event tells the municipality's systems
    to erase their copies too; it carries the id only.
    """
    await erase_conversation_booking(redis, settings, conversation_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(*keys.conversation_keys(conversation_id))
        pipe.zrem(keys.handoff_queue(), conversation_id)
        deleted, _ = await pipe.execute()
    await emit(
        redis,
        EventType.CONVERSATION_ERASED,
        {"conversation_id": conversation_id, "requested_by": requested_by},
    )
    return int(deleted)
