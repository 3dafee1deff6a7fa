"""Who an SMS conversation is with. Its id is a keyed hash of the sender's number, so ids,
logs and Redis keys never show a number; the number itself is kept in one key, only to send
replies, for the conversation's retention time (and erased with it)."""

from __future__ import annotations

import redis.asyncio as aioredis

from indgang import keys
from indgang.phone import normalise_phone, phone_hash
from indgang.settings import Settings

CONVERSATION_PREFIX = "sms-"


def canonical_number(sender: str) -> str:
    """E.164 when the sender is a phone number (Twilio sends E.164 already); else the sender as
    given, since short codes and alphanumeric senders still need one stable id."""
    return normalise_phone(sender) or sender.strip()


def conversation_id(number: str, settings: Settings) -> str:
    return f"{CONVERSATION_PREFIX}{phone_hash(number, settings.phone_hash_key)}"


async def remember(redis: aioredis.Redis, conversation_id: str, number: str, ttl_seconds: int) -> None:
    await redis.set(keys.sms_recipient(conversation_id), number, ex=ttl_seconds)


async def number_for(redis: aioredis.Redis, conversation_id: str) -> str | None:
    return await redis.get(keys.sms_recipient(conversation_id))
