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
