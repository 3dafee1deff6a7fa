"""Events for the municipality's own systems, queued durably in a Redis stream.

Emitting only appends to the stream; delivery (signing, retries, dead letters) is the
dispatcher's job, so a slow or broken receiver never delays a citizen's answer.

Events carry ids and categories only (a conversation id, a booking id, a risk tier, crisis
categories), never a citizen's name, number or words: they leave this system, and a queue of
them is not where erasure should have to look for a person.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import redis.asyncio as aioredis

from indgang import keys

STREAM_MAXLEN = 100_000


class EventType(StrEnum):
    HANDOFF_REQUESTED = "handoff.requested"
    HANDOFF_TAKEN = "handoff.taken"
    HANDOFF_RELEASED = "handoff.released"
    BOOKING_CREATED = "booking.created"
    BOOKING_CANCELLED = "booking.cancelled"
    CRISIS_DETECTED = "crisis.detected"
    CONVERSATION_ERASED = "conversation.erased"


def new_event(event_type: EventType, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"evt_{uuid.uuid4().hex}",
        "type": event_type.value,
        "created_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "data": data,
    }


def conversation_of(body: str) -> str | None:
    """The conversation an emitted event is about (None when it names none or is unreadable)."""
    try:
        data = json.loads(body).get("data")
    except (ValueError, AttributeError):
        return None
    found = data.get("conversation_id") if isinstance(data, dict) else None
    return found if isinstance(found, str) else None


async def forget_conversation(redis: aioredis.Redis, conversation_id: str, page: int = 1000) -> int:
    """Erasure: drop every queued event about the conversation. Returns how many."""
    stream, start, dropped = keys.events_stream(), "-", 0
    while True:
        entries = await redis.xrange(stream, min=start, max="+", count=page)
        mine = [
            entry_id
            for entry_id, fields in entries
            if conversation_of(fields.get("event", "")) == conversation_id
        ]
        if mine:
            dropped += await redis.xdel(stream, *mine)
        if len(entries) < page:
            return dropped
        start = f"({entries[-1][0]}"


async def emit(redis: aioredis.Redis, event_type: EventType, data: dict[str, Any]) -> dict[str, Any]:
    event = new_event(event_type, data)
    await redis.xadd(
        keys.events_stream(),
        {"event": json.dumps(event, ensure_ascii=False)},
        maxlen=STREAM_MAXLEN,
        approximate=True,
    )
    return event
