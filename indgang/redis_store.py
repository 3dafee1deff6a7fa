"""The one way to reach the shared Redis store."""

from __future__ import annotations

from urllib.parse import quote

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from indgang.settings import Settings

# Redis is unreachable (refused, timed out): the gateway answers without it (indgang/spool.py).
UNREACHABLE = (RedisConnectionError, RedisTimeoutError)
POOL_WAIT_SECONDS = 10  # for a free connection, before the command fails


def redis_url(settings: Settings) -> str:
    """REDIS_URL when set, else a URL built from the host/port/db/password parts."""
    if settings.redis_url:
        return settings.redis_url
    auth = f":{quote(settings.redis_password, safe='')}@" if settings.redis_password else ""
    return f"redis://{auth}{settings.redis_host}:{settings.redis_port}/{settings.redis_db}"


def connect(settings: Settings) -> aioredis.Redis:
    """An async client with string replies; connections are opened lazily and pooled, at most
    REDIS_MAX_CONNECTIONS of them: a burst of work waits for a free one instead of opening more,
    so no load on one process (hundreds of live streams, say) can exhaust Redis's clients."""
    pool = aioredis.BlockingConnectionPool.from_url(
        redis_url(settings),
        max_connections=settings.redis_max_connections,
        timeout=POOL_WAIT_SECONDS,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
    )
    return aioredis.Redis.from_pool(pool)
