"""The audit log: every staff access to a conversation, appended to a Redis stream that the
console never edits or trims. Admins read it in the console.

It outlives the conversations it is about (an erased one too), so it names a conversation only
by its pseudonym (keys.pseudonym): whoever holds the id finds its entries; the log alone leads
to no conversation and no citizen."""

from __future__ import annotations

from datetime import UTC, datetime

import redis.asyncio as aioredis
from pydantic import BaseModel

from indgang import keys


class AuditEntry(BaseModel):
    id: str
    at: str
    staff: str
    action: str  # login, inbox, view, open, take_over, reply, note, release, close, bookings, ...
    conversation_id: str = ""  # the conversation's pseudonym
    detail: str = ""  # e.g. which view (page, stream), or an admin's reason for opening


async def record(
    redis: aioredis.Redis, staff: str, action: str, conversation_id: str = "", detail: str = ""
) -> None:
    await redis.xadd(
        keys.staff_audit(),
        {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "staff": staff,
            "action": action,
            "conversation_id": keys.pseudonym(conversation_id) if conversation_id else "",
            "detail": detail,
        },
    )


async def entries(redis: aioredis.Redis, limit: int = 200) -> list[AuditEntry]:
    """The newest entries first."""
    found = await redis.xrevrange(keys.staff_audit(), count=limit)
    return [AuditEntry(id=entry_id, **fields) for entry_id, fields in found]
