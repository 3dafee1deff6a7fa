"""The staff inbox: conversations waiting for a person (urgent first, then oldest) and those
staff hold, from the handoff queue."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import redis.asyncio as aioredis
from pydantic import BaseModel

from indgang import conversation, handoff, keys
from indgang.handoff import HandoffState

PREVIEW_CHARS = 140


class InboxItem(BaseModel):
    conversation_id: str
    state: HandoffState
    priority: str
    staff: str | None = None
    reason: str | None = None
    requested_at: str | None = None
    channel: str = "web"
    language: str = "da"
    preview: str = ""  # the citizen's latest message, shortened


class Inbox(BaseModel):
    waiting: list[InboxItem]
    mine: list[InboxItem]
    others: list[InboxItem]

    @property
    def version(self) -> str:
        """Changes whenever anything shown changes: the live inbox sends an update then."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


async def _preview(redis: aioredis.Redis, conversation_id: str) -> str:
    for _, fields in await redis.xrevrange(keys.transcript(conversation_id), count=10):
        text = " ".join(fields.get("text", "").split())
        if fields.get("from") == "user" and not text.startswith("/"):  # not a button's payload
            return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"
    return ""


async def inbox(redis: aioredis.Redis, me: str) -> Inbox:
    waiting: list[InboxItem] = []
    mine: list[InboxItem] = []
    others: list[InboxItem] = []
    for conversation_id in await handoff.queued(redis):
        state = await handoff.get(redis, conversation_id)
        if not state.with_staff:
            continue  # expired or erased since it was queued
        record = await conversation.get(redis, conversation_id)
        item = InboxItem(
            conversation_id=conversation_id,
            state=state.state,
            priority=state.priority.value,
            staff=state.staff,
            reason=state.reason,
            requested_at=(
                datetime.fromtimestamp(state.requested_at, UTC).isoformat(timespec="seconds")
                if state.requested_at
                else None
            ),
            channel=record.channel if record else "web",
            language=record.language if record else "da",
            preview=await _preview(redis, conversation_id),
        )
        if state.state == HandoffState.REQUESTED:
            waiting.append(item)
        elif state.staff == me:
            mine.append(item)
        else:
            others.append(item)
    return Inbox(waiting=waiting, mine=mine, others=others)
