"""STOP and START: a number that wrote STOP gets no SMS from us until it writes START, except
the answers to its own keywords and an emergency reply to a message that signals danger."""

from __future__ import annotations

import redis.asyncio as aioredis

from indgang import keys

# A STOP is honoured for two years, then forgotten like everything else we keep.
OPT_OUT_TTL_SECONDS = 60 * 60 * 24 * 730


async def stop(redis: aioredis.Redis, conversation_id: str) -> bool:
    """Record the STOP; True when it is new (the confirmation is sent once)."""
    return bool(await redis.set(keys.sms_opt_out(conversation_id), "1", nx=True, ex=OPT_OUT_TTL_SECONDS))


async def start(redis: aioredis.Redis, conversation_id: str) -> bool:
    """Lift a STOP; True when there was one."""
    return bool(await redis.delete(keys.sms_opt_out(conversation_id)))


async def opted_out(redis: aioredis.Redis, conversation_id: str) -> bool:
    return bool(await redis.exists(keys.sms_opt_out(conversation_id)))
