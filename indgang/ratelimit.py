"""Rate limits in moving windows (the `limits` library, stored in our Redis).

Every limit has a kind, and a key always starts with it, so a subject chosen by a client (a
conversation id, an address, a username) can never reach another kind's counter: the chat's
counter for a conversation named "sms-out:all" is not the SMS spending guard."""

from __future__ import annotations

import hashlib
import math
import re
import time
import weakref
from enum import StrEnum

import redis.asyncio as aioredis
from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from indgang import keys
from indgang.settings import Settings


class Kind(StrEnum):
    CHAT = "chat"  # one web conversation's messages
    CLIENT_CHAT = "client-chat"  # one client's chat messages, over all its conversations
    CLIENT_OFFERS = "client-offers"  # one client's offer searches
    CLIENT_STREAMS = "client-streams"  # live streams one client opens
    SMS_NUMBER = "sms-number"  # SMS to one number
    SMS_ALL = "sms-all"  # SMS to all numbers together
    BOOKING_PHONE = "booking-phone"  # new bookings for one verified phone number (its hash)
    BOOKING_CONVERSATION = "booking-conversation"  # new bookings made in one conversation


# Ids, addresses (IPv6 has ':'), usernames and hashes; never '/', the library's separator.
SUBJECT = re.compile(r"^[A-Za-z0-9_.:@+\-]{1,200}$")


def subject(text: str) -> str:
    """`text` as a subject: itself when it is a plain id, else a hash of it (a typed username, an
    address with a zone), so any client input can be counted without reaching another key."""
    return text if SUBJECT.match(text) else "sha256-" + hashlib.sha256(text.encode()).hexdigest()


# Keyed by the client (the limiter holds only its pool), so an entry goes with its client.
_limiters: weakref.WeakKeyDictionary[aioredis.Redis, MovingWindowRateLimiter] = weakref.WeakKeyDictionary()


def _limiter(redis: aioredis.Redis) -> MovingWindowRateLimiter:
    """One limiter per Redis client, on the client's pool: the counters share its connections."""
    if redis not in _limiters:
        storage = RedisStorage(
            "async+redis://",  # the pool below decides where; the URL only picks the scheme
            implementation="redispy",
            key_prefix=keys.rate_limit_prefix(),
            connection_pool=redis.connection_pool,
        )
        _limiters[redis] = MovingWindowRateLimiter(storage)
    return _limiters[redis]


async def hit(redis: aioredis.Redis, kind: Kind, who: str, limit: int, window_seconds: int) -> int | None:
    """Count one event of `kind` for `who` (a subject); None when allowed, else the whole
    seconds to wait (for `Retry-After`). A refused event is not counted."""
    return await _ask(redis, kind, who, limit, window_seconds, count=True)


async def over(redis: aioredis.Redis, kind: Kind, who: str, limit: int, window_seconds: int) -> int | None:
    """As `hit`, without counting: whether the next event would be refused (then the seconds to
    wait), for a step that counts only once it has succeeded."""
    return await _ask(redis, kind, who, limit, window_seconds, count=False)


async def _ask(
    redis: aioredis.Redis, kind: Kind, who: str, limit: int, window_seconds: int, count: bool
) -> int | None:
    if not SUBJECT.match(who):
        raise ValueError(f"not a rate-limit subject: {who!r}")
    item, named = RateLimitItemPerSecond(limit, window_seconds), keys.pseudonym(who)
    limiter = _limiter(redis)
    allowed = limiter.hit if count else limiter.test
    if await allowed(item, kind.value, named):
        return None
    stats = await limiter.get_window_stats(item, kind.value, named)
    return max(1, math.ceil(stats.reset_time - time.time()))


def client_limit(settings: Settings, kind: Kind) -> int:
    """The per-client limit of `kind` (per CLIENT_RATE_WINDOW_SECONDS)."""
    return {
        Kind.CLIENT_CHAT: settings.client_chat_limit,
        Kind.CLIENT_OFFERS: settings.client_offers_limit,
        Kind.CLIENT_STREAMS: settings.client_streams_limit,
    }[kind]


async def hit_client(redis: aioredis.Redis, settings: Settings, kind: Kind, client: str) -> int | None:
    """Count one request of `kind` from a client (its address); as `hit`."""
    return await hit(redis, kind, client, client_limit(settings, kind), settings.client_rate_window_seconds)
