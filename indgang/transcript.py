"""A conversation's transcript: every message in and out, in order, in a Redis stream.

The stream entry id is the cursor a page polls with (`after`), so no separate index is needed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from indgang import keys

Sender = Literal["user", "bot", "staff", "system"]
MAX_MESSAGES = 2000  # a conversation longer than this keeps its newest messages


class Message(BaseModel):
    id: str
    at: str
    sender: Sender = Field(serialization_alias="from")
    text: str
    channel: str | None = None
    staff: str | None = None
    crisis: bool = False
    risk: str = "none"  # on the assistant's replies: none, concern or acute
    offers: list[dict[str, Any]] = Field(default_factory=list)
    buttons: list[dict[str, Any]] = Field(default_factory=list)
    internal: bool = False  # a staff note, never shown to the citizen


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


async def append(
    redis: aioredis.Redis,
    conversation_id: str,
    sender: Sender,
    text: str,
    ttl_seconds: int,
    **extra: Any,
) -> Message:
    fields = {"from": sender, "text": text, "at": _now(), "extra": json.dumps(extra, ensure_ascii=False)}
    async with redis.pipeline(transaction=True) as pipe:
        pipe.xadd(keys.transcript(conversation_id), fields, maxlen=MAX_MESSAGES, approximate=True)
        refresh(pipe, conversation_id, ttl_seconds)
        entry_id, *_ = await pipe.execute()
    return _message(entry_id, fields)


def refresh(pipe: aioredis.client.Pipeline, conversation_id: str, ttl_seconds: int) -> None:
    """Every message renews the retention of all the conversation's keys at once (Rasa's
    tracker too, which Rasa itself renews only on the turns it sees: not while staff hold the
    conversation), so its parts expire together."""
    for key in keys.retained_keys(conversation_id):
        pipe.expire(key, ttl_seconds)


def _message(entry_id: str, fields: dict[str, str]) -> Message:
    extra = json.loads(fields.get("extra") or "{}")
    return Message(id=entry_id, at=fields["at"], sender=fields["from"], text=fields["text"], **extra)


async def read(
    redis: aioredis.Redis, conversation_id: str, after: str | None = None, limit: int = 200
) -> tuple[list[Message], str | None]:
    """Messages after the cursor (all when None), oldest first, and the cursor to poll with next."""
    start = f"({after}" if after else "-"
    entries = await redis.xrange(keys.transcript(conversation_id), min=start, max="+", count=limit)
    messages = [_message(entry_id, fields) for entry_id, fields in entries]
    cursor = messages[-1].id if messages else after
    return messages, cursor


async def tail(redis: aioredis.Redis, conversation_id: str, count: int) -> list[Message]:
    """The newest `count` messages, oldest first."""
    entries = await redis.xrevrange(keys.transcript(conversation_id), count=count)
    return [_message(entry_id, fields) for entry_id, fields in reversed(entries)]


def is_valid_cursor(value: str) -> bool:
    ms, _, seq = value.partition("-")
    return ms.isdigit() and (seq == "" or seq.isdigit())
