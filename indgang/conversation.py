"""A conversation's record: its channel, language and what the assistant has shown so far."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from indgang import keys
from indgang.i18n import Language, normalise_language


class Conversation(BaseModel):
    id: str
    channel: str = "web"
    language: Language = "da"
    created_at: str | None = None
    updated_at: str | None = None
    offers_shown: list[dict[str, Any]] = Field(default_factory=list)
    risk: str = "none"  # the highest risk the conversation has shown: none, concern or acute


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


async def touch(
    redis: aioredis.Redis, conversation_id: str, channel: str, language: str, ttl_seconds: int
) -> None:
    """Create or refresh the record; every message renews the retention time."""
    key = keys.conversation(conversation_id)
    now = _now()
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hsetnx(key, "created_at", now)
        pipe.hset(
            key, mapping={"channel": channel, "language": normalise_language(language), "updated_at": now}
        )
        pipe.expire(key, ttl_seconds)
        await pipe.execute()


async def get(redis: aioredis.Redis, conversation_id: str) -> Conversation | None:
    data = await redis.hgetall(keys.conversation(conversation_id))
    if not data:
        return None
    offers = json.loads(data.pop("offers_shown", "[]"))
    return Conversation(id=conversation_id, offers_shown=offers, **data)


async def record_offers(
    redis: aioredis.Redis, conversation_id: str, offers: list[dict[str, Any]], ttl_seconds: int
) -> None:
    """Remember the offers last shown, so staff who take over see what the citizen was told."""
    key = keys.conversation(conversation_id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(key, "offers_shown", json.dumps(offers, ensure_ascii=False))
        pipe.expire(key, ttl_seconds)
        await pipe.execute()


# Sets the risk only upward: once flagged, a later calm message never un-flags a conversation.
_RAISE_RISK = """
local rank = {none = 0, concern = 1, acute = 2}
local had = redis.call('HGET', KEYS[1], 'risk') or 'none'
if rank[ARGV[1]] > (rank[had] or 0) then redis.call('HSET', KEYS[1], 'risk', ARGV[1]) end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return redis.call('HGET', KEYS[1], 'risk') or had
"""


async def raise_risk(redis: aioredis.Redis, conversation_id: str, risk: str, ttl_seconds: int) -> str:
    """Record that the conversation showed `risk`; returns the conversation's risk after it."""
    script = redis.register_script(_RAISE_RISK)
    return str(await script(keys=[keys.conversation(conversation_id)], args=[risk, ttl_seconds]))
