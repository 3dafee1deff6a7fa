"""What a staff member does with a conversation: look at it, take it over, answer, write an
internal note, hand it back to the assistant or close it. Every step is written to the audit log.

Least privilege: staff open the conversations that asked for a person (crises included) or that
they hold; an admin opens any other only after recording why, and that reason is audited.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from indgang import conversation, followup, handoff, keys, transcript
from indgang.booking import current_booking
from indgang.dialogue import DialogueEngine
from indgang.events import EventType, emit
from indgang.handoff import Handoff, HandoffError, HandoffState
from indgang.i18n import t, t_list
from indgang.insight import Insight
from indgang.outbound import deliver_to_citizen
from indgang.records.db import Database
from indgang.settings import Settings
from indgang.staff import audit
from indgang.staff.accounts import StaffMember
from indgang.transcript import Message

MAX_TEXT_CHARS = 1600  # one SMS body at most, like everything a citizen is sent
MAX_REASON_CHARS = 300


class NotHolder(HandoffError):
    """Only the staff member who holds a conversation may answer in it."""


class NotAllowed(Exception):
    """The conversation never asked for a person and is not this staff member's (HTTP 403)."""


@dataclass
class ConversationView:
    conversation_id: str
    handoff: Handoff
    channel: str
    language: str
    messages: list[Message]
    offers_shown: list[dict[str, Any]]
    booking: dict[str, Any] | None

    @property
    def audit_ref(self) -> str:
        """How the audit log names this conversation."""
        return keys.pseudonym(self.conversation_id)


class StaffConsole:
    def __init__(
        self,
        redis: aioredis.Redis,
        db: Database,
        settings: Settings,
        engine: DialogueEngine,
        insight: Insight | None = None,
    ) -> None:
        self.redis = redis
        self.db = db
        self.settings = settings
        self.engine = engine
        self.insight = insight or Insight(None, settings.booking_timezone)

    @property
    def ttl(self) -> int:
        return self.settings.conversation_ttl_seconds

    async def may_open(self, conversation_id: str, member: StaffMember) -> bool:
        state = await handoff.get(self.redis, conversation_id)
        if state.requested_at is not None or state.staff == member.username:
            return True  # asked for a person (now or before), or is this member's
        until = await self.redis.hget(keys.staff_opened(conversation_id), member.username)
        return member.is_admin and until is not None and float(until) > time.time()

    async def _require_access(self, conversation_id: str, member: StaffMember) -> None:
        if not await self.may_open(conversation_id, member):
            raise NotAllowed("this conversation never asked for a person; an admin may open it with a reason")

    async def open_with_reason(self, conversation_id: str, member: StaffMember, reason: str) -> None:
        """An admin opens a conversation outside the rule for the rest of this login, and says why."""
        if not member.is_admin:
            raise NotAllowed("only an admin may open a conversation with a reason")
        await audit.record(self.db, member.username, "open", conversation_id, detail=reason)
        lasts = self.settings.staff_session_seconds
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.staff_opened(conversation_id), member.username, int(time.time()) + lasts)
            pipe.expire(keys.staff_opened(conversation_id), lasts)
            await pipe.execute()

    async def watch(self, conversation_id: str, member: StaffMember) -> None:
        """Before the conversation's live stream: the same rule as the page, and audited."""
        await self._require_access(conversation_id, member)
        await audit.record(self.db, member.username, "view", conversation_id, detail="stream")

    async def view(self, conversation_id: str, member: StaffMember) -> ConversationView:
        await self._require_access(conversation_id, member)
        record = await conversation.get(self.redis, conversation_id)
        messages, _ = await transcript.read(self.redis, conversation_id, limit=transcript.MAX_MESSAGES)
        await audit.record(self.db, member.username, "view", conversation_id)
        return ConversationView(
            conversation_id=conversation_id,
            handoff=await handoff.get(self.redis, conversation_id),
            channel=record.channel if record else "web",
            language=record.language if record else "da",
            messages=messages,
            offers_shown=record.offers_shown if record else [],
            booking=await current_booking(self.db, self.redis, conversation_id),
        )

    async def take_over(self, conversation_id: str, member: StaffMember) -> None:
        """HandoffError (HTTP 409) when someone else was first or the conversation is closed."""
        await self._require_access(conversation_id, member)
        before = await handoff.get(self.redis, conversation_id)
        await handoff.take(self.redis, conversation_id, member.username, self.ttl)
        if before.state == HandoffState.REQUESTED and before.requested_at is not None:
            # only a request that waited counts: this take won it (the loser's take raised)
            record = await conversation.get(self.redis, conversation_id)
            self.insight.handoff_taken(record.channel if record else "web", time.time() - before.requested_at)
        await audit.record(self.db, member.username, "take_over", conversation_id)
        await emit(
            self.redis,
            EventType.HANDOFF_TAKEN,
            {"conversation_id": conversation_id, "staff": member.username},
        )

    async def reply(self, conversation_id: str, member: StaffMember, text: str) -> Message:
        """Deliver on the citizen's channel, write it to the transcript, and tell the bot."""
        await self._require_access(conversation_id, member)
        await self._require_holder(conversation_id, member)
        text = text.replace("{staff}", member.display_name)  # canned replies may name the sender
        message = await deliver_to_citizen(
            self.redis, self.settings, conversation_id, text, sender="staff", staff=member.display_name
        )
        await self.engine.record_staff_turn(conversation_id, text, member.display_name)
        await audit.record(self.db, member.username, "reply", conversation_id)
        return message

    async def note(self, conversation_id: str, member: StaffMember, text: str) -> Message:
        """An internal note beside the conversation; never shown or sent to the citizen."""
        await self._require_access(conversation_id, member)
        message = await transcript.append(
            self.redis, conversation_id, "staff", text, self.ttl, staff=member.display_name, internal=True
        )
        await audit.record(self.db, member.username, "note", conversation_id)
        return message

    async def release(self, conversation_id: str, member: StaffMember) -> None:
        """Back to the assistant; the citizen is told so."""
        await handoff.release(self.redis, conversation_id, member.username, self.ttl)
        await audit.record(self.db, member.username, "release", conversation_id)
        await emit(
            self.redis,
            EventType.HANDOFF_RELEASED,
            {"conversation_id": conversation_id, "staff": member.username},
        )
        text = t("staff.released", await self._language(conversation_id))
        await deliver_to_citizen(self.redis, self.settings, conversation_id, text, sender="bot")

    async def close(self, conversation_id: str, member: StaffMember) -> None:
        """Only by the staff member who holds it, or an admin (HeldByOther, HTTP 403, otherwise)."""
        holder = "" if member.is_admin else member.username
        await handoff.close(self.redis, conversation_id, self.ttl, staff=holder)
        await audit.record(self.db, member.username, "close", conversation_id)
        language = await self._language(conversation_id)
        text = t("staff.closed_conversation", language)
        await deliver_to_citizen(self.redis, self.settings, conversation_id, text, sender="bot")
        await followup.ask_satisfaction(self.redis, self.settings, conversation_id, language)

    async def _require_holder(self, conversation_id: str, member: StaffMember) -> None:
        state = await handoff.get(self.redis, conversation_id)
        if state.state != HandoffState.ACTIVE or state.staff != member.username:
            raise NotHolder("take the conversation over before you answer in it")

    async def _language(self, conversation_id: str) -> str:
        record = await conversation.get(self.redis, conversation_id)
        return record.language if record else "da"


def canned_replies(language: str) -> list[str]:
    """The console's ready-made answers (indgang/locales/<language>/staff.yaml)."""
    return t_list("staff.canned_replies", language)
