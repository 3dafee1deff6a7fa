"""A conversation's record: its channel, language and what the assistant has shown so far; and
for a web conversation the hash of its token, the secret that makes it its citizen's alone."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
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


TOKEN_FIELD = "token_sha256"  # in the record: only a hash, so a Redis dump opens no conversation
TOKEN_BYTES = 24  # 192 bits, well above the contract's 128


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
    data.pop(TOKEN_FIELD, None)
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


# --- the conversation token (web conversations) ---------------------------------------------

# Claims an id for a new web conversation: only when nothing at all is stored under it (not the
# record, the transcript, Rasa's tracker ...), so an SMS conversation, an old conversation without
# a token or one that half expired is never handed to whoever asks first. Atomic: of two first
# messages at once, one gets the conversation and its token.
_START_WEB = """
if redis.call('EXISTS', unpack(KEYS)) > 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], 'channel', 'web', 'created_at', ARGV[3])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
"""


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


async def start_web(
    redis: aioredis.Redis, conversation_id: str, ttl_seconds: int, token: str | None = None
) -> str | None:
    """Create a web conversation under an unused id. Returns its token, which exists only in this
    answer (the record keeps its hash, for the conversation's TTL); None when the id is taken.
    `token`: one handed out already, while Redis was down (indgang/spool.py)."""
    token = token or new_token()
    script = redis.register_script(_START_WEB)
    created = await script(
        keys=keys.conversation_keys(conversation_id),
        args=[TOKEN_FIELD, _token_hash(token), _now(), ttl_seconds],
    )
    return token if created else None


async def token_matches(redis: aioredis.Redis, conversation_id: str, token: str | None) -> bool:
    """Whether `token` is the conversation's. False for an unknown id, a conversation without a
    token (SMS) and a missing token alike, after the same work, so the answer tells nothing more."""
    stored = await redis.hget(keys.conversation(conversation_id), TOKEN_FIELD)
    offered = _token_hash(token or "")
    same = hmac.compare_digest((stored or "-" * len(offered)).encode(), offered.encode())
    return bool(stored) and bool(token) and same
