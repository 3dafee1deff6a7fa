"""Staff login sessions, kept in Redis so that they can be ended.

The browser holds only a random session id (in the signed cookie); Redis keys the session by the
id's SHA-256, so a copy of Redis opens no session. Logout ends one session; a password change,
disabling or removing an account end every session of the account at once, and the console's
live streams check their session on every round, so they stop too.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

import redis.asyncio as aioredis

from indgang import keys

# KEYS: the session, the account's index of sessions. ARGV: username, stage, ttl, the
# session's hash. The session ends when its key expires; the index lives as long as the
# account's longest session.
_START = """
redis.call('HSET', KEYS[1], 'username', ARGV[1], 'stage', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
if redis.call('TTL', KEYS[2]) < tonumber(ARGV[3]) then redis.call('EXPIRE', KEYS[2], ARGV[3]) end
"""


class Stage(StrEnum):
    FULL = "full"  # logged in
    SECOND_FACTOR = "totp"  # the password was right; the TOTP code is awaited
    ENROL = "enrol"  # the password was right; TOTP must be enrolled first (admins in production)


@dataclass(frozen=True)
class StaffSession:
    id: str  # the random id the cookie carries; never stored
    username: str
    stage: Stage

    @property
    def is_full(self) -> bool:
        return self.stage == Stage.FULL


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


async def start(redis: aioredis.Redis, username: str, stage: Stage, ttl_seconds: int) -> StaffSession:
    session = StaffSession(id=secrets.token_urlsafe(32), username=username, stage=stage)
    await redis.register_script(_START)(
        keys=[keys.staff_session(_hash(session.id)), keys.staff_account_sessions(username)],
        args=[username, stage.value, ttl_seconds, _hash(session.id)],
    )
    return session


async def get(redis: aioredis.Redis, session_id: str) -> StaffSession | None:
    data = await redis.hgetall(keys.staff_session(_hash(session_id)))
    if not data:
        return None
    return StaffSession(id=session_id, username=data["username"], stage=Stage(data["stage"]))


async def alive(redis: aioredis.Redis, session_id: str) -> bool:
    """One cheap check, made by every live stream on each round."""
    return bool(await redis.exists(keys.staff_session(_hash(session_id))))


async def end(redis: aioredis.Redis, session: StaffSession) -> None:
    digest = _hash(session.id)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(keys.staff_session(digest))
        pipe.srem(keys.staff_account_sessions(session.username), digest)
        await pipe.execute()


async def end_all(redis: aioredis.Redis, username: str, keep: StaffSession | None = None) -> int:
    """End every session of the account (but `keep`); how many were still open."""
    account_sessions = keys.staff_account_sessions(username)
    digests = set(await redis.smembers(account_sessions))
    if keep is not None:
        digests.discard(_hash(keep.id))
    if not digests:
        return 0
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(*(keys.staff_session(d) for d in digests))
        pipe.srem(account_sessions, *digests)
        ended, _ = await pipe.execute()
    return int(ended)


# Only while the session lasts: an HSET after it ended would make a session without an owner.
_REMEMBER = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
"""


async def remember(redis: aioredis.Redis, session: StaffSession, field: str, value: str) -> None:
    """Keep a value with the session for its next step (a TOTP secret being enrolled)."""
    await redis.register_script(_REMEMBER)(keys=[keys.staff_session(_hash(session.id))], args=[field, value])


async def recall(redis: aioredis.Redis, session: StaffSession, field: str) -> str | None:
    return await redis.hget(keys.staff_session(_hash(session.id)), field)
