"""Shared pieces of the booking tests: a fixed Monday morning and a citizen's request."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis

from indgang import keys
from indgang.booking import BookingRequest, MeetingKind

TZ = ZoneInfo("Europe/Copenhagen")
# A Monday at 08:00, far enough ahead that retention times computed from it lie in the future.
MONDAY = datetime(2031, 3, 3, 8, 0, tzinfo=TZ)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in the test week of March 2031 (3 = Monday)."""
    return datetime(2031, 3, day, hour, minute, tzinfo=TZ)


def request(
    conversation_id: str = "conv-1", phone: str = "+4520123456", channel: str = "web"
) -> BookingRequest:
    return BookingRequest(
        conversation_id=conversation_id,
        channel=channel,
        language="da",
        name="Maria",
        phone=phone,
        topic="hjælp til bolig",
        kind=MeetingKind.PHONE,
    )


async def events_of(redis: aioredis.Redis, event_type: str) -> list[dict]:
    entries = await redis.xrange(keys.events_stream())
    found = [json.loads(fields["event"]) for _, fields in entries]
    return [e for e in found if e["type"] == event_type]
