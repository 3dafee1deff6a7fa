"""Events for the municipality's own systems, queued durably in a Redis stream.

Emitting only appends to the stream; delivery (signing, retries, dead letters) is the
dispatcher's job, so a slow or broken receiver never delays a citizen's answer.
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


async def emit(redis: aioredis.Redis, event_type: EventType, data: dict[str, Any]) -> dict[str, Any]:
    event = new_event(event_type, data)
    await redis.xadd(
        keys.events_stream(),
        {"event": json.dumps(event, ensure_ascii=False)},
        maxlen=STREAM_MAXLEN,
        approximate=True,
    )
    return event
