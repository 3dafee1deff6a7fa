"""Fixed-window rate limit per conversation, so one sender cannot flood the assistant."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from indgang import keys


async def hit(redis: aioredis.Redis, subject: str, limit: int, window_seconds: int) -> int | None:
    """Count one message; None when allowed, else the seconds to wait before the next one."""
    now = time.time()
    window = int(now // window_seconds)
    key = keys.rate_limit(subject, window)
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, window_seconds + 1)
        count, _ = await pipe.execute()
    if count <= limit:
        return None
    return max(1, int((window + 1) * window_seconds - now) + 1)
